"""What the staff console shows: the queue's tabs, order, SLA columns and search from the
database alone (no workflow asked per row), and a ticket's page with a plan awaiting approval
from its real workflow."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from temporalio.client import Client

from kruxt.adapters.approvers import Approver, ApproverDirectory
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.models.approvals import ApprovalStatus, Verdict
from kruxt.models.console import QueueBucket, QueueFilter, QueueRow
from kruxt.models.enums import Channel, Priority, TicketStatus
from kruxt.models.playbooks import ApproverRole
from kruxt.models.records import MessageKind, ThreadMessage
from kruxt.models.sla import ClockKind, ClockState, SlaTargets
from kruxt.models.tickets import TicketIntake
from kruxt.starter.console.auth import StaffMember
from kruxt.starter.console.queries import ConsoleQueries, escape_like
from tests.support import ApprovalRig, intake

HOUR = timedelta(hours=1)


class Desk:
    """Tickets written as the workflow's activities write them (so the database's triggers
    see every status change and answer), at chosen ages."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self.store = TicketStore(pool)
        self._n = 0
        # Ages count from the test's own start, not the module's import (a suite runs for minutes).
        self.now = datetime.now(UTC)

    def _key(self) -> str:
        self._n += 1
        return f"test:{self._n}"

    async def ticket(
        self,
        subject: str,
        *,
        priority: Priority | None = Priority.P3,
        status: TicketStatus | None = None,
        age: timedelta = timedelta(0),
        answered: bool = False,
        email: str = "ana@example.com",
        channel: Channel = Channel.IN_APP,
    ) -> TicketIntake:
        ticket = intake(subject=subject, email=email, channel=channel)
        ticket = ticket.model_copy(update={"received_at": self.now - age})
        await self.store.persist_ticket(
            intake=ticket, workflow_id=f"ticket-{ticket.ticket_id}", idempotency_key=self._key()
        )
        if priority is not None:
            await self.store.change_priority(
                ticket_id=ticket.ticket_id,
                priority=priority.value,
                actor="autopilot",
                reason="triage",
                idempotency_key=self._key(),
            )
        if answered:
            await self.answer(ticket.ticket_id)
        if status is not None:
            await self.status(ticket.ticket_id, status)
        return ticket

    async def answer(self, ticket_id: uuid.UUID) -> None:
        message = ThreadMessage(
            ticket_id=ticket_id, message_id=uuid.uuid4(), kind=MessageKind.AUTO_REPLY, body="Hi"
        )
        await self.store.record_outbound_message(message, idempotency_key=self._key())

    async def status(self, ticket_id: uuid.UUID, status: TicketStatus) -> None:
        await self.store.change_status(
            ticket_id=ticket_id,
            status=status,
            actor="autopilot",
            reason="test",
            idempotency_key=self._key(),
        )


@pytest.fixture
def desk(pool: asyncpg.Pool[Any]) -> Desk:
    return Desk(pool)


@pytest.fixture
def queries(pool: asyncpg.Pool[Any], ts_env: Any) -> ConsoleQueries:
    client: Client = ts_env.client
    return ConsoleQueries(pool, client, SlaTargets())


def subjects(rows: list[QueueRow]) -> list[str]:
    return [r.subject for r in rows]


