"""Incidents and SLA events: each write one transaction with its audit entry and KPI events.

Like the ticket repository, every write takes an ``idempotency_key`` (the calling
activity's identity): an activity retried after its transaction committed changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import asyncpg

from kruxt.adapters.postgres import audit, kpi, slack_refs
from kruxt.adapters.postgres.pool import Conn
from kruxt.models.approvals import DecisionChannel
from kruxt.models.enums import Category, Priority
from kruxt.models.incidents import (
    DEFAULT_INCIDENT_CLUSTER,
    RECENT_TICKETS_SHOWN,
    TIMELINE_HEAD,
    TIMELINE_TAIL,
    AttachTicket,
    IncidentCluster,
    IncidentEvent,
    IncidentRecord,
    IncidentStatus,
    OpenIncidentInput,
    TimelineEntry,
    incident_workflow_id,
)
from kruxt.models.sla import SlaMet, SlaNotice
from kruxt.models.tickets import workflow_id_for

__all__ = [
    "Counted",
    "IncidentNotFoundError",
    "IncidentStateError",
    "IncidentStore",
    "JoinResult",
    "SlaEventStore",
    "TimelineEnds",
]

SYSTEM_ACTOR = "autopilot"

_HEAD_COLUMNS = """
    i.id, i.key, i.status, i.priority, i.category, i.title, i.workflow_id, i.opened_at,
    i.acknowledged_at, i.acknowledged_by, i.resolved_at, i.resolved_by,
    i.escalation_level, i.escalation_loop"""
_COLUMNS = f"""{_HEAD_COLUMNS},
    (SELECT count(*) FROM support_incident_tickets t WHERE t.incident_id = i.id)
        AS ticket_count,
    coalesce(
        (SELECT array_agg(r.ticket_id ORDER BY r.attached_at DESC, r.ticket_id DESC)
         FROM (SELECT t.ticket_id, t.attached_at FROM support_incident_tickets t
               WHERE t.incident_id = i.id
               ORDER BY t.attached_at DESC, t.ticket_id DESC
               LIMIT {RECENT_TICKETS_SHOWN}) r),
        '{{}}'
    ) AS recent_ticket_ids
