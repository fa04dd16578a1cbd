"""The lifecycle's side effects: a ticket solved (and how) or reopened, as an audit entry and
a KPI event (``ticket_solved`` with ``how``, ``ticket_reopened`` with the count)."""

from __future__ import annotations

from typing import Any

import asyncpg
from temporalio import activity

from kruxt.activities._keys import activity_key
from kruxt.adapters.postgres import audit, kpi
from kruxt.models.lifecycle import LifecycleEvent

__all__ = ["LifecycleActivities"]


class LifecycleActivities:
    """Record the lifecycle's milestones; each one transaction, applied once per activity."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool

    @activity.defn
    async def record_lifecycle(self, event: LifecycleEvent) -> bool:
        """Record ``event``; False when a retry finds it recorded."""
        key = activity_key()
        details: dict[str, Any] = {"reopened_count": event.reopened_count}
        if event.how is not None:
            details["how"] = event.how.value
        if event.reopen_until is not None:
            details["reopen_until"] = event.reopen_until.isoformat()
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT priority, category FROM support_tickets WHERE id = $1", event.ticket_id
            )
            done = await audit.append(
                conn,
                actor=event.actor,
                action=f"ticket.{event.event.removeprefix('ticket_')}",
                ticket_id=event.ticket_id,
                details=details,
                idempotency_key=key,
            )
            if not done:
                return False
            await kpi.emit(
                conn,
                event=event.event,
                ticket_id=event.ticket_id,
                idempotency_key=f"{key}:{event.event}",
                priority=row["priority"] if row else None,
                category=row["category"] if row else None,
                details=details,
            )
            return True
