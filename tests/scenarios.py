"""Scenarios driven through a real worker on the time-skipping server, one per workflow path.

``python -m tests.record_histories TAG`` records each into ``tests/histories/``; the replay
test replays every recording and fails when a scenario here has none.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

import asyncpg
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from kruxt.adapters.approvers import Approver, ApproverDirectory
from kruxt.adapters.postgres.incidents import IncidentStore
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.models import channels
from kruxt.models.approvals import (
    ApprovalStatus,
    Decision,
    DecisionChannel,
    RollbackRequest,
    Verdict,
)
from kruxt.models.defects import defect_workflow_id
from kruxt.models.enums import Category, Channel, Priority, TicketStatus
from kruxt.models.incidents import (
    Acknowledge,
    AttachTicket,
    IncidentInput,
    ResolveIncident,
    default_escalation_policy,
    incident_key,
    incident_workflow_id,
)
from kruxt.models.lifecycle import SolvedHow
from kruxt.models.playbooks import ApproverRole
from kruxt.models.records import OutboundMessageResult
from kruxt.models.reply_guard import ReplyGuard
from kruxt.models.review import ReviewRequest
from kruxt.models.tickets import (
    CustomerMessage,
    StaffAssign,
    StaffMessage,
    StaffPriorityChange,
    StaffResolve,
    TicketIntake,
    TicketOutcome,
    TicketState,
    workflow_id_for,
)
from kruxt.workflows.incident import IncidentWorkflow
from kruxt.workflows.ticket import TicketWorkflow
from kruxt.workflows.weekly_review import WeeklyReviewWorkflow
from tests.support import (
    approve_first,
    eventually,
    intake,
    resolve,
    start_ticket,
    state_where,
    until_status,
)


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


# What the ticket scenarios ask: a question the knowledge base answers, a lockout a plan fixes.
class _Ticket(TypedDict):
    subject: str
    body: str


EXPORT: _Ticket = {
    "subject": "Data export status",
    "body": "I requested a data export of my KRUXT account last week. What is the status?",
}
LOCKED_OUT: _Ticket = {
    "subject": "Locked out",
    "body": "I cannot log in, the app says my account is locked.",
}


async def _start(
    client: Client, queue: str, subject: str, body: str, *, until: TicketStatus | None = None
) -> WorkflowHandle[Any, TicketOutcome]:
    """A ticket started (and, with ``until``, waited on until it reaches that status)."""
    handle = await start_ticket(client, intake(subject=subject, body=body), task_queue=queue)
    if until is not None:
        await until_status(handle, until)
    return handle


async def _resolved_at(
    handle: WorkflowHandle[Any, TicketOutcome], status: TicketStatus, *, actor: str, note: str = ""
) -> WorkflowHandle[Any, TicketOutcome]:
    """Once the ticket reaches ``status``, staff resolve it; the closed run, to record."""
    await until_status(handle, status)
    await resolve(handle, actor=actor, note=note)
    return handle


async def _plan_pending(
    client: Client, queue: str
) -> tuple[WorkflowHandle[Any, TicketOutcome], TicketState]:
    """A locked account's ticket (u-locked), its plan waiting for an approver."""
    handle = await start_ticket(client, _locked(), task_queue=queue)
    return handle, await until_status(handle, TicketStatus.AWAITING_APPROVAL)


async def auto_reply_follow_up_resolve(
    client: Client, queue: str
) -> WorkflowHandle[Any, TicketOutcome]:
    """Privacy question answered automatically, the customer writes back, staff resolves."""
    handle = await _start(client, queue, **EXPORT, until=TicketStatus.AWAITING_CUSTOMER)
    await handle.signal(
        TicketWorkflow.customer_message,
        CustomerMessage(
            message_id=uuid.uuid4(), body="Still nothing here.", received_at=datetime.now(UTC)
        ),
    )
    return await _resolved_at(
        handle, TicketStatus.AWAITING_HUMAN, actor="lead@kruxt.app", note="sent"
    )


async def refused_draft_to_person(client: Client, queue: str) -> WorkflowHandle[Any, TicketOutcome]:
    """The drafted answer links outside the help domains (see ``OUTSIDE``): never sent, a
    person reads it as a note."""
    handle = await _start(client, queue, **EXPORT)
    return await _resolved_at(handle, TicketStatus.AWAITING_HUMAN, actor="lead@kruxt.app")


