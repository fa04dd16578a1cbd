"""Cached bytecode for the modules the workflow sandbox imports afresh on every run.

The sandbox isolates runs by importing a workflow's own module again for each run it starts
or replays (what a module imports inside ``imports_passed_through`` is shared). Python reads
that import from the module's cached bytecode; where none is written (``PYTHONDONTWRITEBYTECODE``
is set in many shells and images, and an editable install has no bytecode of its own) every
run compiles the source again: about 10 ms of a core for each new or replayed ticket, a sixth
of the worker's CPU per auto-answered ticket. So a worker writes the bytecode of its workflow
modules when it is missing or older than the source, as an import normally would.
"""

from __future__ import annotations

import compileall
import logging
import sys
from collections.abc import Iterable

log = logging.getLogger(__name__)


def cache_workflow_bytecode(workflows: Iterable[type]) -> list[str]:
    """Write the bytecode of each workflow's module where it is missing or stale; the
    source files it could not write it for (a read-only install: each run compiles then)."""
    unwritten = []
    for source in sorted({sys.modules[cls.__module__].__file__ or "" for cls in workflows}):
        # compile_file leaves a fresh cache alone; quiet=2 keeps it from printing.
        if source.endswith(".py") and not compileall.compile_file(source, quiet=2):
            unwritten.append(source)
    if unwritten:
        log.warning(
            "cannot write the bytecode of %s: the workflow sandbox will compile them on every "
            "run it starts or replays",
            ", ".join(unwritten),
        )
    return unwritten
