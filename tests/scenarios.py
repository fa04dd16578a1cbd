"""Scenarios driven through a real worker on the time-skipping server, one per workflow path.

``python -m tests.record_histories TAG`` records each into ``tests/histories/``; the replay
test replays every recording and fails when a scenario here has none.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from kruxt.adapters.approvers import Approver, ApproverDirectory
from kruxt.adapters.postgres.incidents import IncidentStore
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.models.approvals import (
    ApprovalStatus,
    Decision,
    DecisionChannel,
    RollbackRequest,
    Verdict,
)
from kruxt.models.enums import Category, Priority, TicketStatus
from kruxt.models.incidents import (
    Acknowledge,
    AttachTicket,
    IncidentInput,
    ResolveIncident,
    default_escalation_policy,
    incident_key,
    incident_workflow_id,
)
from kruxt.models.playbooks import ApproverRole
from kruxt.models.reply_guard import ReplyGuard
from kruxt.models.tickets import (
    CustomerMessage,
    RoutingPolicy,
    StaffAssign,
    StaffPriorityChange,
    StaffResolve,
    TicketIntake,
    TicketOutcome,
    TicketState,
    TicketWorkflowInput,
    workflow_id_for,
)
from kruxt.workflows.incident import IncidentWorkflow
from kruxt.workflows.ticket import TicketWorkflow
from tests.support import eventually, intake


@dataclass
class Rig:
    """What a scenario runs on: the server, its worker's queue, the recording database."""

    env: WorkflowEnvironment
    queue: str
    pool: asyncpg.Pool[Any]


# What a scenario leaves to record: one closed workflow run per label ("" when only one).
Recorded = dict[str, WorkflowHandle[Any, Any]]
Scenario = Callable[[Rig], Awaitable[Recorded]]
TicketScenario = Callable[[Client, str], Awaitable[WorkflowHandle[Any, TicketOutcome]]]
# The approvers directory of the worker running the scenarios (approvals take roles from it).
APPROVERS = ApproverDirectory(
    [
        Approver(name="Founder", email="founder@kruxt.app", roles=[ApproverRole.ADMIN]),
        Approver(name="Maya", email="maya@kruxt.app", roles=[ApproverRole.ADMIN]),
    ]
)


async def _start(
    client: Client, queue: str, subject: str, body: str
) -> WorkflowHandle[Any, TicketOutcome]:
    ticket = intake(subject=subject, body=body)
    return await client.start_workflow(
        TicketWorkflow.run,
        TicketWorkflowInput(intake=ticket, policy=RoutingPolicy()),
        id=workflow_id_for(ticket.ticket_id),
        task_queue=queue,
    )


async def _until(handle: WorkflowHandle[Any, TicketOutcome], status: TicketStatus) -> None:
    async def probe() -> bool:
        return (await handle.query(TicketWorkflow.state)).status is status

    await eventually(probe)


async def auto_reply_follow_up_resolve(
    client: Client, queue: str
) -> WorkflowHandle[Any, TicketOutcome]:
    """Privacy question answered automatically, the customer writes back, staff resolves."""
    handle = await _start(
        client,
        queue,
        "Data export status",
        "I requested a data export of my KRUXT account last week. What is the status?",
    )
    await _until(handle, TicketStatus.AWAITING_CUSTOMER)
    await handle.signal(
        TicketWorkflow.customer_message,
        CustomerMessage(
            message_id=uuid.uuid4(), body="Still nothing here.", received_at=datetime.now(UTC)
        ),
    )
    await _until(handle, TicketStatus.AWAITING_HUMAN)
    await handle.signal(TicketWorkflow.resolve, StaffResolve(actor="lead@kruxt.app", note="sent"))
    await handle.result()
    return handle


