"""The customer is never told something untrue, through the real `kruxt` CLI and worker: a
rolled-back fix is told as undone, incident news goes only where it holds, and only the note
marked for customers reaches them, as a sentence."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from kruxt.activities.playbooks.auth_login import DECLARATION
from kruxt.activities.playbooks.base import Proposal, render_rollback_update
from kruxt.adapters.postgres.approvals import ApprovalStore
from kruxt.models.enums import TicketStatus
from kruxt.models.incidents import IncidentResolved
from kruxt.models.playbooks import RunStatus
from kruxt.models.tickets import TicketState
from kruxt.workflows.ticket import TicketWorkflow
from tests.support import Cli, eventually, intake, locked_ticket, start_ticket, state_where
from tests.test_ticket_sla import OUTAGE

pytestmark = pytest.mark.e2e

APPROVERS = (
    '[{"name": "Maya", "email": "maya@kruxt.app", "roles": ["admin", "staff"]},'
    ' {"name": "Sam", "email": "sam@kruxt.app", "roles": ["admin", "staff"]}]'
)


async def sent(pool: asyncpg.Pool[Any], ticket_id: uuid.UUID, kind: str) -> list[str]:
    """The bodies of the messages of ``kind`` the ticket's customer was sent, oldest first."""
    rows = await pool.fetch(
        "SELECT body FROM support_ticket_messages WHERE ticket_id = $1 AND kind = $2 "
        "ORDER BY created_at",
        ticket_id,
        kind,
    )
    return [r["body"] for r in rows]


async def until_signal_handled(handle: WorkflowHandle[Any, Any], name: str, count: int) -> None:
    """Until the workflow has received ``count`` signals ``name`` and completed a workflow
    task after the last of them (what it did about it is in its history)."""

    async def handled() -> bool:
        events = (await handle.fetch_history()).events
        signalled = [
            i
            for i, e in enumerate(events)
            if e.workflow_execution_signaled_event_attributes.signal_name == name
        ]
        done = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
        return len(signalled) >= count and any(
            e.event_type == done for e in events[signalled[count - 1] :]
        )

    await eventually(handled)


async def messages_scheduled(handle: WorkflowHandle[Any, Any]) -> int:
    """How many customer messages the workflow has scheduled so far."""
    events = (await handle.fetch_history()).events
    return sum(
        e.activity_task_scheduled_event_attributes.activity_type.name == "send_customer_message"
        for e in events
    )


async def decide(cli: Cli, state: TicketState, who: str) -> None:
    """``kruxt approvals decide <the last approval> approve --as who``, once it is recorded."""
    approval_id = state.approvals[-1].request.approval_id

    async def recorded() -> bool:
        return await ApprovalStore(cli.pool).get(approval_id) is not None

    await eventually(recorded)
    assert await cli.run("approvals", "decide", str(approval_id), "approve", "--as", who) == 0


async def test_a_rolled_back_fix_is_told_and_later_incident_news_is_not(cli: Cli) -> None:
    ticket = locked_ticket()
    async with cli.approvals_worker(APPROVERS):
        handle = await start_ticket(cli.client, ticket, task_queue=cli.task_queue)
        waiting = await state_where(handle, lambda s: s.status is TicketStatus.AWAITING_APPROVAL)
        await decide(cli, waiting, "maya@kruxt.app")
        applied = await state_where(handle, lambda s: s.status is TicketStatus.AWAITING_CUSTOMER)
        [told] = await sent(cli.pool, ticket.ticket_id, "playbook_update")
        assert "We unlocked your account" in told

        run_id = str(applied.runs[0].run_id)
        assert await cli.run("playbook", "rollback", run_id, "--as", "sam@kruxt.app") == 0
        asked = await state_where(handle, lambda s: len(s.approvals) == 2)
        await decide(cli, asked, "maya@kruxt.app")
        await state_where(handle, lambda s: s.runs[0].status is RunStatus.ROLLED_BACK)

        async def undone() -> str | None:
            bodies = await sent(cli.pool, ticket.ticket_id, "playbook_update")
            return bodies[-1] if len(bodies) == 2 else None

        # What changed, from the playbook's declaration: what they were told no longer holds.
        rollback = await eventually(undone)
        assert "We have undone a change we made for you earlier" in rollback
        assert "- We unlocked your account: you can sign in again now." in rollback
        assert rollback.startswith("Hi Ana,")

        # The incident this ticket was part of is resolved later: its news is not true here.
        news = IncidentResolved(
            incident_id=uuid.uuid4(), by="sam@kruxt.app", customer_note="login is back"
        )
        await handle.signal(TicketWorkflow.incident_resolved, news)

        async def handed_on() -> bool:
            reasons = await cli.pool.fetch(
                "SELECT details->>'reason' AS reason FROM support_audit_log "
                "WHERE ticket_id = $1 AND action = 'ticket.status_changed'",
                ticket.ticket_id,
            )
            return any("fix was rolled back" in (r["reason"] or "") for r in reasons)

        await eventually(handed_on)
        assert await sent(cli.pool, ticket.ticket_id, "incident_update") == []
        state = await handle.query(TicketWorkflow.state)
        assert state.status is TicketStatus.AWAITING_HUMAN