async def delivery_refused_to_person(
    client: Client, queue: str
) -> WorkflowHandle[Any, TicketOutcome]:
    """The ticket's channel refuses the automatic answer for good (see ``OUTSIDE``): a note
    says so and a person takes the ticket."""
    handle = await _start(client, queue, **EXPORT)
    return await _resolved_at(handle, TicketStatus.AWAITING_HUMAN, actor="lead@kruxt.app")


class RefusingChannel:
    """A customer channel that refuses every delivery (a Zendesk ticket an agent closed)."""

    def verify(self, request: channels.ChannelRequest) -> channels.ChannelIdentity:
        raise channels.ChannelUnauthorized("this channel takes no requests")

    def parse(self, request: channels.ChannelRequest) -> channels.ChannelEvent:
        raise ValueError("this channel takes no requests")

    async def deliver(
        self, ticket: channels.ChannelTicket, message: channels.Delivery
    ) -> OutboundMessageResult | None:
        raise channels.DeliveryRefused("the channel answered 422")


async def human_queue_resolve(client: Client, queue: str) -> WorkflowHandle[Any, TicketOutcome]:
    """A lockout goes to a person with an acknowledgement; staff resolves it."""
    handle = await _start(client, queue, **LOCKED_OUT)
    return await _resolved_at(handle, TicketStatus.AWAITING_HUMAN, actor="lead@kruxt.app")


async def playbook_approved_and_run(
    client: Client, queue: str
) -> WorkflowHandle[Any, TicketOutcome]:
    """A locked account: plan, approval by the CLI stand-in, saga run, customer told."""
    handle, state = await _plan_pending(client, queue)
    await approve_first(handle, state)
    return await _resolved_at(handle, TicketStatus.AWAITING_CUSTOMER, actor="founder@kruxt.app")


async def playbook_run_then_rolled_back(
    client: Client, queue: str
) -> WorkflowHandle[Any, TicketOutcome]:
    """A plan approved and run; its rollback asked by one approver, approved by another."""
    handle, state = await _plan_pending(client, queue)
    plan = Decision(
        approval_id=state.approvals[0].request.approval_id,
        approver="founder@kruxt.app",
        verdict=Verdict.APPROVE,
        channel=DecisionChannel.CLI,
        os_user="ops (uid 1000)",
    )
    await handle.execute_update(TicketWorkflow.decide, plan)
    state = await until_status(handle, TicketStatus.AWAITING_CUSTOMER)
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
    return await _resolved_at(handle, TicketStatus.AWAITING_HUMAN, actor="maya@kruxt.app")


async def bad_data_to_a_person(client: Client, queue: str) -> WorkflowHandle[Any, TicketOutcome]:
    """Text the database refuses (NUL) got past intake: stored repaired, a person reads it."""
    # model_copy does not validate: this is what an intake that forgot to check would start.
    ticket = intake().model_copy(
        update={"subject": "Locked\x00out", "body": "I cannot\x00 log in."}
    )
    handle = await start_ticket(client, ticket, task_queue=queue)
    return await _resolved_at(handle, TicketStatus.AWAITING_HUMAN, actor="lead@kruxt.app")


async def reassigned_and_reprioritized(
    client: Client, queue: str
) -> WorkflowHandle[Any, TicketOutcome]:
    """Staff gives a ticket in the human queue to someone and raises its priority."""
    handle = await _start(client, queue, **LOCKED_OUT, until=TicketStatus.AWAITING_HUMAN)
    assignment = StaffAssign(actor="lead@kruxt.app", assignee="maya@kruxt.app")
    await handle.signal(TicketWorkflow.reassign, assignment)
    await handle.signal(
        TicketWorkflow.change_priority,
        StaffPriorityChange(actor="lead@kruxt.app", priority=Priority.P2, reason="gym owner"),
    )
    await state_where(handle, lambda state: state.priority is Priority.P2)
    await resolve(handle, actor="maya@kruxt.app")
    return handle


async def staff_replied_and_noted(client: Client, queue: str) -> WorkflowHandle[Any, TicketOutcome]:
    """From the staff console: a note for the team and a reply to the customer on a ticket in
    the human queue (it then waits on the customer), then the resolution."""
    handle = await _start(client, queue, **LOCKED_OUT, until=TicketStatus.AWAITING_HUMAN)
    console = DecisionChannel.CONSOLE
    await handle.signal(
        TicketWorkflow.staff_note,
        StaffMessage(
            message_id=uuid.uuid4(), actor="maya@kruxt.app", body="Lock checked.", channel=console
        ),
    )
    await handle.signal(
        TicketWorkflow.staff_reply,
        StaffMessage(
            message_id=uuid.uuid4(), actor="maya@kruxt.app", body="Try again now.", channel=console
        ),
    )
    await until_status(handle, TicketStatus.AWAITING_CUSTOMER)
    await resolve(handle, actor="maya@kruxt.app", channel=console)
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
    state = await until_status(handle, TicketStatus.AWAITING_HUMAN)
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
    await until_status(handle, TicketStatus.AWAITING_CUSTOMER)  # the ticket was told
    await resolve(handle, actor="founder@kruxt.app")
    return {"ticket": handle, "incident": incident}


