"""Incidents and SLA events: each write one transaction with its audit entry and KPI events.

Like the ticket repository, every write takes an ``idempotency_key`` (the calling
activity's identity): an activity retried after its transaction committed changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import asyncpg

from kruxt.adapters.postgres import audit, kpi
from kruxt.adapters.postgres.pool import Conn
from kruxt.models.approvals import DecisionChannel
from kruxt.models.enums import Category, Priority
from kruxt.models.incidents import (
    AttachTicket,
    IncidentRecord,
    IncidentStatus,
    TimelineEntry,
    incident_workflow_id,
)
from kruxt.models.sla import SlaMet, SlaNotice

__all__ = [
    "IncidentNotFoundError",
    "IncidentStateError",
    "IncidentStore",
    "JoinResult",
    "SlaEventStore",
]

SYSTEM_ACTOR = "autopilot"

_COLUMNS = """
    i.id, i.key, i.status, i.priority, i.category, i.title, i.workflow_id, i.opened_at,
    i.acknowledged_at, i.acknowledged_by, i.resolved_at, i.resolved_by,
    i.escalation_level, i.escalation_loop,
    coalesce(
        (SELECT array_agg(t.ticket_id ORDER BY t.attached_at, t.ticket_id)
         FROM support_incident_tickets t WHERE t.incident_id = i.id),
        '{}'
    ) AS ticket_ids
