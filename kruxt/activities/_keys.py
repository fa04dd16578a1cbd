"""Idempotency keys derived from the running activity."""

from __future__ import annotations

from temporalio import activity


def activity_key(suffix: str = "") -> str:
    """A key that is the same for every attempt of this activity execution and unique otherwise.

    Workflow id, run id and activity id identify one scheduled activity; a retry (even on
    another worker after a crash) keeps all three, so writes keyed by it apply once.
    """
    info = activity.info()
    key = f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}"
    return f"{key}:{suffix}" if suffix else key