async def refused_draft_to_person(client: Client, queue: str) -> WorkflowHandle[Any, TicketOutcome]:
    """The drafted answer links outside the help domains (see ``OUTSIDE``): never sent, a
    person reads it as a note."""
    handle = await _start(
        client,
        queue,
        "Data export status",
        "I requested a data export of my KRUXT account last week. What is the status?",
    )
    await _until(handle, TicketStatus.AWAITING_HUMAN)
    await handle.signal(TicketWorkflow.resolve, StaffResolve(actor="lead@kruxt.app"))
    await handle.result()
    return handle


async def human_queue_resolve(client: Client, queue: str) -> WorkflowHandle[Any, TicketOutcome]:
    """A lockout goes to a person with an acknowledgement; staff resolves it."""
    handle = await _start(
        client, queue, "Locked out", "I cannot log in, the app says my account is locked."
    )
    await _until(handle, TicketStatus.AWAITING_HUMAN)
    await handle.signal(TicketWorkflow.resolve, StaffResolve(actor="lead@kruxt.app"))
    await handle.result()
    return handle


async def playbook_approved_and_run(
    client: Client, queue: str
) -> WorkflowHandle[Any, TicketOutcome]:
    """A locked account: plan, approval by the CLI stand-in, saga run, customer told."""
    ticket = intake(
        subject="Locked out", body="I cannot log in, the app says my account is locked."
    ).model_copy(update={"account_id": "u-locked"})
    handle = await client.start_workflow(
        TicketWorkflow.run,
        TicketWorkflowInput(intake=ticket, policy=RoutingPolicy()),
        id=workflow_id_for(ticket.ticket_id),
        task_queue=queue,
    )
    await _until(handle, TicketStatus.AWAITING_APPROVAL)
    state = await handle.query(TicketWorkflow.state)
    await handle.execute_update(
        TicketWorkflow.decide,
        Decision(
            approval_id=state.approvals[0].request.approval_id,
            approver="founder@kruxt.app",
            roles=[ApproverRole.ADMIN],
            verdict=Verdict.APPROVE,
            channel=DecisionChannel.CLI,
        ),
    )
    await _until(handle, TicketStatus.AWAITING_CUSTOMER)
    await handle.signal(TicketWorkflow.resolve, StaffResolve(actor="founder@kruxt.app"))
    await handle.result()
    return handle


async def playbook_run_then_rolled_back(
    client: Client, queue: str
) -> WorkflowHandle[Any, TicketOutcome]:
    """A plan approved and run; its rollback asked by one approver, approved by another."""
    ticket = intake(
        subject="Locked out", body="I cannot log in, the app says my account is locked."
    ).model_copy(update={"account_id": "u-locked"})
    handle = await client.start_workflow(
        TicketWorkflow.run,
        TicketWorkflowInput(intake=ticket, policy=RoutingPolicy()),
        id=workflow_id_for(ticket.ticket_id),
        task_queue=queue,
    )
    await _until(handle, TicketStatus.AWAITING_APPROVAL)
    state = await handle.query(TicketWorkflow.state)
    plan = Decision(
        approval_id=state.approvals[0].request.approval_id,
        approver="founder@kruxt.app",
        verdict=Verdict.APPROVE,
        channel=DecisionChannel.CLI,
        os_user="ops (uid 1000)",
    )
    await handle.execute_update(TicketWorkflow.decide, plan)
    await _until(handle, TicketStatus.AWAITING_CUSTOMER)
    state = await handle.query(TicketWorkflow.state)
    rollback_id = await handle.execute_update(
        TicketWorkflow.request_rollback,
        RollbackRequest(
            run_id=state.runs[0].run_id,
            actor="founder@kruxt.app",
            channel=DecisionChannel.CLI,
            os_user="ops (uid 1000)",
        ),
    )
    undo = plan.model_copy(update={"approval_id": rollback_id, "approver": "maya@kruxt.app"})
    await handle.execute_update(TicketWorkflow.decide, undo)
    await _until(handle, TicketStatus.AWAITING_HUMAN)
    await handle.signal(TicketWorkflow.resolve, StaffResolve(actor="maya@kruxt.app"))
    await handle.result()
    return handle