async def test_the_queue_tabs_order_and_sla_come_from_the_database(
    desk: Desk, queries: ConsoleQueries
) -> None:
    # P3: first response due in 4 h (warned at 3 h), resolution in 72 h (warned at 54 h).
    await desk.ticket("plan waits", priority=Priority.P2, status=TicketStatus.AWAITING_APPROVAL)
    await desk.ticket("p3 human, 1h", status=TicketStatus.AWAITING_HUMAN, age=HOUR)
    await desk.ticket("p1 human", priority=Priority.P1, status=TicketStatus.AWAITING_HUMAN)
    await desk.ticket("p3 unanswered, 3.5h", age=3.5 * HOUR)
    await desk.ticket("p4 unanswered, 5h", priority=Priority.P4, age=5 * HOUR)
    # Answered 60 h ago: the resolution clock is at risk, unless it waits on the customer.
    await desk.ticket(
        "p3 answered, 60h", answered=True, age=60 * HOUR, status=TicketStatus.AWAITING_HUMAN
    )
    await desk.ticket(
        "p3 answered, waits", answered=True, age=60 * HOUR, status=TicketStatus.AWAITING_CUSTOMER
    )
    # Reopened 5 h after it came in: its clocks start again at the reopening.
    reopened = await desk.ticket("reopened", answered=True, age=5 * HOUR)
    await desk.status(reopened.ticket_id, TicketStatus.RESOLVED)
    await desk.status(reopened.ticket_id, TicketStatus.REOPENED)
    await desk.ticket("untriaged", priority=None)
    await desk.ticket("solved", answered=True, status=TicketStatus.RESOLVED, age=2 * HOUR)

    rows = await queries.queue(QueueFilter())
    assert subjects(rows) == [
        "p1 human",
        "plan waits",
        # P3: the nearest deadline first (first response: 0.5 h, 3 h, 4 h away, then the
        # 60 h old resolution clock, 12 h away; the paused one has no deadline).
        "p3 unanswered, 3.5h",
        "p3 human, 1h",
        "reopened",
        "p3 answered, 60h",
        "p3 answered, waits",
        "p4 unanswered, 5h",
        "untriaged",
        "solved",  # solved tickets last, the newest first
    ]
    by = {r.subject: r for r in rows}
    assert (by["p3 unanswered, 3.5h"].sla_clock, by["p3 unanswered, 3.5h"].sla_state) == (
        ClockKind.FIRST_RESPONSE,
        ClockState.AT_RISK,
    )
    due = by["p3 unanswered, 3.5h"].sla_due_at
    assert due is not None and abs(due - (desk.now + 0.5 * HOUR)) < timedelta(seconds=5)
    assert by["p4 unanswered, 5h"].sla_state is ClockState.BREACHED
    assert by["p3 human, 1h"].sla_state is ClockState.RUNNING
    answered, waiting = by["p3 answered, 60h"], by["p3 answered, waits"]
    assert (answered.sla_clock, answered.sla_state) == (ClockKind.RESOLUTION, ClockState.AT_RISK)
    assert (waiting.sla_state, waiting.sla_due_at) == (ClockState.PAUSED, None)
    assert by["reopened"].reopened and by["reopened"].sla_state is ClockState.RUNNING
    assert by["reopened"].sla_clock is ClockKind.FIRST_RESPONSE
    assert by["untriaged"].sla_state is None
    assert (by["solved"].sla_state, by["solved"].sla_due_at) == (ClockState.MET, None)
    assert by["p1 human"].short_id == str(by["p1 human"].ticket_id)[:8].upper()
    assert by["p3 human, 1h"].age_seconds == pytest.approx(3600, abs=30)

    async def tab(bucket: QueueBucket) -> list[str]:
        return subjects(await queries.queue(QueueFilter(bucket=bucket)))

    assert await tab(QueueBucket.AWAITING_APPROVAL) == ["plan waits"]
    assert await tab(QueueBucket.AWAITING_HUMAN) == ["p1 human", "p3 human, 1h", "p3 answered, 60h"]
    assert await tab(QueueBucket.SLA_RISK) == [
        "p3 unanswered, 3.5h",
        "p3 answered, 60h",
        "p4 unanswered, 5h",
    ]
    assert await tab(QueueBucket.REOPENED) == ["reopened"]
    assert await queries.counts() == {
        QueueBucket.AWAITING_APPROVAL: 1,
        QueueBucket.AWAITING_HUMAN: 3,
        QueueBucket.SLA_RISK: 3,
        QueueBucket.REOPENED: 1,
        QueueBucket.ALL: 9,
    }
    p3 = await queries.queue(QueueFilter(priority=Priority.P3, limit=2))
    assert subjects(p3) == ["p3 unanswered, 3.5h", "p3 human, 1h"]


async def test_a_wait_on_the_customer_pushes_the_deadline_back(
    desk: Desk, queries: ConsoleQueries, pool: asyncpg.Pool[Any]
) -> None:
    ticket = await desk.ticket(
        "waits", answered=True, age=60 * HOUR, status=TicketStatus.AWAITING_CUSTOMER
    )
    [row] = await queries.queue(QueueFilter())
    assert (row.sla_state, row.sla_due_at) == (ClockState.PAUSED, None)
    # Ten hours later the customer writes back.
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE support_tickets SET sla_paused_since = now() - interval '10 hours' "
            "WHERE id = $1",
            ticket.ticket_id,
        )
    await desk.status(ticket.ticket_id, TicketStatus.AWAITING_HUMAN)
    [row] = await queries.queue(QueueFilter())
    # 50 h counted of 72 h: running again, due 22 h from now instead of 12 h.
    assert row.sla_state is ClockState.RUNNING
    assert row.sla_due_at is not None
    assert abs(row.sla_due_at - (desk.now + 22 * HOUR)) < timedelta(seconds=30)