async def p2_cluster_then_p1_escalates(rig: Rig) -> Recorded:
    """Three users' P2s of one cause within minutes open an incident together (the first two
    are told they are in it); the outage's P1 of that cause joins, and the incident takes its
    severity and title and is paged anew; acknowledged, resolved, every ticket told."""
    client = rig.env.client
    body = "My workout fails to save every time I press finish."
    waiting = (TicketStatus.AWAITING_HUMAN, TicketStatus.AWAITING_APPROVAL)
    tickets = []
    for n in range(3):
        tickets.append(await _start(client, rig.queue, f"Workout won't save ({n})", body))
        await until_status(tickets[-1], *waiting)
    states = [await state_where(t, lambda s: s.incident_id is not None) for t in tickets]
    assert states[0].incident_id is not None and len({s.incident_id for s in states}) == 1
    incident = client.get_workflow_handle_for(
        IncidentWorkflow.run, incident_workflow_id(states[0].incident_id)
    )
    outage = await _start(
        client,
        rig.queue,
        "Nobody can save workouts",
        "Everyone at our gym: workouts fail to save since this morning, all members affected.",
    )
    await until_status(outage, *waiting)

    async def escalated() -> bool:
        state = await incident.query(IncidentWorkflow.state)
        return state.priority is Priority.P1 and len(state.pages) >= 2

    await eventually(escalated)
    await incident.execute_update(IncidentWorkflow.acknowledge, Acknowledge(by="founder@kruxt.app"))
    await incident.execute_update(
        IncidentWorkflow.resolve, ResolveIncident(by="founder@kruxt.app", note="API fixed")
    )
    everyone = (*tickets, outage)
    # All told of the fix before anything awaits a result: awaiting one lets the test server
    # skip time, and a ticket waiting on its customer would be solved by its timer meanwhile.
    for handle in everyone:
        await until_status(handle, TicketStatus.AWAITING_CUSTOMER)
    for handle in everyone:
        await handle.signal(TicketWorkflow.resolve, StaffResolve(actor="founder@kruxt.app"))
    await incident.result()
    for handle in everyone:
        await handle.result()
    return {"first": tickets[0], "third": tickets[2], "outage": outage, "incident": incident}


async def approval_reminded_escalated_expired(rig: Rig) -> Recorded:
    """Nobody decides a plan: approvers are reminded at 50%, the next level asked at 75%,
    and at the deadline the approval expires and a person takes the ticket."""
    env, queue = rig.env, rig.queue
    handle, state = await _plan_pending(env.client, queue)
    request = state.approvals[0].request
    await env.sleep(request.expires_at - request.requested_at + timedelta(minutes=1))
    state = await until_status(handle, TicketStatus.AWAITING_HUMAN)
    approval = state.approvals[0]
    assert approval.status is ApprovalStatus.EXPIRED and approval.escalated, approval
    await resolve(handle, actor="lead@kruxt.app")
    return {"": handle}


async def continued_as_new(rig: Rig) -> Recorded:
    """A ticket continues-as-new (a small history limit) with a plan pending and both SLA
    clocks running, after a reassign; a later run approves it, runs it and rolls it back."""
    env, queue = rig.env, rig.queue
    client = env.client
    first = await start_ticket(client, _locked(), task_queue=queue, history_limit=10)
    await first.signal(
        TicketWorkflow.reassign, StaffAssign(actor="lead@kruxt.app", assignee="maya@kruxt.app")
    )
    # No run id: queries, signals and updates follow the chain to its latest run.
    handle = client.get_workflow_handle_for(TicketWorkflow.run, first.id)

    async def continued() -> bool:
        return (await handle.describe()).run_id != first.result_run_id

    await eventually(continued)
    state = await until_status(handle, TicketStatus.AWAITING_APPROVAL)
    request = state.approvals[0].request
    await env.sleep((request.expires_at - request.requested_at) * 0.6)  # reminded
    state = await until_status(handle, TicketStatus.AWAITING_APPROVAL)
    plan = Decision(
        approval_id=request.approval_id,
        approver="founder@kruxt.app",
        verdict=Verdict.APPROVE,
        channel=DecisionChannel.CLI,
    )
    await handle.execute_update(TicketWorkflow.decide, plan)
    state = await until_status(handle, TicketStatus.AWAITING_CUSTOMER)
    # Undone, so u-locked is locked again for the next scenario (recording shares a DB).
    rollback_id = await handle.execute_update(
        TicketWorkflow.request_rollback,
        RollbackRequest(
            run_id=state.runs[0].run_id, actor="founder@kruxt.app", channel=DecisionChannel.CLI
        ),
    )
    undo = plan.model_copy(update={"approval_id": rollback_id, "approver": "maya@kruxt.app"})
    await handle.execute_update(TicketWorkflow.decide, undo)
    await until_status(handle, TicketStatus.AWAITING_HUMAN)
    await handle.signal(TicketWorkflow.resolve, StaffResolve(actor="maya@kruxt.app"))
    # The start's handle follows the chain to its last run and skips the reopen window's time
    # (a handle got by id waits for it in real time).
    await first.result()
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


