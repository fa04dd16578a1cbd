"""What the staff console shows: the queue, a ticket's page, incidents, KPIs, the weekly review.

Read-only. The queue is one SQL query over the support schema, never one workflow query per
row: its SLA columns are computed with the SLA targets from what the database keeps of each
ticket's clocks (``sql/020_console_queue.sql``), by the same arithmetic as the workflow's
(:mod:`kruxt.models.sla`). Only a ticket's own page asks its workflow for the live state.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
from temporalio.client import Client

from kruxt.adapters.postgres import audit
from kruxt.adapters.postgres.approvals import ApprovalStore
from kruxt.adapters.postgres.incidents import IncidentStore
from kruxt.adapters.postgres.kpi_report import KpiStore
from kruxt.adapters.postgres.references import parse_prefix
from kruxt.adapters.postgres.reviews import ReviewStore
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.models.approvals import (
    ApprovalKind,
    ApprovalState,
    ApprovalStatus,
    Decision,
    DecisionChannel,
    PendingApproval,
    Verdict,
)
from kruxt.models.console import (
    ApprovalView,
    ConsoleIncident,
    ConsoleReview,
    ConsoleTicket,
    QueueBucket,
    QueueFilter,
    QueueRow,
)
from kruxt.models.enums import Priority, TicketStatus
from kruxt.models.incidents import IncidentRecord
from kruxt.models.kpi import KpiReport
from kruxt.models.playbooks import PlaybookPlan, RunStatus
from kruxt.models.sla import ClockKind, ClockState, SlaClock, SlaTargets, summarize
from kruxt.models.text import replace_unstorable
from kruxt.models.tickets import TicketState
from kruxt.starter.live_state import live_state, overlay
from kruxt.workflows.approvals import refusal

if TYPE_CHECKING:
    from kruxt.starter.console.auth import StaffMember

__all__ = ["ConsoleQueries", "escape_like", "short_id"]

# Which tickets each tab holds: fixed SQL, chosen by the enum, never built from input.
_BUCKETS: dict[QueueBucket, str] = {
    QueueBucket.AWAITING_APPROVAL: "t.status = 'awaiting_approval'",
    QueueBucket.AWAITING_HUMAN: "t.status = 'awaiting_human'",
    QueueBucket.REOPENED: "t.reopened_count > 0 AND t.status <> 'resolved'",
    # Refined in Python: the SLA state is computed, not stored.
    QueueBucket.SLA_RISK: "t.status <> 'resolved' AND t.priority IS NOT NULL",
    QueueBucket.ALL: "t.status <> 'resolved'",
}
_AT_RISK = frozenset({ClockState.AT_RISK, ClockState.BREACHED})
# The same tabs, told apart on an open ticket's row (for the counts).
_IN_BUCKET: dict[QueueBucket, Callable[[QueueRow], bool]] = {
    QueueBucket.AWAITING_APPROVAL: lambda r: r.status is TicketStatus.AWAITING_APPROVAL,
    QueueBucket.AWAITING_HUMAN: lambda r: r.status is TicketStatus.AWAITING_HUMAN,
    QueueBucket.REOPENED: lambda r: r.reopened,
    QueueBucket.SLA_RISK: lambda r: r.sla_state in _AT_RISK,
    QueueBucket.ALL: lambda r: True,
}

_ROW = """
    SELECT t.id, t.subject, t.requester_email, t.requester_name, t.priority, t.channel,
           t.status, t.created_at, t.updated_at, t.assignee, t.resolved_at, t.reopened_count,
           coalesce(t.sla_started_at, t.created_at) AS sla_started_at, t.answered_at,
           t.sla_paused_seconds, t.sla_paused_since,
           (SELECT it.incident_id FROM support_incident_tickets it
            WHERE it.ticket_id = t.id ORDER BY it.attached_at DESC LIMIT 1) AS incident_id,
           now() AS now
    FROM support_tickets t
"""
# The filters every tab shares: $1 priority, $2 channel, $3 search pattern, $4/$5 id range.
_FILTERS = """
    ($1::text IS NULL OR t.priority = $1)
    AND ($2::text IS NULL OR t.channel = $2)
    AND ($3::text IS NULL
         OR t.subject ILIKE $3 ESCAPE '\\' OR t.requester_email ILIKE $3 ESCAPE '\\'
         OR t.requester_name ILIKE $3 ESCAPE '\\' OR t.external_id ILIKE $3 ESCAPE '\\'
         OR t.id BETWEEN $4 AND $5)
