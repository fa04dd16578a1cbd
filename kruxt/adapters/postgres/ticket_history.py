"""What staff last did to a ticket, read back from its audit trail: the priority change (who,
from what) and the resolution (who, with which note). ``kruxt ticket show`` prints them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel

__all__ = ["StaffChange", "StaffChanges", "staff_changes"]


class StaffChange(BaseModel):
    """One audited change: who, when, from and to what, and why."""

    actor: str
    at: datetime
    before: str | None = None
    after: str | None = None
    reason: str = ""


class StaffChanges(BaseModel):
    """The latest priority change and the resolution, when there were any."""

    priority: StaffChange | None = None
    resolution: StaffChange | None = None


async def staff_changes(pool: asyncpg.Pool[Any], ticket_id: uuid.UUID) -> StaffChanges:
    """The ticket's latest priority change and latest move to ``resolved``."""
    rows = await pool.fetch(
        """
        SELECT DISTINCT ON (kind) kind, actor, occurred_at, details FROM (
            SELECT CASE action WHEN 'ticket.priority_changed' THEN 'priority'
                               ELSE 'resolution' END AS kind, id, actor, occurred_at, details
            FROM support_audit_log
            WHERE ticket_id = $1
              AND (action = 'ticket.priority_changed'
                   OR (action = 'ticket.status_changed' AND details->>'to' = 'resolved'))
        ) changes
        ORDER BY kind, id DESC
        """,
        ticket_id,
    )
    found = {
        row["kind"]: StaffChange(
            actor=row["actor"],
            at=row["occurred_at"],
            before=row["details"].get("from"),
            after=row["details"].get("to"),
            reason=row["details"].get("reason") or "",
        )
        for row in rows
    }
    return StaffChanges(**found)
