"""Ticket scenarios driven through a real worker: used by the replay test and its recorder."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client, WorkflowHandle

from kruxt.adapters.approvers import Approver, ApproverDirectory
from kruxt.models.approvals import Decision, DecisionChannel, RollbackRequest, Verdict
from kruxt.models.enums import TicketStatus
from kruxt.models.playbooks import ApproverRole
from kruxt.models.tickets import (
    CustomerMessage,
    RoutingPolicy,
    StaffResolve,
    TicketOutcome,
    TicketWorkflowInput,
    workflow_id_for,
)
from kruxt.workflows.ticket import TicketWorkflow
from tests.support import eventually, intake

Scenario = Callable[[Client, str], Awaitable[WorkflowHandle[Any, TicketOutcome]]]
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


async def human_queue_resolve(client: Client, queue: str) -> WorkflowHandle[Any, TicketOutcome]:
    """A lockout goes to a person with an acknowledgement; staff resolves it."""
    handle = await _start(
        client, queue, "Locked out", "I cannot log in, the app says my account is locked."
    )
    await _until(handle, TicketStatus.AWAITING_HUMAN)
    await handle.signal(TicketWorkflow.resolve, StaffResolve(actor="lead@kruxt.app"))
    await handle.result()
    return handle


SCENARIOS: dict[str, Scenario] = {
    "auto_reply_follow_up_resolve": auto_reply_follow_up_resolve,
    "human_queue_resolve": human_queue_resolve,
}


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


# The rollback first: it leaves u-locked locked again for the next one (recording shares a DB).
SCENARIOS["playbook_run_then_rolled_back"] = playbook_run_then_rolled_back
SCENARIOS["playbook_approved_and_run"] = playbook_approved_and_run