"""


def escape_like(text: str) -> str:
    """``text`` as a LIKE pattern matching itself anywhere: its wildcards made literal."""
    literal = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{literal}%"


def short_id(ticket_id: uuid.UUID) -> str:
    """The 8-character reference customers are given (``C8AC88BA``)."""
    return str(ticket_id)[:8].upper()


def _search_args(search: str) -> tuple[str | None, uuid.UUID | None, uuid.UUID | None]:
    """The pattern and the id range a search matches (an id, or the start of one, matches by
    range; any text as a substring)."""
    if not search:
        return None, None, None
    # What Postgres cannot take as text (NUL) matches nothing rather than failing the query.
    search = replace_unstorable(search)
    digits = parse_prefix(search)
    if digits is None:
        return escape_like(search), None, None
    return escape_like(search), uuid.UUID(digits.ljust(32, "0")), uuid.UUID(digits.ljust(32, "f"))


def _sla(row: asyncpg.Record, targets: SlaTargets) -> tuple[ClockKind, ClockState, datetime | None]:
    """The clock that matters now (first response until answered, then resolution), its
    state, and its deadline (None while paused or stopped)."""
    priority = Priority(row["priority"])
    now: datetime = row["now"]
    resolved = row["status"] == TicketStatus.RESOLVED.value

    def clock(kind: ClockKind, **kw: Any) -> SlaClock:
        started = SlaClock(
            kind=kind,
            started_at=row["sla_started_at"],
            target_seconds=targets.target_seconds(kind, priority),
            warn_fraction=targets.warn_fraction,
            **kw,
        )
        # What the workflow reported already: a clock past its target stays breached.
        return started.model_copy(update={"breached": started.overdue(now) > 0})

    first = clock(ClockKind.FIRST_RESPONSE, stopped_at=row["answered_at"])
    if first.stopped_at is None and not resolved:
        current = first
    else:
        current = clock(
            ClockKind.RESOLUTION,
            paused_seconds=row["sla_paused_seconds"],
            paused_since=row["sla_paused_since"],
            stopped_at=row["resolved_at"] if resolved else None,
        )
    (summary,) = summarize([current], now).clocks
    due = None if current.stopped else summary.deadline
    return current.kind, summary.state, due


def _row(row: asyncpg.Record, targets: SlaTargets) -> QueueRow:
    sla = _sla(row, targets) if row["priority"] is not None else (None, None, None)
    return QueueRow(
        ticket_id=row["id"],
        short_id=short_id(row["id"]),
        subject=row["subject"],
        requester_email=row["requester_email"],
        requester_name=row["requester_name"],
        priority=row["priority"],
        channel=row["channel"],
        status=row["status"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        age_seconds=max(0.0, (row["now"] - row["created_at"]).total_seconds()),
        assignee=row["assignee"],
        incident_id=row["incident_id"],
        reopened=row["reopened_count"] > 0,
        sla_clock=sla[0],
        sla_state=sla[1],
        sla_due_at=sla[2],
    )


def _urgency(row: QueueRow) -> tuple[int, datetime, float]:
    """P1 first, then the nearest deadline, then the newest."""
    rank = row.priority.rank if row.priority is not None else 9
    due = row.sla_due_at or datetime.max.replace(tzinfo=row.created_at.tzinfo)
    return rank, due, -row.created_at.timestamp()


class ConsoleQueries:
    """The console's read models, from the support schema and the tickets' workflows."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        client: Client,
        sla_policy: SlaTargets,
        *,
        state_timeout: float = 2.0,
    ) -> None:
        """``sla_policy``: the targets the queue's SLA columns are computed with;
        ``state_timeout``: how long a ticket's page waits for its workflow's live state."""
        self._pool = pool
        self._client = client
        self._sla = sla_policy
        self._state_timeout = state_timeout
        self._tickets = TicketStore(pool)
        self._incidents = IncidentStore(pool)
        self._reviews = ReviewStore(pool)

    async def queue(self, queue_filter: QueueFilter) -> list[QueueRow]:
        """The tickets of one tab, filtered: the most urgent first (P1 first, then the
        nearest SLA deadline), then the newest; the "all" tab lists solved tickets after the
        open ones, newest first."""
        f = queue_filter
        args = (
            f.priority.value if f.priority else None,
            f.channel.value if f.channel else None,
            *_search_args(f.search),
        )
        # Every open ticket of the tab is read: its urgency is computed, not stored.
        rows = await self._fetch(_BUCKETS[f.bucket], args)
        rows = sorted(filter(_IN_BUCKET[f.bucket], rows), key=_urgency)
        if f.bucket is QueueBucket.ALL and len(rows) < f.limit:
            rows += await self._fetch(
                "t.status = 'resolved'", args, order="t.created_at DESC", limit=f.limit - len(rows)
            )
        return rows[: f.limit]

    async def _fetch(
        self, where: str, args: tuple[object, ...], *, order: str = "", limit: int | None = None
    ) -> list[QueueRow]:
        query = f"{_ROW} WHERE {where} AND {_FILTERS}"
        if order:
            query += f" ORDER BY {order}"
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        async with self._pool.acquire() as conn:
            records = await conn.fetch(query, *args)
        return [_row(r, self._sla) for r in records]

    async def counts(self) -> dict[QueueBucket, int]:
        """How many tickets each tab holds (the "all" tab: the open ones)."""
        open_rows = await self._fetch(_BUCKETS[QueueBucket.ALL], (None, None, None, None, None))
        return {b: sum(1 for r in open_rows if test(r)) for b, test in _IN_BUCKET.items()}

    async def ticket(
        self, ticket_id: uuid.UUID, viewer: StaffMember | None = None
    ) -> ConsoleTicket | None:
        """The ticket page's data (``viewer``: whose decisions to offer); None: no ticket.

        The stored ticket with its workflow's live state laid over it; when the workflow
        does not answer in time, the stored ticket alone (``live`` False, no approvals).
        """
        view = await self._tickets.get(ticket_id)
        if view is None:
            return None
        state = await live_state(self._client, ticket_id, timeout=self._state_timeout)
        async with self._pool.acquire() as conn:
            trail = await audit.entries_for_ticket(conn, ticket_id)
        incident_id = state.incident_id if state is not None else None
        incident = await self._incidents.get(incident_id) if incident_id else None
        # The live triage is the latest (a reopened ticket is triaged again).
        triage = (state.triage if state else None) or (view.triage.result if view.triage else None)
        return ConsoleTicket(
            view=overlay(view, state) if state is not None else view,
            live=state is not None,
            short_id=short_id(ticket_id),
            severity_reasons=triage.severity_floor_reasons if triage else [],
            incident=incident,
            approvals=_approvals(state, viewer) if state is not None else [],
            rollbackable=_rollbackable(state) if state is not None else [],
            audit=trail,
        )

    async def incidents(self) -> list[IncidentRecord]:
        """Open and acknowledged incidents, the most severe first, then the oldest."""
        return await self._incidents.list_open()

    async def incident(self, incident_id: uuid.UUID) -> ConsoleIncident | None:
        """One incident with its escalation level and timeline; None: no such incident."""
        record = await self._incidents.get(incident_id)
        if record is None:
            return None
        first, left_out, last = await self._incidents.timeline_ends(incident_id)
        return ConsoleIncident(
            incident=record, timeline=first, timeline_left_out=left_out, timeline_last=last
        )

    async def kpis(self, days: int = 7) -> KpiReport:
        """The KPI report over the last ``days`` days (ending now)."""
        async with self._pool.acquire() as conn:
            until: datetime = await conn.fetchval("SELECT now()")
        return await KpiStore(self._pool).report(until - timedelta(days=days), until)

    async def latest_review(self) -> ConsoleReview | None:
        """The newest stored weekly review; None before the first one."""
        weeks = await self._reviews.weeks()
        found = await self._reviews.get(weeks[0]) if weeks else None
        if found is None:
            return None
        review, html = found
        return ConsoleReview(review=review, html=html)

    async def pending_approvals(self) -> list[PendingApproval]:
        """Approval requests waiting for a decision, the oldest first (``/v1/staff/approvals``)."""
        return await ApprovalStore(self._pool).pending()