"""


class IncidentNotFoundError(LookupError):
    """No incident has this id."""


class IncidentStateError(ValueError):
    """The change does not apply to the incident as it stands (e.g. already resolved)."""


class JoinResult(NamedTuple):
    """Which incident a ticket belongs to, and whether it opened it."""

    incident_id: uuid.UUID
    workflow_id: str
    created: bool


def _record(row: asyncpg.Record) -> IncidentRecord:
    return IncidentRecord.model_validate(dict(row))


class IncidentStore:
    """Reads and writes of ``support_incidents`` and its tickets and timeline."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool

    async def open_or_join(
        self,
        *,
        key: str,
        ticket_id: uuid.UUID,
        priority: Priority,
        category: Category,
        title: str,
        window: timedelta,
        idempotency_key: str,
        now: datetime | None = None,
    ) -> JoinResult:
        """Attach the ticket to the open incident of ``key`` opened within ``window``.

        With none, open a new incident (its workflow id is ``incident-<id>``). Runs under a
        transaction-scoped advisory lock on the key: two tickets of the same outage at the
        same moment serialize here and find one incident. A retry with the same
        ``idempotency_key`` returns the first answer.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", key)
            done = await conn.fetchrow(
                """
                SELECT i.id, i.workflow_id, i.first_ticket_id = t.ticket_id AS created
                FROM support_incident_tickets t JOIN support_incidents i ON i.id = t.incident_id
                WHERE t.idempotency_key = $1
                """,
                idempotency_key,
            )
            if done is not None:
                return JoinResult(done["id"], done["workflow_id"], bool(done["created"]))
            at: datetime = now or await conn.fetchval("SELECT now()")
            found = await conn.fetchrow(
                """
                SELECT id, workflow_id, priority FROM support_incidents
                WHERE key = $1 AND status IN ('open', 'acknowledged') AND opened_at >= $2
                ORDER BY opened_at DESC LIMIT 1
                """,
                key,
                at - window,
            )
            if found is not None:
                await self._attach(
                    conn,
                    incident_id=found["id"],
                    ticket_id=ticket_id,
                    priority=priority,
                    current=Priority(found["priority"]),
                    at=at,
                    idempotency_key=idempotency_key,
                )
                return JoinResult(found["id"], found["workflow_id"], False)
            incident_id = uuid.uuid4()
            workflow_id = incident_workflow_id(incident_id)
            await conn.execute(
                """
                INSERT INTO support_incidents (id, key, priority, category, title,
                    first_ticket_id, workflow_id, opened_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                """,
                incident_id,
                key,
                priority.value,
                category.value,
                title,
                ticket_id,
                workflow_id,
                at,
            )
            await conn.execute(
                """
                INSERT INTO support_incident_tickets (incident_id, ticket_id, attached_at,
                                                      idempotency_key)
                VALUES ($1, $2, $3, $4)
                """,
                incident_id,
                ticket_id,
                at,
                idempotency_key,
            )
            await self._timeline(
                conn,
                incident_id=incident_id,
                at=at,
                entry=f"opened by ticket {ticket_id} ({priority.value}): {title}",
                actor=SYSTEM_ACTOR,
                idempotency_key=f"{idempotency_key}:timeline",
            )
            await audit.append(
                conn,
                actor=SYSTEM_ACTOR,
                action="incident.opened",
                ticket_id=ticket_id,
                details={
                    "incident_id": str(incident_id),
                    "key": key,
                    "priority": priority.value,
                    "category": category.value,
                    "workflow_id": workflow_id,
                },
                idempotency_key=idempotency_key,
            )
            await kpi.emit(
                conn,
                event="incident_opened",
                ticket_id=ticket_id,
                priority=priority.value,
                category=category.value,
                idempotency_key=f"{idempotency_key}:incident_opened",
                details={"incident_id": str(incident_id), "key": key},
            )
            return JoinResult(incident_id, workflow_id, True)

    async def _attach(
        self,
        conn: Conn,
        *,
        incident_id: uuid.UUID,
        ticket_id: uuid.UUID,
        priority: Priority,
        current: Priority,
        at: datetime,
        idempotency_key: str,
    ) -> None:
        status = await conn.execute(
            """
            INSERT INTO support_incident_tickets (incident_id, ticket_id, attached_at,
                                                  idempotency_key)
            VALUES ($1, $2, $3, $4)
            ON CONFLICT (incident_id, ticket_id) DO NOTHING
            """,
            incident_id,
            ticket_id,
            at,
            idempotency_key,
        )
        if not status.endswith(" 1"):
            return  # the ticket was attached before (by an earlier join of its own)
        raised = priority.rank < current.rank
        if raised:
            # A more severe ticket joining makes the incident more severe.
            await conn.execute(
                "UPDATE support_incidents SET priority = $2 WHERE id = $1",
                incident_id,
                priority.value,
            )
        await self._timeline(
            conn,
            incident_id=incident_id,
            at=at,
            entry=f"ticket {ticket_id} ({priority.value}) attached"
            + (f"; incident raised to {priority.value}" if raised else ""),
            actor=SYSTEM_ACTOR,
            idempotency_key=f"{idempotency_key}:timeline",
        )
        await audit.append(
            conn,
            actor=SYSTEM_ACTOR,
            action="incident.ticket_attached",
            ticket_id=ticket_id,
            details={"incident_id": str(incident_id), "priority": priority.value},
            idempotency_key=idempotency_key,
        )

    @staticmethod
    async def _timeline(
        conn: Conn,
        *,
        incident_id: uuid.UUID,
        at: datetime | None,
        entry: str,
        actor: str,
        idempotency_key: str,
    ) -> bool:
        status = await conn.execute(
            """
            INSERT INTO support_incident_timeline (incident_id, at, entry, actor,
                                                   idempotency_key)
            VALUES ($1, coalesce($2, now()), $3, $4, $5)
            ON CONFLICT (idempotency_key) DO NOTHING
            """,
            incident_id,
            at,
            entry,
            actor,
            idempotency_key,
        )
        return bool(status.endswith(" 1"))

    async def recorded(self, idempotency_key: str) -> bool:
        """True when a timeline entry with this key exists (the work it stands for is done)."""
        async with self._pool.acquire() as conn:
            found = await conn.fetchval(
                "SELECT 1 FROM support_incident_timeline WHERE idempotency_key = $1",
                idempotency_key,
            )
        return found is not None

    async def record_event(
        self,
        *,
        incident_id: uuid.UUID,
        action: str,
        entry: str,
        idempotency_key: str,
        actor: str = SYSTEM_ACTOR,
        at: datetime | None = None,
        details: dict[str, Any] | None = None,
    ) -> bool:
        """Add a timeline entry with its audit entry; False when it was recorded before."""
        async with self._pool.acquire() as conn, conn.transaction():
            added = await self._timeline(
                conn,
                incident_id=incident_id,
                at=at,
                entry=entry,
                actor=actor,
                idempotency_key=idempotency_key,
            )
            if added:
                await audit.append(
                    conn,
                    actor=actor,
                    action=action,
                    ticket_id=None,
                    details={"incident_id": str(incident_id), "entry": entry, **(details or {})},
                    idempotency_key=idempotency_key,
                )
            return added

    async def record_refused_ack(
        self,
        incident_id: uuid.UUID,
        who: str,
        reason: str,
        *,
        channel: DecisionChannel = DecisionChannel.SLACK,
    ) -> None:
        """Audit an acknowledgement that was refused (nothing changed): who tried, and why."""
        async with self._pool.acquire() as conn:
            await audit.append(
                conn,
                actor=who,
                action="incident.ack_refused",
                ticket_id=None,
                details={
                    "incident_id": str(incident_id),
                    "channel": channel.value,
                    "reason": reason,
                },
            )

    async def record_page(
        self,
        *,
        incident_id: uuid.UUID,
        level: int,
        loop: int,
        entry: str,
        recipients: list[str],
        idempotency_key: str,
        at: datetime | None = None,
    ) -> bool:
        """A page went out: the escalation position, a timeline line, an audit entry."""
        async with self._pool.acquire() as conn, conn.transaction():
            added = await self._timeline(
                conn,
                incident_id=incident_id,
                at=at,
                entry=entry,
                actor=SYSTEM_ACTOR,
                idempotency_key=idempotency_key,
            )
            if not added:
                return False
            await conn.execute(
                """
                UPDATE support_incidents SET escalation_level = $2, escalation_loop = $3
                WHERE id = $1
                """,
                incident_id,
                level,
                loop,
            )
            await audit.append(
                conn,
                actor=SYSTEM_ACTOR,
                action="incident.paged",
                ticket_id=None,
                details={
                    "incident_id": str(incident_id),
                    "level": level,
                    "loop": loop,
                    "recipients": recipients,
                },
                idempotency_key=idempotency_key,
            )
            return True

    async def set_status(
        self,
        *,
        incident_id: uuid.UUID,
        status: IncidentStatus,
        actor: str,
        idempotency_key: str,
        channel: DecisionChannel | None = None,
        note: str = "",
        at: datetime | None = None,
    ) -> list[AttachTicket]:
        """Acknowledge or resolve the incident; returns its tickets (what a resolution tells).

        Resolving takes the key's advisory lock, so no ticket joins while it happens: every
        ticket attached before is in the returned list. A retry changes nothing again.

        Raises:
            IncidentNotFoundError: no such incident.
            IncidentStateError: ``open`` was asked for, or the incident is already resolved.
        """
        if status is IncidentStatus.OPEN:
            raise IncidentStateError("an incident cannot be set back to open")
        async with self._pool.acquire() as conn, conn.transaction():
            key = await conn.fetchval(
                "SELECT key FROM support_incidents WHERE id = $1", incident_id
            )
            if key is None:
                raise IncidentNotFoundError(f"no incident {incident_id}")
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", key)
            row = await conn.fetchrow(
                "SELECT status FROM support_incidents WHERE id = $1 FOR UPDATE", incident_id
            )
            assert row is not None
            current = IncidentStatus(row["status"])
            done = await conn.fetchval(
                "SELECT 1 FROM support_incident_timeline WHERE idempotency_key = $1",
                idempotency_key,
            )
            if done is None:
                if current is IncidentStatus.RESOLVED:
                    raise IncidentStateError(f"incident {incident_id} is already resolved")
                if current is status:
                    raise IncidentStateError(f"incident {incident_id} is already {status.value}")
                when: datetime = at or await conn.fetchval("SELECT now()")
                if status is IncidentStatus.ACKNOWLEDGED:
                    await conn.execute(
                        """
                        UPDATE support_incidents
                        SET status = 'acknowledged', acknowledged_at = $2, acknowledged_by = $3
                        WHERE id = $1
                        """,
                        incident_id,
                        when,
                        actor,
                    )
                    via = f" via {channel.value}" if channel else ""
                    entry = f"acknowledged by {actor}{via}; escalation stopped"
                else:
                    await conn.execute(
                        """
                        UPDATE support_incidents
                        SET status = 'resolved', resolved_at = $2, resolved_by = $3,
                            resolution_note = $4
                        WHERE id = $1
                        """,
                        incident_id,
                        when,
                        actor,
                        note,
                    )
                    entry = f"resolved by {actor}" + (f": {note}" if note else "")
                await self._timeline(
                    conn,
                    incident_id=incident_id,
                    at=when,
                    entry=entry,
                    actor=actor,
                    idempotency_key=idempotency_key,
                )
                await audit.append(
                    conn,
                    actor=actor,
                    action=f"incident.{status.value}",
                    ticket_id=None,
                    details={
                        "incident_id": str(incident_id),
                        "channel": channel.value if channel else None,
                        "note": note,
                    },
                    idempotency_key=idempotency_key,
                )
                if status is IncidentStatus.RESOLVED:
                    await kpi.emit(
                        conn,
                        event="incident_resolved",
                        ticket_id=None,
                        idempotency_key=f"{idempotency_key}:incident_resolved",
                        value_seconds=await conn.fetchval(
                            "SELECT extract(epoch FROM $2::timestamptz - opened_at)::float8 "
                            "FROM support_incidents WHERE id = $1",
                            incident_id,
                            when,
                        ),
                        details={"incident_id": str(incident_id)},
                    )
            return await self._tickets(conn, incident_id)

    @staticmethod
    async def _tickets(conn: Conn, incident_id: uuid.UUID) -> list[AttachTicket]:
        rows = await conn.fetch(
            """
            SELECT t.id AS ticket_id, t.workflow_id, coalesce(t.priority, i.priority) AS priority,
                   t.subject AS summary
            FROM support_incident_tickets it
            JOIN support_tickets t ON t.id = it.ticket_id
            JOIN support_incidents i ON i.id = it.incident_id
            WHERE it.incident_id = $1
            ORDER BY it.attached_at, t.id
            """,
            incident_id,
        )
        return [AttachTicket.model_validate(dict(r)) for r in rows]

    async def tickets(self, incident_id: uuid.UUID) -> list[AttachTicket]:
        """The tickets attached to an incident, in the order they joined."""
        async with self._pool.acquire() as conn:
            return await self._tickets(conn, incident_id)

    async def set_slack_message(self, incident_id: uuid.UUID, *, channel: str, ts: str) -> None:
        """Remember where the incident was posted in Slack (set once)."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE support_incidents SET slack_channel = $2, slack_ts = $3 "
                "WHERE id = $1 AND slack_ts IS NULL",
                incident_id,
                channel,
                ts,
            )

    async def slack_message(self, incident_id: uuid.UUID) -> tuple[str, str] | None:
        """The Slack channel and ts of the incident's message, if it was posted."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT slack_channel, slack_ts FROM support_incidents WHERE id = $1",
                incident_id,
            )
        if row is None or row["slack_ts"] is None:
            return None
        return row["slack_channel"], row["slack_ts"]

    async def timeline(self, incident_id: uuid.UUID) -> list[TimelineEntry]:
        """The incident's timeline, oldest first."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """
                SELECT at, entry AS what, actor FROM support_incident_timeline
                WHERE incident_id = $1 ORDER BY at, id
                """,
                incident_id,
            )
        return [TimelineEntry.model_validate(dict(r)) for r in rows]

    async def get(self, incident_id: uuid.UUID) -> IncidentRecord | None:
        """One incident with its ticket ids."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM support_incidents i WHERE i.id = $1", incident_id
            )
        return _record(row) if row is not None else None

    async def list_open(self) -> list[IncidentRecord]:
        """Incidents not resolved yet, the most severe first, then the oldest."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"""
                SELECT {_COLUMNS} FROM support_incidents i
                WHERE i.status IN ('open', 'acknowledged')
                ORDER BY i.priority, i.opened_at
                """
            )
        return [_record(r) for r in rows]


class SlaEventStore:
    """SLA warnings, breaches and met clocks: KPI events and audit entries of a ticket."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool

    async def recorded(self, idempotency_key: str) -> bool:
        """True when a notice with this key was recorded (its messages went out)."""
        async with self._pool.acquire() as conn:
            found = await conn.fetchval(
                "SELECT 1 FROM support_audit_log WHERE idempotency_key = $1", idempotency_key
            )
        return found is not None

    async def record_notice(
        self, *, notice: SlaNotice, recipients: list[str], idempotency_key: str
    ) -> bool:
        """KPI ``sla_warning`` / ``sla_breached`` (value: seconds overdue) and the audit entry."""
        event = "sla_breached" if notice.event.value == "breach" else "sla_warning"
        details = {
            "clock": notice.clock.value,
            "deadline": notice.deadline.isoformat(),
            "target_seconds": notice.target_seconds,
            "elapsed_seconds": round(notice.elapsed_seconds, 3),
            "overdue_seconds": round(notice.overdue_seconds, 3),
        }
        async with self._pool.acquire() as conn, conn.transaction():
            added = await audit.append(
                conn,
                actor=SYSTEM_ACTOR,
                action=f"sla.{notice.event.value}",
                ticket_id=notice.ticket_id,
                details={**details, "notified": recipients},
                idempotency_key=idempotency_key,
            )
            await kpi.emit(
                conn,
                event=event,
                ticket_id=notice.ticket_id,
                priority=notice.priority.value,
                value_seconds=notice.overdue_seconds,
                idempotency_key=f"{idempotency_key}:{event}",
                details=details,
            )
            return added

    async def record_met(self, *, met: SlaMet, idempotency_key: str) -> bool:
        """KPI ``sla_met`` with the time the clock took (pauses excluded)."""
        async with self._pool.acquire() as conn:
            return await kpi.emit(
                conn,
                event="sla_met",
                ticket_id=met.ticket_id,
                priority=met.priority.value,
                value_seconds=met.seconds,
                idempotency_key=idempotency_key,
                details={"clock": met.clock.value, "target_seconds": met.target_seconds},
            )
