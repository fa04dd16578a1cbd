"""What the staff console does: each action reaches the ticket's (or incident's) real workflow
through the same update or signal as Slack, e-mail and the CLI, and lands in the audit log
with the channel ``console`` and the signed-in person."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from temporalio.client import Client

from kruxt.adapters.approvers import ApproverDirectory
from kruxt.adapters.postgres.approvals import ApprovalStore
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.models.approvals import ApprovalStatus, DecisionChannel, Verdict
from kruxt.models.enums import Channel, MessageDirection, Priority, TicketStatus
from kruxt.models.incidents import IncidentStatus
from kruxt.models.records import AuditEntry
from kruxt.models.sla import SlaTargets
from kruxt.models.text import UnstorableTextError
from kruxt.models.tickets import TicketView, ticket_id_for
from kruxt.starter.approvals import ApprovalService, DecisionRefusedError
from kruxt.starter.console.actions import ConsoleActions
from kruxt.starter.console.auth import StaffMember
from kruxt.starter.console.queries import ConsoleQueries
from kruxt.starter.incidents import IncidentRefusedError, IncidentService
from kruxt.starter.intake import UnknownTicketError
from kruxt.starter.staff import MessageRefusedError, StaffService
from tests.fakes.zendesk_server import FakeZendeskServer
from tests.support import (
    ApprovalRig,
    ChannelStack,
    TicketRig,
    eventually,
    intake,
    state_where,
    until_status,
)
from tests.test_console_queries import ANA, MAYA, ROOKIE, SAM, hidden_post
from tests.test_incidents import Env, env
from tests.test_zendesk import envelope
from tests.test_zendesk_e2e import post, stack

__all__ = ["env", "stack"]  # the incidents' and Zendesk's fixtures, used here as there

APPROVERS = ApproverDirectory([MAYA, SAM, ANA, ROOKIE])
LEAD = StaffMember.of(MAYA)
ZD_TICKET = "4242"


def actions_on(
    client: Client, pool: asyncpg.Pool[Any], *, incidents: IncidentService | None = None
) -> ConsoleActions:
    """The console's actions as the API builds them (``kruxt.starter.api.main.console_of``)."""
    return ConsoleActions(
        approvals=ApprovalService(client, approvers=APPROVERS, store=ApprovalStore(pool)),
        staff=StaffService(client),
        incidents=incidents or IncidentService(client),
    )


async def audit(pool: asyncpg.Pool[Any], ticket_id: uuid.UUID, action: str) -> list[AuditEntry]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id, occurred_at, actor, action, ticket_id, details, prev_hash, hash "
            "FROM support_audit_log WHERE ticket_id = $1 AND action = $2 ORDER BY id",
            ticket_id,
            action,
        )
    return [AuditEntry(**dict(r)) for r in rows]


def by_console(entries: list[AuditEntry], actor: str = "maya@kruxt.app") -> bool:
    return any(e.actor == actor and e.details.get("channel") == "console" for e in entries)