def _approvals(state: TicketState, viewer: StaffMember | None) -> list[ApprovalView]:
    """The ticket's approvals, newest first, each with its plan and what ``viewer`` may do."""
    plans = {p.plan_id: p for p in state.plans} | {r.plan.plan_id: r.plan for r in state.runs}
    return [_approval(a, plans.get(a.request.plan_id), viewer) for a in reversed(state.approvals)]


def _approval(
    state: ApprovalState, plan: PlaybookPlan | None, viewer: StaffMember | None
) -> ApprovalView:
    if state.status is not ApprovalStatus.PENDING:
        return ApprovalView(approval=state, plan=plan)
    if viewer is None:
        return ApprovalView(approval=state, plan=plan, refusal="nobody is signed in")
    # The workflow's own rule, asked ahead: the validator still has the last word.
    why = refusal(
        state,
        Decision(
            approval_id=state.request.approval_id,
            approver=viewer.email,
            roles=list(viewer.roles),
            verdict=Verdict.APPROVE,
            channel=DecisionChannel.CONSOLE,
        ),
        datetime.now(UTC),
    )
    verdicts = [] if why is not None else [Verdict.APPROVE, Verdict.REJECT]
    return ApprovalView(approval=state, plan=plan, verdicts=verdicts, refusal=why)


def _rollbackable(state: TicketState) -> list[uuid.UUID]:
    """Runs that succeeded and have no rollback asked for or approved yet."""
    asked = {
        a.request.run_id
        for a in state.approvals
        if a.request.kind is ApprovalKind.ROLLBACK
        and a.status in (ApprovalStatus.PENDING, ApprovalStatus.APPROVED)
    }
    return [
        r.run_id for r in state.runs if r.status is RunStatus.SUCCEEDED and r.run_id not in asked
    ]
