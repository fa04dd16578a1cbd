"""Revisions: a new run records one patch marker for every change its code was written with.

The first time a run reaches ``workflow.patched(id)``, the SDK records a marker and upserts
``TemporalChangeVersion`` (a visibility write; Temporal Cloud bills each as an action). An
answered ticket passed two patches, so it paid two of each, for changes that every ticket
started since takes anyway. Go's ``GetVersion`` gives one change id many versions; Python's
patches are booleans. A :class:`Revision` is one patch that stands for the patches folded
into it:

- the run asks for it in its first activation (:class:`Patches` is made in the workflow's
  ``__init__``). A new run records its one marker and takes every folded change without a
  marker of its own;
- a run that started before the revision replays that first activation without the marker,
  so it asks each patch itself, exactly as the code before the revision did.

A change made after a revision gets a patch of its own. The next revision folds it together
with everything the last one folded; list the revisions newest first, and a run takes the
first it started on.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow

__all__ = ["Patches", "Revision"]


@dataclass(frozen=True)
class Revision:
    """One patch id standing for every patch id in ``folds``."""

    patch_id: str
    folds: frozenset[str]


class Patches:
    """A run's answers to ``workflow.patched``, with its revision's changes answered at once."""

    def __init__(self, *revisions: Revision) -> None:
        """``revisions`` newest first. Make this in the workflow's ``__init__``, before any
        other command: the revision's marker belongs to the run's first workflow task."""
        self._folded: frozenset[str] = frozenset()
        for revision in revisions:
            if workflow.patched(revision.patch_id):
                self._folded = revision.folds
                break

    def patched(self, patch_id: str) -> bool:
        """``workflow.patched(patch_id)``, True without a marker when the run's revision
        folds it."""
        return patch_id in self._folded or workflow.patched(patch_id)