async def bad_data_to_a_person(client: Client, queue: str) -> WorkflowHandle[Any, TicketOutcome]:
    """Text the database refuses (NUL) got past intake: stored repaired, a person reads it."""
    # model_copy does not validate: this is what an intake that forgot to check would start.
    ticket = intake().model_copy(
        update={"subject": "Locked\x00out", "body": "I cannot\x00 log in."}
    )
    handle = await _start_intake(client, queue, ticket)
    await _until(handle, TicketStatus.AWAITING_HUMAN)
    await handle.signal(TicketWorkflow.resolve, StaffResolve(actor="lead@kruxt.app"))
    await handle.result()
    return handle


async def reassigned_and_reprioritized(
    client: Client, queue: str
) -> WorkflowHandle[Any, TicketOutcome]:
    """Staff gives a ticket in the human queue to someone and raises its priority."""
    handle = await _start(
        client, queue, "Locked out", "I cannot log in, the app says my account is locked."
    )
    await _until(handle, TicketStatus.AWAITING_HUMAN)
    await handle.signal(
        TicketWorkflow.reassign, StaffAssign(actor="lead@kruxt.app", assignee="maya@kruxt.app")
    )
    await handle.signal(
        TicketWorkflow.change_priority,
        StaffPriorityChange(actor="lead@kruxt.app", priority=Priority.P2, reason="gym owner"),
    )

    async def raised() -> bool:
        return (await handle.query(TicketWorkflow.state)).priority is Priority.P2

    await eventually(raised)
    await handle.signal(TicketWorkflow.resolve, StaffResolve(actor="maya@kruxt.app"))
    await handle.result()
    return handle


async def p1_incident_escalated_acked_resolved(rig: Rig) -> Recorded:
    """A P1 ticket opens an incident; it pages twice, is acknowledged, then resolved, and the
    ticket is told before staff resolves it."""
    env, queue = rig.env, rig.queue
    client = env.client
    handle = await _start(
        client,
        queue,
        "Login is down for everyone",
        "Since 9am nobody can log in: the app returns an error 500 for every user of our gym. "
        "This is an outage.",
    )
    await _until(handle, TicketStatus.AWAITING_HUMAN)
    state = await handle.query(TicketWorkflow.state)
    assert state.incident_id is not None, state
    incident = client.get_workflow_handle_for(
        IncidentWorkflow.run, incident_workflow_id(state.incident_id)
    )

    async def paged(count: int) -> bool:
        return len((await incident.query(IncidentWorkflow.state)).pages) >= count

    await eventually(lambda: paged(1))
    await env.sleep(timedelta(minutes=16))  # the first level's delay runs out: paged again
    await eventually(lambda: paged(2))
    await incident.execute_update(IncidentWorkflow.acknowledge, Acknowledge(by="founder@kruxt.app"))
    await incident.execute_update(
        IncidentWorkflow.resolve, ResolveIncident(by="founder@kruxt.app", note="rolled back")
    )
    await incident.result()
    await _until(handle, TicketStatus.AWAITING_CUSTOMER)  # the ticket was told
    await handle.signal(TicketWorkflow.resolve, StaffResolve(actor="founder@kruxt.app"))
    await handle.result()
    return {"ticket": handle, "incident": incident}


async def approval_reminded_escalated_expired(rig: Rig) -> Recorded:
    """Nobody decides a plan: approvers are reminded at 50%, the next level asked at 75%,
    and at the deadline the approval expires and a person takes the ticket."""
    env, queue = rig.env, rig.queue
    handle = await _start_intake(env.client, queue, _locked())
    await _until(handle, TicketStatus.AWAITING_APPROVAL)
    request = (await handle.query(TicketWorkflow.state)).approvals[0].request
    await env.sleep(request.expires_at - request.requested_at + timedelta(minutes=1))
    await _until(handle, TicketStatus.AWAITING_HUMAN)
    state = await handle.query(TicketWorkflow.state)
    approval = state.approvals[0]
    assert approval.status is ApprovalStatus.EXPIRED and approval.escalated, approval
    await handle.signal(TicketWorkflow.resolve, StaffResolve(actor="lead@kruxt.app"))
    await handle.result()
    return {"": handle}


