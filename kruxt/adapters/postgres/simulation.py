"""Stored tickets for ``kruxt simulate`` and ``kruxt eval export-corrections``: reads only.

Every query runs in a read-only transaction: PostgreSQL itself refuses any write on this path,
whatever a later change to these queries might try. The snapshot is repeatable-read, so one
run sees one consistent state of a live database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from kruxt.models.routing import Route
from kruxt.models.simulation import Happened, StoredTicket
from kruxt.models.triage import TriageResult

__all__ = ["SimulationReader"]

# One row per ticket: its first inbound message, its first triage run (the one that routed
# it), the evidence of its route (an automatic reply sent; a playbook diagnosed, whether or
# not it found something to plan), its incident and the latest correction of its triage.
# $2 picks the period's meaning: tickets created since $1, or corrections decided since $1.
_TICKETS = """
SELECT t.id AS ticket_id, t.created_at, t.channel, t.account_id, t.subject,
       coalesce(m.body, '') AS body,
       r.output, r.model, r.prompt_version,
       (SELECT count(*) FROM support_ticket_messages o
        WHERE o.ticket_id = t.id AND o.kind = 'auto_reply') AS auto_replies,
       EXISTS (SELECT 1 FROM support_audit_log l WHERE l.ticket_id = t.id
               AND l.action IN ('playbook.planned', 'playbook.not_planned')) AS planned,
       i.incident_id, i.opened,
       c.correction
FROM support_tickets t
LEFT JOIN LATERAL (
    SELECT body FROM support_ticket_messages
    WHERE ticket_id = t.id AND direction = 'inbound' ORDER BY created_at, id LIMIT 1
) m ON true
LEFT JOIN LATERAL (
    SELECT output, model, prompt_version FROM support_automation_runs
    WHERE ticket_id = t.id AND agent = 'triage' ORDER BY created_at, id LIMIT 1
) r ON true
LEFT JOIN LATERAL (
    SELECT it.incident_id, inc.first_ticket_id = t.id AS opened
    FROM support_incident_tickets it JOIN support_incidents inc ON inc.id = it.incident_id
    WHERE it.ticket_id = t.id ORDER BY it.attached_at LIMIT 1
) i ON true
LEFT JOIN LATERAL (
    SELECT correction, decided_at FROM support_approvals
    WHERE ticket_id = t.id AND correction IS NOT NULL ORDER BY decided_at DESC LIMIT 1
) c ON true
WHERE CASE WHEN $2 THEN c.decided_at >= $1 ELSE t.created_at >= $1 END
ORDER BY t.created_at, t.id
"""


class SimulationReader:
    """Reads stored tickets with what happened to them; never writes."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool

    async def tickets(self, *, since: datetime) -> list[StoredTicket]:
        """Tickets created since ``since``, oldest first."""
        return await self._read(since=since, corrected=False)

    async def corrected(self, *, since: datetime) -> list[StoredTicket]:
        """Tickets whose triage a person corrected since ``since``, oldest first."""
        return await self._read(since=since, corrected=True)

    async def _read(self, *, since: datetime, corrected: bool) -> list[StoredTicket]:
        async with (
            self._pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            rows = await conn.fetch(_TICKETS, since, corrected)
        return [_stored(row) for row in rows]


def _stored(row: asyncpg.Record) -> StoredTicket:
    happened = _happened(row) if row["output"] is not None else None
    return StoredTicket.model_validate({**dict(row), "happened": happened})


def _happened(row: asyncpg.Record) -> Happened:
    triage = TriageResult.model_validate(row["output"])
    if row["auto_replies"]:
        route = Route.AUTO_REPLY
    elif row["planned"]:
        route = Route.PLAYBOOK
    else:
        route = Route.HUMAN
    return Happened(
        category=triage.category,
        severity=triage.severity,
        playbook=triage.playbook,
        triaged_by=row["model"],
        prompt_version=row["prompt_version"],
        route=route,
        auto_replies=row["auto_replies"],
        incident_id=row["incident_id"],
        opened_incident=bool(row["opened"]),
    )