async def _outage_fixed(
    rig: Rig, fix: ResolveIncident
) -> tuple[WorkflowHandle[Any, TicketOutcome], TicketState, WorkflowHandle[Any, Any]]:
    """A P1 outage (triage: a product defect) opens an incident, which ``fix`` resolves; the
    ticket, as triaged, and the incident, once the ticket waits on the customer."""
    client = rig.env.client
    handle = await _start(
        client,
        rig.queue,
        "Workouts down for everyone",
        "Since this morning no member of our gym can save a workout: error 500 every time. "
        "This is an outage.",
    )
    state = await until_status(handle, TicketStatus.AWAITING_HUMAN)
    assert state.incident_id is not None and state.triage is not None, state
    assert state.triage.product_defect, state.triage
    incident = client.get_workflow_handle_for(
        IncidentWorkflow.run, incident_workflow_id(state.incident_id)
    )
    await incident.execute_update(IncidentWorkflow.resolve, fix)
    await incident.result()
    await until_status(handle, TicketStatus.AWAITING_CUSTOMER)
    return handle, state, incident


async def _defect_synced(rig: Rig, source_id: uuid.UUID) -> WorkflowHandle[Any, Any]:
    """The closed run of the defect ``source_id`` (a ticket, an incident) reported."""
    fingerprint = await rig.pool.fetchval(
        "SELECT fingerprint FROM support_defect_occurrences WHERE source_id = $1", source_id
    )
    defect = rig.env.client.get_workflow_handle(defect_workflow_id(fingerprint))
    await defect.result()
    return defect


async def outage_resolved_as_defect(rig: Rig) -> Recorded:
    """A P1 outage opens an incident; it is resolved as a product defect, then staff resolve
    the ticket (triage called it a defect too): both report one defect, whose workflow syncs
    its issue (GitHub off here: "would create")."""
    fix = ResolveIncident(by="founder@kruxt.app", defect=True, prevention="Alert on save errors")
    handle, state, incident = await _outage_fixed(rig, fix)
    await resolve(handle, actor="founder@kruxt.app")
    assert state.incident_id is not None
    defect = await _defect_synced(rig, state.incident_id)
    return {"ticket": handle, "incident": incident, "defect": defect}


async def outage_fixed_then_confirmed(rig: Rig) -> Recorded:
    """A P1 outage (triage: a product defect) opens an incident, resolved without marking it;
    the customer confirms the fix: the solved ticket reports the defect itself, whose
    workflow syncs its issue (GitHub off here: "would create"); the reopen window ends."""
    handle, state, _ = await _outage_fixed(rig, ResolveIncident(by="founder@kruxt.app"))
    await handle.signal(
        TicketWorkflow.customer_message,
        CustomerMessage(
            message_id=uuid.uuid4(), body="Thanks, that worked!", received_at=datetime.now(UTC)
        ),
    )
    await handle.result()
    return {"ticket": handle, "defect": await _defect_synced(rig, state.ticket_id)}


def _locked() -> TicketIntake:
    lockout = intake(subject=LOCKED_OUT["subject"], body=LOCKED_OUT["body"])
    return lockout.model_copy(update={"account_id": "u-locked"})


