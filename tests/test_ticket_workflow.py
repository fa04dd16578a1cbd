"""TicketWorkflow on the time-skipping test server with real activities and real Postgres."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from temporalio.client import WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.testing import WorkflowEnvironment

from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.agents.triage_rules import triage_by_rules
from kruxt.models.enums import Category, TicketStatus
from kruxt.models.tickets import (
    CustomerMessage,
    RoutingPolicy,
    StaffResolve,
    TicketCarryOver,
    TicketIntake,
    TicketOutcome,
    TicketWorkflowInput,
    inbound_message_id_for,
    workflow_id_for,
)
from kruxt.models.triage import TriageInput
from kruxt.workers.composition import build_worker
from kruxt.workflows.ticket import TicketWorkflow
from tests.support import eventually, intake

PRIVACY: dict[str, str] = {
    "subject": "Status of my data deletion request",
    "body": "I asked for my account data to be deleted under GDPR two weeks ago. "
    "What is the status of my deletion request?",
}
LOCKED: dict[str, str] = {
    "subject": "Account locked, cannot log in",
    "body": "I cannot log in: the app says my account is locked after too many attempts.",
}


async def _start(
    env: WorkflowEnvironment, queue: str, ticket: TicketIntake, policy: RoutingPolicy | None = None
) -> WorkflowHandle[Any, TicketOutcome]:
    return await env.client.start_workflow(
        TicketWorkflow.run,
        TicketWorkflowInput(intake=ticket, policy=policy or RoutingPolicy()),
        id=workflow_id_for(ticket.ticket_id),
        task_queue=queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def _settled(handle: WorkflowHandle[Any, Any], *statuses: TicketStatus) -> None:
    async def probe() -> bool:
        state = await handle.query(TicketWorkflow.state)
        return state.status in statuses

    await eventually(probe)


async def test_privacy_question_is_answered_from_the_knowledge_base(
    ts_env: WorkflowEnvironment, pool: asyncpg.Pool[Any], task_queue: str
) -> None:
    ticket = intake(subject=PRIVACY["subject"], body=PRIVACY["body"])
    store = TicketStore(pool)
    async with build_worker(ts_env.client, task_queue=task_queue, pool=pool):
        handle = await _start(ts_env, task_queue, ticket)
        await _settled(handle, TicketStatus.AWAITING_CUSTOMER)
        state = await handle.query(TicketWorkflow.state)
        view = await store.get(ticket.ticket_id)

        assert state.category is Category.PRIVACY_REQUEST_STATUS
        assert state.first_response_at is not None
        assert view is not None and view.status is TicketStatus.AWAITING_CUSTOMER
        assert (
            view.triage is not None
            and view.triage.result.category is Category.PRIVACY_REQUEST_STATUS
        )
        assert view.first_response_at is not None
        reply = view.messages[-1]
        assert (reply.direction.value, reply.kind) == ("outbound", "auto_reply")
        async with pool.acquire() as conn:
            cited = await conn.fetchval(
                "SELECT article_ids FROM support_ticket_messages WHERE id = $1", reply.id
            )
        assert cited == ["kb-privacy-request-status"]

        described = await handle.describe()
        attrs = {
            k.name: v for k, v in ((p.key, p.value) for p in described.typed_search_attributes)
        }
        assert attrs["TicketStatus"] == "awaiting_customer"
        assert attrs["TicketPriority"] == state.priority
        assert attrs["Playbook"] == "privacy_request_status"
        assert attrs["Channel"] == "in_app"

        await handle.signal(TicketWorkflow.resolve, StaffResolve(actor="lead@kruxt.app", note="ok"))
        outcome = await handle.result()
    assert outcome.status is TicketStatus.RESOLVED and outcome.resolved_by == "lead@kruxt.app"

    async with pool.acquire() as conn:
        actions = [
            r["action"]
            for r in await conn.fetch(
                "SELECT action FROM support_audit_log WHERE ticket_id = $1 ORDER BY id",
                ticket.ticket_id,
            )
        ]
        kpis = [
            r["event"]
            for r in await conn.fetch(
                "SELECT event FROM support_kpi_events WHERE ticket_id = $1 ORDER BY id",
                ticket.ticket_id,
            )
        ]
        resolved = await conn.fetchrow(
            "SELECT status, resolved_by FROM support_tickets WHERE id = $1", ticket.ticket_id
        )
    assert actions == [
        "ticket.received",
        "ticket.triaged",
        "knowledge.drafted",
        "message.sent",
        "ticket.status_changed",
        "ticket.status_changed",
    ]
    # The first-response clock was met by the auto-reply; the resolution clock by the resolve.
    assert kpis == [
        "ticket_opened",
        "triaged",
        "first_response",
        "sla_met",
        "status_changed",
        "resolved",
        "sla_met",
    ]
    assert resolved is not None
    assert dict(resolved) == {"status": "resolved", "resolved_by": "lead@kruxt.app"}


async def test_a_fix_that_changes_data_goes_to_a_person_with_an_acknowledgement(
    ts_env: WorkflowEnvironment, pool: asyncpg.Pool[Any], task_queue: str
) -> None:
    ticket = intake(subject=LOCKED["subject"], body=LOCKED["body"])
    async with build_worker(ts_env.client, task_queue=task_queue, pool=pool):
        handle = await _start(ts_env, task_queue, ticket)
        await _settled(handle, TicketStatus.AWAITING_HUMAN)
        view = await TicketStore(pool).get(ticket.ticket_id)
        await handle.signal(TicketWorkflow.resolve, StaffResolve(actor="lead@kruxt.app"))
        await handle.result()
    assert view is not None
    assert view.category is Category.AUTH_LOGIN and view.playbook == "auth_login"
    outbound = [m for m in view.messages if m.direction.value == "outbound"]
    assert [m.kind for m in outbound] == ["acknowledgement"]
    assert "member of our team" in outbound[0].body
    # A drafted reply waits for the person as an internal note; it is never sent by itself.
    drafts = [m for m in view.messages if m.kind == "draft"]
    assert [m.direction.value for m in drafts] == ["internal"]
    # An acknowledgement is not an answer: the first-response clock keeps running.
    assert view.first_response_at is None


async def test_low_confidence_never_auto_replies(
    ts_env: WorkflowEnvironment, pool: asyncpg.Pool[Any], task_queue: str
) -> None:
    ticket = intake(subject=PRIVACY["subject"], body=PRIVACY["body"])
    strict = RoutingPolicy(auto_reply_min_confidence=1.0)
    async with build_worker(ts_env.client, task_queue=task_queue, pool=pool):
        handle = await _start(ts_env, task_queue, ticket, strict)
        await _settled(handle, TicketStatus.AWAITING_HUMAN)
        await handle.signal(TicketWorkflow.resolve, StaffResolve(actor="lead@kruxt.app"))
        await handle.result()
    async with pool.acquire() as conn:
        kinds = await conn.fetch(
            "SELECT kind FROM support_ticket_messages "
            "WHERE ticket_id = $1 AND direction = 'outbound'",
            ticket.ticket_id,
        )
        reason = await conn.fetchval(
            "SELECT details->>'reason' FROM support_audit_log WHERE ticket_id = $1 "
            "AND action = 'ticket.status_changed' ORDER BY id LIMIT 1",
            ticket.ticket_id,
        )
    assert [r["kind"] for r in kinds] == ["acknowledgement"]
    assert "below the auto-reply threshold" in reason


async def test_follow_up_after_an_answer_goes_to_a_person_and_is_stored_once(
    ts_env: WorkflowEnvironment, pool: asyncpg.Pool[Any], task_queue: str
) -> None:
    ticket = intake(subject=PRIVACY["subject"], body=PRIVACY["body"])
    message = CustomerMessage(
        message_id=inbound_message_id_for(ticket.ticket_id, "m-2"),
        body="That did not answer my question, it has been 40 days.",
        received_at=datetime.now(UTC),
    )
    async with build_worker(ts_env.client, task_queue=task_queue, pool=pool):
        handle = await _start(ts_env, task_queue, ticket)
        await _settled(handle, TicketStatus.AWAITING_CUSTOMER)
        # The channel delivers the same message twice: it is stored once.
        await handle.signal(TicketWorkflow.customer_message, message)
        await handle.signal(TicketWorkflow.customer_message, message)
        await _settled(handle, TicketStatus.AWAITING_HUMAN)
        await handle.signal(TicketWorkflow.resolve, StaffResolve(actor="lead@kruxt.app"))
        await handle.result()
    async with pool.acquire() as conn:
        inbound = await conn.fetch(
            "SELECT body FROM support_ticket_messages WHERE ticket_id = $1 AND direction='inbound' "
            "ORDER BY created_at",
            ticket.ticket_id,
        )
    assert [r["body"] for r in inbound] == [PRIVACY["body"], message.body]


async def test_message_racing_the_resolve_is_still_recorded(
    ts_env: WorkflowEnvironment, pool: asyncpg.Pool[Any], task_queue: str
) -> None:
    ticket = intake(subject=LOCKED["subject"], body=LOCKED["body"])
    async with build_worker(ts_env.client, task_queue=task_queue, pool=pool):
        handle = await _start(ts_env, task_queue, ticket)
        await _settled(handle, TicketStatus.AWAITING_HUMAN)
        await handle.signal(TicketWorkflow.resolve, StaffResolve(actor="lead@kruxt.app"))
        await handle.signal(
            TicketWorkflow.customer_message,
            CustomerMessage(
                message_id=uuid.uuid4(), body="also, thanks!", received_at=datetime.now(UTC)
            ),
        )
        outcome = await handle.result()
    assert outcome.status is TicketStatus.RESOLVED
    async with pool.acquire() as conn:
        bodies = await conn.fetch(
            "SELECT body FROM support_ticket_messages WHERE ticket_id = $1 AND direction='inbound'",
            ticket.ticket_id,
        )
    assert "also, thanks!" in [r["body"] for r in bodies]


async def test_a_continued_run_resumes_without_redoing_intake(
    ts_env: WorkflowEnvironment, pool: asyncpg.Pool[Any], task_queue: str
) -> None:
    """What continue-as-new hands over is enough: no second persist, no second triage."""
    ticket = intake(subject=LOCKED["subject"], body=LOCKED["body"])
    store = TicketStore(pool)
    await store.persist_ticket(intake=ticket, workflow_id="w", idempotency_key="seed")
    triage = triage_by_rules(
        TriageInput(
            ticket_id=ticket.ticket_id,
            channel=ticket.channel,
            subject=ticket.subject,
            body=ticket.body,
        )
    )
    carry = TicketCarryOver(status=TicketStatus.AWAITING_HUMAN, triage=triage, messages_received=2)
    async with build_worker(ts_env.client, task_queue=task_queue, pool=pool):
        handle = await ts_env.client.start_workflow(
            TicketWorkflow.run,
            TicketWorkflowInput(intake=ticket, carry_over=carry),
            id=workflow_id_for(ticket.ticket_id),
            task_queue=task_queue,
        )
        state = await handle.query(TicketWorkflow.state)
        await handle.signal(TicketWorkflow.resolve, StaffResolve(actor="lead@kruxt.app"))
        outcome = await handle.result()
    assert state.status is TicketStatus.AWAITING_HUMAN
    assert state.messages_received == 2
    assert state.category is Category.AUTH_LOGIN
    assert outcome.status is TicketStatus.RESOLVED
    async with pool.acquire() as conn:
        runs = await conn.fetchval("SELECT count(*) FROM support_automation_runs")
        received = await conn.fetchval(
            "SELECT count(*) FROM support_audit_log WHERE action = 'ticket.received'"
        )
    assert (runs, received) == (0, 1)