async def test_search_takes_its_text_literally(desk: Desk, queries: ConsoleQueries) -> None:
    await desk.ticket("Refund 100% now")
    await desk.ticket("user_name is wrong")
    await desk.ticket("crash in (.*) and [a-z]+")
    await desk.ticket("plain", email="bo@example.org")
    await desk.ticket("backslash \\ here")
    other = await desk.ticket("nothing special")

    async def found(text: str) -> list[str]:
        return sorted(subjects(await queries.queue(QueueFilter(search=text))))

    assert await found("%") == ["Refund 100% now"]
    assert await found("100%") == ["Refund 100% now"]
    assert await found("_") == ["user_name is wrong"]
    assert await found("(.*)") == ["crash in (.*) and [a-z]+"]
    assert await found(".*") == ["crash in (.*) and [a-z]+"]
    assert await found("[a-z]") == ["crash in (.*) and [a-z]+"]
    assert await found("\\") == ["backslash \\ here"]
    assert await found("REFUND") == ["Refund 100% now"]
    assert await found("example.org") == ["plain"]
    assert await found("no such text") == []
    assert await found("nul \x00") == []
    # A ticket's reference (its id's start), as customers quote it, or its whole id.
    assert await found(str(other.ticket_id)[:8].upper()) == ["nothing special"]
    assert await found(str(other.ticket_id)) == ["nothing special"]


def test_like_patterns_escape_their_wildcards() -> None:
    assert escape_like("50%_off\\") == "%50\\%\\_off\\\\%"


def hidden_post() -> TicketIntake:
    """A member whose post the automatic moderator hid (demo ``u-post-author``): its plan, to
    make the post visible again, needs a moderator."""
    ticket = intake(
        subject="My post was hidden",
        body="My post was hidden from the feed for no reason, please restore it.",
    )
    return ticket.model_copy(update={"account_id": "u-post-author"})


MAYA = Approver(name="Maya", email="maya@kruxt.app", roles=[ApproverRole.ADMIN])
SAM = Approver(name="Sam", email="sam@kruxt.app", roles=[ApproverRole.ADMIN])
# The requester of the tickets below (tests.support.intake), made an admin: never an approver.
ANA = Approver(name="Ana", email="ana@example.com", roles=[ApproverRole.STAFF], level=2)
ROOKIE = Approver(name="Rookie", email="rookie@kruxt.app", roles=[ApproverRole.APPROVER], level=2)
APPROVERS = ApproverDirectory([MAYA, SAM, ANA, ROOKIE])


async def test_the_ticket_page_shows_the_plan_and_who_may_decide(
    approval_rig: ApprovalRig, pool: asyncpg.Pool[Any]
) -> None:
    queries = ConsoleQueries(pool, approval_rig.env.client, SlaTargets())
    async with approval_rig.worker(APPROVERS):
        ticket = hidden_post()
        _, state = await approval_rig.announced(ticket)
        page = await queries.ticket(ticket.ticket_id, viewer=StaffMember.of(MAYA))
        assert page is not None and page.live
        assert page.view.status is TicketStatus.AWAITING_APPROVAL
        assert page.view.messages[0].body == ticket.body
        assert page.view.triage is not None and page.view.sla is not None
        assert page.short_id == str(ticket.ticket_id)[:8].upper()
        [view] = page.approvals
        request = view.approval.request
        assert view.approval.status is ApprovalStatus.PENDING
        assert request.approval_id == state.approvals[0].request.approval_id
        assert request.plain_explanation and request.technical_explanation
        assert request.rollback_plan
        assert view.plan is not None and view.plan.steps
        assert view.plan.plan_id == request.plan_id
        assert view.verdicts == [Verdict.APPROVE, Verdict.REJECT] and view.refusal is None
        assert any(e.action == "approval.requested" for e in page.audit)

        async def refusal(viewer: Approver) -> str | None:
            page = await queries.ticket(ticket.ticket_id, viewer=StaffMember.of(viewer))
            assert page is not None
            assert page.approvals[0].verdicts == []
            return page.approvals[0].refusal

        assert await refusal(ANA) == "the requester of a ticket cannot approve its plan"
        assert request.required_role is ApproverRole.MODERATOR
        assert await refusal(ROOKIE) == "needs the moderator role (rookie@kruxt.app has approver)"
        assert await queries.ticket(uuid.uuid4()) is None