"""


class TimelineEnds(NamedTuple):
    """An incident's timeline as its pages show it: the first and the last lines, and how
    many between them were left out."""

    first: list[TimelineEntry]
    left_out: int
    last: list[TimelineEntry]


class IncidentNotFoundError(LookupError):
    """No incident has this id."""


class IncidentStateError(ValueError):
    """The change does not apply to the incident as it stands (e.g. already resolved)."""


class JoinResult(NamedTuple):
    """Which incident a ticket belongs to, and whether it opened it."""

    incident_id: uuid.UUID
    workflow_id: str
    created: bool


class Counted(NamedTuple):
    """A P2 with no incident: its cause's cluster is not big enough yet (``waiting`` P2
    tickets of it within the cluster window, this one included)."""

    waiting: int


class _Opening(NamedTuple):
    """The ticket that may open an incident, as ``open_or_join`` got it."""

    key: str
    ticket_id: uuid.UUID
    priority: Priority
    category: Category
    title: str
    at: datetime
    idempotency_key: str


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
        """Attach the ticket to the open incident of ``key`` opened within ``window``, or
        open one whatever its priority (``place`` is the rule tickets go by)."""
        ticket = OpenIncidentInput(
            ticket_id=ticket_id,
            ticket_workflow_id=workflow_id_for(ticket_id),
            key=key,
            priority=priority,
            category=category,
            title=title,
            at=now,
        )
        placed = await self.place(
            ticket, window=window, idempotency_key=idempotency_key, cluster=None
        )
        assert isinstance(placed, JoinResult)  # without a cluster rule every ticket opens
        return placed

    async def place(
        self,
        ticket: OpenIncidentInput,
        *,
        window: timedelta,
        idempotency_key: str,
        cluster: IncidentCluster | None,
    ) -> JoinResult | Counted:
        """Find the ticket's incident: join, open, or (a P2 alone) only count it.

        The ticket joins the open incident of its key opened within ``window`` (counted back
        from ``ticket.at``, or the database's now). With none, a
        P1 opens one (its workflow id is ``incident-<id>``); a P2 is recorded as a candidate
        of its cause, and when ``cluster.count`` candidates fall within ``cluster.window`` they
        open the incident together, the earlier ones attached too (``cluster=None``: it
        opens one alone). Runs under a transaction-scoped advisory lock on the key: two
        tickets of the same outage at the same moment serialize here and find one incident.
        A retry with the same ``idempotency_key`` returns the first answer.
        """
        key = ticket.key
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", key)
            done = await self._answer(conn, idempotency_key, cluster or DEFAULT_INCIDENT_CLUSTER)
            if done is not None:
                return done
            at: datetime = ticket.at or await conn.fetchval("SELECT now()")
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
                    ticket_id=ticket.ticket_id,
                    priority=ticket.priority,
                    title=ticket.title,
                    current=Priority(found["priority"]),
                    at=at,
                    idempotency_key=idempotency_key,
                )
                return JoinResult(found["id"], found["workflow_id"], False)
            opening = _Opening(
                key,
                ticket.ticket_id,
                ticket.priority,
                ticket.category,
                ticket.title,
                at,
                idempotency_key,
            )
            if ticket.priority is Priority.P1 or cluster is None:
                return await self._open(conn, opening, cluster=[])
            waiting = await self._count(conn, opening, cluster)
            if len(waiting) < cluster.count:
                return Counted(len(waiting))
            return await self._open(conn, opening, cluster=waiting)

    @staticmethod
    async def _answer(
        conn: Conn, idempotency_key: str, cluster: IncidentCluster
    ) -> JoinResult | Counted | None:
        """What an earlier attempt with this key answered, if one committed."""
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
        counted = await conn.fetchrow(
            """
            SELECT c.incident_id, i.workflow_id,
                   (SELECT count(*) FROM support_incident_candidates w
                    WHERE w.key = c.key AND w.incident_id IS NULL
                      AND w.at >= c.at - $2::interval AND w.at <= c.at) AS waiting
            FROM support_incident_candidates c
            LEFT JOIN support_incidents i ON i.id = c.incident_id
            WHERE c.idempotency_key = $1
            """,
            idempotency_key,
            cluster.window,
        )
        if counted is None:
            return None
        if counted["incident_id"] is not None:  # a later ticket's cluster took it in
            return JoinResult(counted["incident_id"], counted["workflow_id"], False)
        return Counted(int(counted["waiting"]))

    @staticmethod
    async def _count(
        conn: Conn, opening: _Opening, cluster: IncidentCluster
    ) -> list[asyncpg.Record]:
        """Record a P2 as a candidate of its cause; the candidates waiting in the window."""
        await conn.execute(
            """
            INSERT INTO support_incident_candidates (key, ticket_id, priority, title, at,
                                                     idempotency_key)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (key, ticket_id) DO NOTHING
            """,
            opening.key,
            opening.ticket_id,
            opening.priority.value,
            opening.title,
            opening.at,
            opening.idempotency_key,
        )
        return await conn.fetch(
            """
            SELECT ticket_id, priority, title, at FROM support_incident_candidates
            WHERE key = $1 AND incident_id IS NULL AND at >= $2 AND at <= $3
            ORDER BY at, ticket_id
            """,
            opening.key,
            opening.at - cluster.window,
            opening.at,
        )

    async def _open(
        self, conn: Conn, opening: _Opening, *, cluster: list[asyncpg.Record]
    ) -> JoinResult:
        """Open the incident: for a P1 alone, or for a cluster of P2s (all attached)."""
        incident_id = uuid.uuid4()
        workflow_id = incident_workflow_id(incident_id)
        key, ticket_id, priority, at = opening.key, opening.ticket_id, opening.priority, opening.at
        # The title is the first report's; the opening ticket is the one that made it one.
        title = cluster[0]["title"] if cluster else opening.title
        await conn.execute(
            """
            INSERT INTO support_incidents (id, key, priority, category, title,
                first_ticket_id, workflow_id, opened_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            """,
            incident_id,
            key,
            priority.value,
            opening.category.value,
            title,
            ticket_id,
            workflow_id,
            at,
        )
        members = [(r["ticket_id"], r["at"]) for r in cluster] or [(ticket_id, at)]
        await conn.executemany(
            """
            INSERT INTO support_incident_tickets (incident_id, ticket_id, attached_at,
                                                  idempotency_key)
            VALUES ($1, $2, $3, $4)
            """,
            [
                (
                    incident_id,
                    member,
                    when,
                    opening.idempotency_key if member == ticket_id else None,
                )
                for member, when in members
            ],
        )
        why = ""
        if cluster:
            await conn.execute(
                "UPDATE support_incident_candidates SET incident_id = $3 "
                "WHERE key = $1 AND ticket_id = ANY($2::uuid[])",
                key,
                [member for member, _ in members],
                incident_id,
            )
            first = min(when for _, when in members)
            span = max(1, round((at - first).total_seconds() / 60))
            why = f" with {len(members) - 1} earlier ticket(s) of one cause within {span} min"
        await self._log(
            conn,
            incident_id=incident_id,
            at=at,
            entry=f"opened by ticket {ticket_id} ({priority.value}){why}: {title}",
            line_key=f"{opening.idempotency_key}:timeline",
            action="incident.opened",
            ticket_id=ticket_id,
            details={
                "key": key,
                "priority": priority.value,
                "category": opening.category.value,
                "workflow_id": workflow_id,
                "cluster": [str(member) for member, _ in members] if cluster else None,
            },
            idempotency_key=opening.idempotency_key,
        )
        await kpi.emit(
            conn,
            event="incident_opened",
            ticket_id=ticket_id,
            priority=priority.value,
            category=opening.category.value,
            idempotency_key=f"{opening.idempotency_key}:incident_opened",
            details={"incident_id": str(incident_id), "key": key, "tickets": len(members)},
        )
        return JoinResult(incident_id, workflow_id, True)

    async def _attach(
        self,
        conn: Conn,
        *,
        incident_id: uuid.UUID,
        ticket_id: uuid.UUID,
        priority: Priority,
        title: str,
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
            # A more severe ticket joining makes the incident more severe, and its title
            # names what is now the worst of it.
            await conn.execute(
                "UPDATE support_incidents SET priority = $2, title = $3 WHERE id = $1",
                incident_id,
                priority.value,
                title,
            )
        await self._log(
            conn,
            incident_id=incident_id,
            at=at,
            entry=f"ticket {ticket_id} ({priority.value}) attached"
            + (
                f"; incident escalated {current.value} -> {priority.value}: {title}"
                if raised
                else ""
            ),
            line_key=f"{idempotency_key}:timeline",
            action="incident.ticket_attached",
            ticket_id=ticket_id,
            details={"priority": priority.value},
            idempotency_key=idempotency_key,
        )

    @staticmethod
    async def _log(
        conn: Conn,
        *,
        incident_id: uuid.UUID,
        entry: str,
        action: str,
        idempotency_key: str,
        actor: str = SYSTEM_ACTOR,
        at: datetime | None = None,
        ticket_id: uuid.UUID | None = None,
        details: dict[str, Any] | None = None,
        line_key: str | None = None,
    ) -> bool:
        """One timeline line (keyed ``line_key``, else ``idempotency_key``) and, the first
        time, its audit entry; False when the line was recorded before."""
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
            line_key or idempotency_key,
        )
        if not status.endswith(" 1"):
            return False
        await audit.append(
            conn,
            actor=actor,
            action=action,
            ticket_id=ticket_id,
            details={"incident_id": str(incident_id), **(details or {})},
            idempotency_key=idempotency_key,
        )
        return True

    async def recorded(self, idempotency_key: str) -> bool:
        """True when a timeline entry with this key exists (the work it stands for is done)."""
        async with self._pool.acquire() as conn:
            found = await conn.fetchval(
                "SELECT 1 FROM support_incident_timeline WHERE idempotency_key = $1",
                idempotency_key,
            )
        return found is not None

    async def record_event(self, event: IncidentEvent, *, idempotency_key: str) -> bool:
        """Add a timeline entry with its audit entry; False when it was recorded before."""
        async with self._pool.acquire() as conn, conn.transaction():
            return await self._log(
                conn,
                incident_id=event.incident_id,
                entry=event.entry,
                action=event.action,
                idempotency_key=idempotency_key,
                actor=event.actor,
                at=event.at,
                ticket_id=event.ticket_id,
                details={"entry": event.entry},
            )

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
            added = await self._log(
                conn,
                incident_id=incident_id,
                entry=entry,
                action="incident.paged",
                idempotency_key=idempotency_key,
                at=at,
                details={"level": level, "loop": loop, "recipients": recipients},
            )
            if added:
                await conn.execute(
                    "UPDATE support_incidents SET escalation_level = $2, escalation_loop = $3 "
                    "WHERE id = $1",
                    incident_id,
                    level,
                    loop,
                )
            return added

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
        list_tickets: bool = True,
    ) -> list[AttachTicket]:
        """Acknowledge or resolve the incident; returns its tickets (what a resolution tells),
        none unless ``list_tickets``.

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
                await self._log(
                    conn,
                    incident_id=incident_id,
                    entry=entry,
                    action=f"incident.{status.value}",
                    idempotency_key=idempotency_key,
                    actor=actor,
                    at=when,
                    details={"channel": channel.value if channel else None, "note": note},
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
            return await self._tickets(conn, incident_id) if list_tickets else []

    @staticmethod
    async def _tickets(
        conn: Conn, incident_id: uuid.UUID, *, offset: int = 0, limit: int | None = None
    ) -> list[AttachTicket]:
        rows = await conn.fetch(
            """
            SELECT t.id AS ticket_id, t.workflow_id, coalesce(t.priority, i.priority) AS priority,
                   t.subject AS summary
            FROM support_incident_tickets it
            JOIN support_tickets t ON t.id = it.ticket_id
            JOIN support_incidents i ON i.id = it.incident_id
            WHERE it.incident_id = $1
            ORDER BY it.attached_at, t.id
            OFFSET $2 LIMIT $3
            """,
            incident_id,
            offset,
            limit,
        )
        return [AttachTicket.model_validate(dict(r)) for r in rows]

    async def tickets(
        self, incident_id: uuid.UUID, *, offset: int = 0, limit: int | None = None
    ) -> list[AttachTicket]:
        """The tickets attached to an incident, in the order they joined (``limit`` of them
        from ``offset``: an incident of a large outage has thousands)."""
        async with self._pool.acquire() as conn:
            return await self._tickets(conn, incident_id, offset=offset, limit=limit)

    async def ticket_count(self, incident_id: uuid.UUID) -> int:
        """How many tickets are attached to the incident."""
        async with self._pool.acquire() as conn:
            count: int = await conn.fetchval(
                "SELECT count(*) FROM support_incident_tickets WHERE incident_id = $1",
                incident_id,
            )
        return count

    async def set_slack_message(
        self,
        incident_id: uuid.UUID,
        *,
        channel: str,
        ts: str,
        posted_by: str | None = None,
        replace: bool = False,
    ) -> None:
        """Remember where the incident was posted in Slack: set once, or ``replace`` it when
        the incident escalated and was posted anew; ``posted_by`` is the posting activity."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE support_incidents SET slack_channel = $2, slack_ts = $3, "
                "slack_posted_by = $4 WHERE id = $1 AND (slack_ts IS NULL OR $5)",
                incident_id,
                channel,
                ts,
                posted_by,
                replace,
            )

    async def slack_message_by(self, posted_by: str) -> bool:
        """True when the incident's current Slack message was posted by this activity."""
        async with self._pool.acquire() as conn:
            found = await conn.fetchval(
                "SELECT 1 FROM support_incidents WHERE slack_posted_by = $1", posted_by
            )
        return found is not None

    async def slack_message(self, incident_id: uuid.UUID) -> tuple[str, str] | None:
        """The Slack channel and ts of the incident's message, if it was posted."""
        return await slack_refs.slack_message(self._pool, "support_incidents", incident_id)

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

    async def timeline_ends(
        self, incident_id: uuid.UUID, *, head: int = TIMELINE_HEAD, tail: int = TIMELINE_TAIL
    ) -> TimelineEnds:
        """The timeline's first ``head`` and last ``tail`` lines, oldest first: how the
        incident began and how it goes, however many tickets joined in between."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """
                SELECT at, what, actor, n, total FROM (
                    SELECT at, entry AS what, actor,
                           row_number() OVER (ORDER BY at, id) AS n, count(*) OVER () AS total
                    FROM support_incident_timeline WHERE incident_id = $1
                ) numbered
                WHERE n <= $2 OR n > total - $3
                ORDER BY n
                """,
                incident_id,
                head,
                tail,
            )
        entries = [TimelineEntry(at=r["at"], what=r["what"], actor=r["actor"]) for r in rows]
        total = rows[0]["total"] if rows else 0
        first = [e for e, r in zip(entries, rows, strict=True) if r["n"] <= head]
        return TimelineEnds(first, total - len(entries), entries[len(first) :])

    async def get(self, incident_id: uuid.UUID, *, tickets: bool = True) -> IncidentRecord | None:
        """One incident with its ticket count and latest tickets (``tickets`` False: its
        head only, no count)."""
        columns = _COLUMNS if tickets else _HEAD_COLUMNS
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT {columns} FROM support_incidents i WHERE i.id = $1", incident_id
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

    async def open_incident_of(self, ticket_id: uuid.UUID) -> uuid.UUID | None:
        """The open (or acknowledged) incident the ticket is attached to, if any."""
        async with self._pool.acquire() as conn:
            found: uuid.UUID | None = await conn.fetchval(
                """
                SELECT i.id FROM support_incident_tickets t
                JOIN support_incidents i ON i.id = t.incident_id
                WHERE t.ticket_id = $1 AND i.status IN ('open', 'acknowledged')
                ORDER BY i.opened_at DESC LIMIT 1
                """,
                ticket_id,
            )
        return found

    async def record_notice(
        self,
        *,
        notice: SlaNotice,
        recipients: list[str],
        idempotency_key: str,
        incident_id: uuid.UUID | None = None,
    ) -> bool:
        """KPI ``sla_warning`` / ``sla_breached`` (value: seconds overdue) and the audit entry
        (``incident_id``: the open incident the notice was left to, instead of being sent)."""
        event = "sla_breached" if notice.event.value == "breach" else "sla_warning"
        details: dict[str, Any] = {
            "clock": notice.clock.value,
            "deadline": notice.deadline.isoformat(),
            "target_seconds": notice.target_seconds,
            "elapsed_seconds": round(notice.elapsed_seconds, 3),
            "overdue_seconds": round(notice.overdue_seconds, 3),
        }
        if incident_id is not None:
            details["left_to_incident"] = str(incident_id)
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