async def test_decisions_go_through_the_workflows_validator(
    approval_rig: ApprovalRig, pool: asyncpg.Pool[Any]
) -> None:
    actions = actions_on(approval_rig.env.client, pool)
    async with approval_rig.worker(APPROVERS):
        ticket = hidden_post()
        handle, state = await approval_rig.announced(ticket)
        approval_id = state.approvals[0].request.approval_id

        # The requester, even as staff, and a directory member without the moderator role.
        with pytest.raises(DecisionRefusedError, match="requester of a ticket cannot approve"):
            await actions.decide(approval_id, Verdict.APPROVE, "", StaffMember.of(ANA))
        with pytest.raises(DecisionRefusedError, match="needs the moderator role"):
            await actions.decide(approval_id, Verdict.APPROVE, "", StaffMember.of(ROOKIE))
        refused = await audit(pool, ticket.ticket_id, "approval.decision_refused")
        assert [(e.actor, e.details["channel"]) for e in refused] == [
            ("ana@example.com", "console"),
            ("rookie@kruxt.app", "console"),
        ]

        outcome = await actions.decide(approval_id, Verdict.APPROVE, "looks right", LEAD)
        assert (outcome.status, outcome.decided_by) == (ApprovalStatus.APPROVED, "maya@kruxt.app")
        # The playbook runs and the ticket moves on, as after a Slack or e-mail approval.
        done = await state_where(handle, lambda s: bool(s.runs) and s.runs[0].status == "succeeded")
        assert done.status is not TicketStatus.AWAITING_APPROVAL
        assert by_console(await audit(pool, ticket.ticket_id, "approval.approved"))

        # A rollback: asked in the console, never approved by whoever asked.
        run_id = done.runs[0].run_id
        rollback = await actions.request_rollback(ticket.ticket_id, run_id, "wrong post", LEAD)
        # Stored before the request returns, so it can be decided at once (as the CLI's user
        # pastes the printed id into `approvals decide`).
        assert await ApprovalStore(pool).get(rollback) is not None
        with pytest.raises(DecisionRefusedError, match="asked for a rollback cannot approve"):
            await actions.decide(rollback, Verdict.APPROVE, "", LEAD)
        await actions.decide(rollback, Verdict.APPROVE, "", StaffMember.of(SAM))
        await state_where(handle, lambda s: s.runs[0].status == "rolled_back")
        requested = await audit(pool, ticket.ticket_id, "approval.requested")
        assert by_console(requested[-1:])


async def test_reply_note_and_staff_actions_reach_the_workflow(
    tickets: TicketRig, pool: asyncpg.Pool[Any]
) -> None:
    actions = actions_on(tickets.env.client, pool)
    ticket = intake(
        subject="Account locked, cannot log in",
        body="I cannot log in: the app says my account is locked after too many attempts.",
    )
    handle = await tickets.start(ticket)
    await until_status(handle, TicketStatus.AWAITING_HUMAN)
    tid = ticket.ticket_id
    # The page shows why the severity policy holds the ticket where it is.
    page = await ConsoleQueries(pool, tickets.env.client, SlaTargets()).ticket(tid)
    assert page is not None and page.severity_reasons == ["P2: cannot log in"]

    note_id = await actions.note(tid, "Checked the lock <b>by hand</b>.", LEAD)
    reply_id = await actions.reply(tid, "Unlocked: please try again.", LEAD)
    await actions.reassign(tid, "sam@kruxt.app", LEAD)
    await actions.change_priority(tid, Priority.P1, "VIP", LEAD)
    # A reply answers: the ticket now waits on the customer.
    await until_status(handle, TicketStatus.AWAITING_CUSTOMER)

    view = await eventually(lambda: _settled(pool, tid, {note_id, reply_id}))
    messages = {m.id: m for m in view.messages}
    note, reply = messages[note_id], messages[reply_id]
    assert (note.direction, note.kind, note.author) == (
        MessageDirection.INTERNAL,
        "staff_note",
        "maya@kruxt.app",
    )
    assert note.body == "Checked the lock <b>by hand</b>."
    assert (reply.direction, reply.kind, reply.author) == (
        MessageDirection.OUTBOUND,
        "agent_reply",
        "maya@kruxt.app",
    )
    assert view.first_response_at == reply.created_at
    assert view.priority is Priority.P1
    for action in ("note.attached", "message.sent", "ticket.assigned", "ticket.priority_changed"):
        assert by_console(await audit(pool, tid, action)), action
    answered = await audit(pool, tid, "ticket.status_changed")
    assert answered[-1].details["to"] == "awaiting_customer" and by_console(answered[-1:])

    await actions.resolve(tid, "unlocked by hand", LEAD)
    outcome = await handle.result()
    assert (outcome.status, outcome.resolved_by) == (TicketStatus.RESOLVED, "maya@kruxt.app")
    resolved = await audit(pool, tid, "ticket.status_changed")
    assert resolved[-1].details["to"] == "resolved" and by_console(resolved[-1:])