async def continued_as_new(rig: Rig) -> Recorded:
    """A ticket continues-as-new (a small history limit) with a plan pending and both SLA
    clocks running, after a reassign; a later run approves it, runs it and rolls it back."""
    env, queue = rig.env, rig.queue
    client = env.client
    ticket = _locked()
    first = await client.start_workflow(
        TicketWorkflow.run,
        TicketWorkflowInput(intake=ticket, policy=RoutingPolicy(), history_limit=10),
        id=workflow_id_for(ticket.ticket_id),
        task_queue=queue,
    )
    await first.signal(
        TicketWorkflow.reassign, StaffAssign(actor="lead@kruxt.app", assignee="maya@kruxt.app")
    )
    # No run id: queries, signals and updates follow the chain to its latest run.
    handle = client.get_workflow_handle_for(TicketWorkflow.run, first.id)

    async def continued() -> bool:
        return (await handle.describe()).run_id != first.result_run_id

    await eventually(continued)
    state = await _state(handle, TicketStatus.AWAITING_APPROVAL)
    request = state.approvals[0].request
    await env.sleep((request.expires_at - request.requested_at) * 0.6)  # reminded
    state = await _state(handle, TicketStatus.AWAITING_APPROVAL)
    plan = Decision(
        approval_id=request.approval_id,
        approver="founder@kruxt.app",
        verdict=Verdict.APPROVE,
        channel=DecisionChannel.CLI,
    )
    await handle.execute_update(TicketWorkflow.decide, plan)
    state = await _state(handle, TicketStatus.AWAITING_CUSTOMER)
    # Undone, so u-locked is locked again for the next scenario (recording shares a DB).
    rollback_id = await handle.execute_update(
        TicketWorkflow.request_rollback,
        RollbackRequest(
            run_id=state.runs[0].run_id, actor="founder@kruxt.app", channel=DecisionChannel.CLI
        ),
    )
    undo = plan.model_copy(update={"approval_id": rollback_id, "approver": "maya@kruxt.app"})
    await handle.execute_update(TicketWorkflow.decide, undo)
    await _until(handle, TicketStatus.AWAITING_HUMAN)
    await handle.signal(TicketWorkflow.resolve, StaffResolve(actor="maya@kruxt.app"))
    await handle.result()
    return await _chain(client, first.id, first.result_run_id or "")


async def incident_continued_as_new(rig: Rig) -> Recorded:
    """An incident escalating continues-as-new (a small history limit) and goes on paging;
    acknowledged and resolved in a later run. Started directly, as open_or_join does."""
    client = rig.env.client
    ticket = intake(subject="Login API returns 500", body="Login API returns 500 since 9am.")
    await TicketStore(rig.pool).persist_ticket(
        intake=ticket,
        workflow_id=workflow_id_for(ticket.ticket_id),
        idempotency_key=f"persist-{ticket.ticket_id}",
    )
    key = incident_key(Category.AUTH_LOGIN, ticket.body)
    now = await rig.env.get_current_time()
    store = IncidentStore(rig.pool)
    joined = await store.open_or_join(
        key=key,
        ticket_id=ticket.ticket_id,
        priority=Priority.P2,
        category=Category.AUTH_LOGIN,
        title=ticket.subject,
        window=timedelta(hours=6),
        idempotency_key=f"join-{ticket.ticket_id}",
        now=now,
    )
    record = await store.get(joined.incident_id)
    assert record is not None
    first = await client.start_workflow(
        IncidentWorkflow.run,
        IncidentInput(
            incident_id=joined.incident_id,
            key=key,
            priority=Priority.P2,
            category=Category.AUTH_LOGIN,
            title=ticket.subject,
            first_ticket=AttachTicket(
                ticket_id=ticket.ticket_id,
                # No ticket workflow runs: telling it fails and is recorded, as for a closed one.
                workflow_id=workflow_id_for(ticket.ticket_id),
                priority=Priority.P2,
                summary=ticket.subject,
            ),
            policy=default_escalation_policy(),
            opened_at=record.opened_at,
            history_limit=20,
        ),
        id=joined.workflow_id,
        task_queue=rig.queue,
    )
    handle = client.get_workflow_handle_for(IncidentWorkflow.run, first.id)

    async def continued() -> bool:
        return (await handle.describe()).run_id != first.result_run_id

    for _ in range(12):  # bounded: paging every 15 min continues well within an hour
        if await continued():
            break
        await rig.env.sleep(timedelta(minutes=5))
    assert await continued(), "the incident never continued-as-new"
    await handle.execute_update(IncidentWorkflow.acknowledge, Acknowledge(by="founder@kruxt.app"))
    await handle.execute_update(
        IncidentWorkflow.resolve, ResolveIncident(by="founder@kruxt.app", note="rolled back")
    )
    await handle.result()
    return await _chain(client, first.id, first.result_run_id or "")