async def solved_reopened_confirmed_closed(rig: Rig) -> Recorded:
    """The lifecycle (issue 14): an answer met with silence is solved as assumed, with a
    closing message; a message within the reopen window reopens it (triaged and answered
    again); the customer confirms it worked; it reopens once more and is confirmed with the
    link of the answer; the window ends and the workflow completes."""
    handle = await _start(rig.env.client, rig.queue, **EXPORT)
    await until_status(handle, TicketStatus.AWAITING_CUSTOMER)
    await rig.env.sleep(timedelta(hours=73))
    await state_where(handle, lambda s: s.lifecycle.solved_how is SolvedHow.ASSUMED)
    for body in ("The export link expired before I could use it.", "Thanks, that worked!"):
        await handle.signal(
            TicketWorkflow.customer_message,
            CustomerMessage(message_id=uuid.uuid4(), body=body, received_at=datetime.now(UTC)),
        )
        await state_where(
            handle,
            lambda s: (
                s.lifecycle.reopened_count == 1
                and s.status in (TicketStatus.AWAITING_CUSTOMER, TicketStatus.RESOLVED)
            ),
        )
    await state_where(handle, lambda s: s.lifecycle.solved_how is SolvedHow.CONFIRMED)
    again = "The second export link expired before I could use it too."
    await handle.signal(
        TicketWorkflow.customer_message,
        CustomerMessage(message_id=uuid.uuid4(), body=again, received_at=datetime.now(UTC)),
    )
    await state_where(
        handle,
        lambda s: s.lifecycle.reopened_count == 2 and s.status is TicketStatus.AWAITING_CUSTOMER,
    )
    await handle.signal(TicketWorkflow.confirm, "the link")
    await state_where(
        handle,
        lambda s: s.lifecycle.reopened_count == 2 and s.status is TicketStatus.RESOLVED,
    )
    await handle.result()
    return {"": handle}


async def _chain(client: Client, workflow_id: str, run_id: str) -> Recorded:
    """Every run of a continue-as-new chain, labelled run1, run2, ..."""
    runs: Recorded = {}
    while run_id:
        run = client.get_workflow_handle(workflow_id, run_id=run_id)
        runs[f"run{len(runs) + 1}"] = run
        last = (await run.fetch_history()).events[-1]
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    return runs


async def weekly_review_of_last_week(rig: Rig) -> Recorded:
    """The weekly review run by hand (no week, no schedule): it reviews the week before its
    start, over the tickets the scenarios before it left, stores it and delivers it."""
    handle = await rig.env.client.start_workflow(
        WeeklyReviewWorkflow.run,
        ReviewRequest(),
        id=f"weekly-review-{uuid.uuid4()}",
        task_queue=rig.queue,
    )
    await handle.result()
    return {"": handle}


def _ticket(scenario: TicketScenario) -> Scenario:
    async def recorded(rig: Rig) -> Recorded:
        return {"": await scenario(rig.env.client, rig.queue)}

    return recorded


# In this order: u-locked must be locked when a plan is made, and the recording shares a DB.
# The rollbacks leave it locked again; the approved run, last, leaves it unlocked.
SCENARIOS: dict[str, Scenario] = {
    "auto_reply_follow_up_resolve": _ticket(auto_reply_follow_up_resolve),
    "refused_draft_to_person": _ticket(refused_draft_to_person),
    "delivery_refused_to_person": _ticket(delivery_refused_to_person),
    "human_queue_resolve": _ticket(human_queue_resolve),
    "bad_data_to_a_person": _ticket(bad_data_to_a_person),
    "reassigned_and_reprioritized": _ticket(reassigned_and_reprioritized),
    "staff_replied_and_noted": _ticket(staff_replied_and_noted),
    "p1_incident_escalated_acked_resolved": p1_incident_escalated_acked_resolved,
    "p2_cluster_then_p1_escalates": p2_cluster_then_p1_escalates,
    "approval_reminded_escalated_expired": approval_reminded_escalated_expired,
    "playbook_run_then_rolled_back": _ticket(playbook_run_then_rolled_back),
    "continued_as_new": continued_as_new,
    "incident_continued_as_new": incident_continued_as_new,
    "playbook_approved_and_run": _ticket(playbook_approved_and_run),
    "outage_resolved_as_defect": outage_resolved_as_defect,
    "outage_fixed_then_confirmed": outage_fixed_then_confirmed,
    "solved_reopened_confirmed_closed": solved_reopened_confirmed_closed,
    "weekly_review_of_last_week": weekly_review_of_last_week,
}

# How a scenario's worker differs from the others' (the recorder gives each scenario its own):
# only the customer's own help domains are allowed, so the drafted answer's link is refused.
OUTSIDE: dict[str, dict[str, Any]] = {
    "refused_draft_to_person": {"reply_guard": ReplyGuard(help_domains=("help.invalid",))},
    "delivery_refused_to_person": {"channels": {Channel.IN_APP: RefusingChannel()}},
}
