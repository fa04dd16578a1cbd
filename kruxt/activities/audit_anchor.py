"""Anchoring the audit chain outside the database, on a Temporal Schedule.

The schedule starts :class:`~kruxt.workflows.audit_anchor.AuditAnchorWorkflow` every
``KRUXT_AUDIT_ANCHOR_MINUTES``; its one activity appends the signed chain head to the anchor
file (``KRUXT_AUDIT_ANCHOR_FILE``). One schedule per namespace and task queue, so replicas
of the worker write one series of anchors, and a missed run is caught up once, not per
worker.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
from temporalio import activity
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)

from kruxt.adapters.postgres import audit

log = logging.getLogger(__name__)

WORKFLOW_NAME = "AuditAnchor"


def schedule_id(task_queue: str) -> str:
    """The schedule of a task queue's anchors."""
    return f"kruxt-audit-anchor-{task_queue}"


class AuditAnchorActivities:
    """Writes anchors with the process's audit keyring."""

    def __init__(self, pool: asyncpg.Pool[Any], path: Path) -> None:
        self._pool = pool
        self._path = path

    @activity.defn
    async def anchor_audit_head(self) -> int:
        """Append the signed chain head to the anchor file; the anchored row's id."""
        async with self._pool.acquire() as conn:
            anchor = await audit.write_anchor(conn, self._path)
        log.info("audit chain anchored at row %d in %s", anchor.row_id, self._path)
        return anchor.row_id


async def ensure_schedule(client: Client, *, task_queue: str, every: timedelta) -> bool:
    """Create the anchor schedule unless it exists (idempotent); True when created now.

    It is triggered once at creation, so a new deployment has an anchor at once. An
    existing schedule is left as it is (its interval included): change it with the
    ``temporal schedule`` CLI, or delete it and restart a worker.
    """
    try:
        await client.create_schedule(
            schedule_id(task_queue),
            Schedule(
                action=ScheduleActionStartWorkflow(
                    WORKFLOW_NAME,
                    id=f"audit-anchor-{task_queue}",
                    task_queue=task_queue,
                    execution_timeout=timedelta(minutes=10),
                ),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
                policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
            ),
            trigger_immediately=True,
        )
    except ScheduleAlreadyRunningError:
        return False
    return True


__all__ = ["AuditAnchorActivities", "ensure_schedule", "schedule_id"]