def _locked() -> TicketIntake:
    return intake(
        subject="Locked out", body="I cannot log in, the app says my account is locked."
    ).model_copy(update={"account_id": "u-locked"})


async def _start_intake(
    client: Client, queue: str, ticket: TicketIntake
) -> WorkflowHandle[Any, TicketOutcome]:
    return await client.start_workflow(
        TicketWorkflow.run,
        TicketWorkflowInput(intake=ticket, policy=RoutingPolicy()),
        id=workflow_id_for(ticket.ticket_id),
        task_queue=queue,
    )


async def _state(handle: WorkflowHandle[Any, TicketOutcome], status: TicketStatus) -> TicketState:
    await _until(handle, status)
    state: TicketState = await handle.query(TicketWorkflow.state)
    return state


async def _chain(client: Client, workflow_id: str, run_id: str) -> Recorded:
    """Every run of a continue-as-new chain, labelled run1, run2, ..."""
    runs: Recorded = {}
    while run_id:
        run = client.get_workflow_handle(workflow_id, run_id=run_id)
        runs[f"run{len(runs) + 1}"] = run
        last = (await run.fetch_history()).events[-1]
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    return runs


def _ticket(scenario: TicketScenario) -> Scenario:
    async def recorded(rig: Rig) -> Recorded:
        return {"": await scenario(rig.env.client, rig.queue)}

    return recorded


# In this order: u-locked must be locked when a plan is made, and the recording shares a DB.
# The rollbacks leave it locked again; the approved run, last, leaves it unlocked.
SCENARIOS: dict[str, Scenario] = {
    "auto_reply_follow_up_resolve": _ticket(auto_reply_follow_up_resolve),
    "refused_draft_to_person": _ticket(refused_draft_to_person),
    "human_queue_resolve": _ticket(human_queue_resolve),
    "bad_data_to_a_person": _ticket(bad_data_to_a_person),
    "reassigned_and_reprioritized": _ticket(reassigned_and_reprioritized),
    "p1_incident_escalated_acked_resolved": p1_incident_escalated_acked_resolved,
    "approval_reminded_escalated_expired": approval_reminded_escalated_expired,
    "playbook_run_then_rolled_back": _ticket(playbook_run_then_rolled_back),
    "continued_as_new": continued_as_new,
    "incident_continued_as_new": incident_continued_as_new,
    "playbook_approved_and_run": _ticket(playbook_approved_and_run),
}

# How a scenario's worker differs from the others' (the recorder gives each scenario its own):
# only the customer's own help domains are allowed, so the drafted answer's link is refused.
OUTSIDE: dict[str, dict[str, Any]] = {
    "refused_draft_to_person": {"reply_guard": ReplyGuard(help_domains=("help.invalid",))},
}