async def _settled(
    pool: asyncpg.Pool[Any], ticket_id: uuid.UUID, messages: set[uuid.UUID]
) -> TicketView | None:
    """The ticket once reassigned, reprioritized, and holding ``messages``."""
    view = await TicketStore(pool).get(ticket_id)
    if view is None or view.assignee != "sam@kruxt.app" or view.priority is not Priority.P1:
        return None
    return view if messages <= {m.id for m in view.messages} else None


async def test_refusals_are_the_domain_errors(tickets: TicketRig, pool: asyncpg.Pool[Any]) -> None:
    actions = actions_on(tickets.env.client, pool)
    with pytest.raises(UnknownTicketError):
        await actions.reply(uuid.uuid4(), "Hello", LEAD)
    handle = await tickets.start(intake())
    tid = uuid.UUID(handle.id.removeprefix("ticket-"))
    with pytest.raises(MessageRefusedError):
        await actions.note(tid, "   ", LEAD)
    with pytest.raises(UnstorableTextError):
        await actions.reply(tid, "nul \x00 byte", LEAD)
    await handle.terminate()


async def test_a_reply_goes_out_through_the_tickets_channel_and_a_note_stays_inside(
    stack: ChannelStack, zendesk: FakeZendeskServer
) -> None:
    # A Zendesk id of this test's own: the dev server outlives the test, and so does its run.
    zendesk.add_ticket(ZD_TICKET, requester_id="501")
    assert (await post(stack, envelope("ticket.created", ZD_TICKET))).status_code == 200
    ticket_id = ticket_id_for(Channel.ZENDESK, ZD_TICKET)
    [answer] = await eventually(lambda: _comments(zendesk, 1))
    actions = actions_on(stack.client, stack.pool)

    await actions.note(ticket_id, "Customer is a long-time member.", LEAD)
    await actions.reply(ticket_id, "Your export is ready: check your e-mail.", LEAD)
    comments = await eventually(lambda: _comments(zendesk, 3))
    added = [(c.body, c.public) for c in comments if c.id != answer.id]
    assert added == [
        ("Customer is a long-time member.", False),
        ("Your export is ready: check your e-mail.", True),
    ]
    assert zendesk.status(ZD_TICKET) == "pending"
    await stack.client.get_workflow_handle(f"ticket-{ticket_id}").terminate("test over")


async def _comments(zendesk: FakeZendeskServer, n: int) -> list[Any] | None:
    found = zendesk.comments(ZD_TICKET)
    return found if len(found) >= n else None


async def test_incidents_are_acknowledged_and_resolved_from_the_console(env: Env) -> None:
    incident, handle = await env.open_incident()
    await env.pages(handle, 1)
    actions = actions_on(env.ts.client, env.pool, incidents=env.service())
    queries = ConsoleQueries(env.pool, env.ts.client, SlaTargets())
    [listed] = await queries.incidents()
    assert listed.id == incident.incident_id and listed.escalation_level >= 0

    ack = await actions.acknowledge_incident(incident.incident_id, LEAD)
    assert (ack.by, ack.channel) == ("maya@kruxt.app", DecisionChannel.CONSOLE)
    with pytest.raises(IncidentRefusedError, match="already acknowledged"):
        await actions.acknowledge_incident(incident.incident_id, StaffMember.of(SAM))
    resolved = await actions.resolve_incident(incident.incident_id, "restarted the pool", LEAD)
    assert resolved.status is IncidentStatus.RESOLVED
    await handle.result()

    page = await queries.incident(incident.incident_id)
    assert page is not None and page.incident.resolved_by == "maya@kruxt.app"
    lines = [entry.what for entry in page.timeline]
    assert any("acknowledged by maya@kruxt.app via console" in line for line in lines), lines
    assert await queries.incidents() == []
    async with env.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT action, actor, details->>'channel' AS channel FROM support_audit_log "
            "WHERE details->>'incident_id' = $1 AND action IN "
            "('incident.acknowledged', 'incident.resolved') ORDER BY id",
            str(incident.incident_id),
        )
    assert [tuple(r) for r in rows] == [
        ("incident.acknowledged", "maya@kruxt.app", "console"),
        ("incident.resolved", "maya@kruxt.app", "console"),
    ]