async def test_incident_resolve_tells_customers_the_customer_note_only(cli: Cli) -> None:
    ticket = intake(subject=OUTAGE["subject"], body=OUTAGE["body"])
    async with cli.approvals_worker(APPROVERS):
        handle = await start_ticket(cli.client, ticket, task_queue=cli.task_queue)
        state = await state_where(
            handle,
            lambda s: s.incident_id is not None and s.status is TicketStatus.AWAITING_HUMAN,
        )
        resolve = (
            "incident", "resolve", str(state.incident_id), "--as", "maya@kruxt.app",
            "--note", "failover to the standby database",
            "--customer-note", "  the login service is back  ",
        )  # fmt: skip
        assert await cli.run(*resolve) == 0

        async def told() -> list[str] | None:
            return await sent(cli.pool, ticket.ticket_id, "incident_update") or None

        [body] = await eventually(told)
        # Heard again (the incident's telling retried a batch): the customer hears it once.
        news = IncidentResolved(
            incident_id=state.incident_id,
            by="maya@kruxt.app",
            customer_note="the login service is back",
        )
        sends = await messages_scheduled(handle)
        await handle.signal(TicketWorkflow.incident_resolved, news)
        await until_signal_handled(handle, "incident_resolved", 2)
        assert await messages_scheduled(handle) == sends
        assert len(await sent(cli.pool, ticket.ticket_id, "incident_update")) == 1
    # A sentence of its own; the team's note stays with the team.
    assert body == (
        "Good news: the problem behind your ticket has been fixed. The login service is back. "
        "If anything still looks wrong, reply here and we will pick it up."
    )


def test_the_rollback_text_names_only_what_was_undone() -> None:
    """From the declaration: a step with no compensation (a mail sent) still holds."""
    unlock = Proposal("unlock_account", {"user_id": "u1"}, "locked", {}, {})
    resend = Proposal("resend_verification", {"user_id": "u1"}, "unverified", {}, {})
    both = render_rollback_update(DECLARATION, "Ana", [unlock, resend], {"email": "a@x.io"})
    assert both == (
        "Hi Ana,\n\nWe have undone a change we made for you earlier, so this no longer holds:\n"
        "- We unlocked your account: you can sign in again now.\n\n"
        "A member of the KRUXT team will follow up here with what happens next.\n\n"
        "The KRUXT team"
    )
    assert render_rollback_update(DECLARATION, "Ana", [resend], {}) == ""


async def test_a_ticket_resolved_on_its_own_is_not_told_the_incident_news(cli: Cli) -> None:
    ticket = intake(subject=OUTAGE["subject"], body=OUTAGE["body"])
    async with cli.approvals_worker(APPROVERS):
        handle = await start_ticket(cli.client, ticket, task_queue=cli.task_queue)
        state = await state_where(handle, lambda s: s.incident_id is not None)
        resolve = ("ticket", "resolve", str(ticket.ticket_id), "--as", "maya@kruxt.app")
        assert await cli.run(*resolve) == 0
        await state_where(handle, lambda s: s.status is TicketStatus.RESOLVED)
        incident = ("incident", "resolve", str(state.incident_id), "--as", "maya@kruxt.app")
        assert await cli.run(*incident, "--customer-note", "the login service is back") == 0

        await until_signal_handled(handle, "incident_resolved", 1)
    assert await sent(cli.pool, ticket.ticket_id, "incident_update") == []
