"""What only a ticket's workflow knows (SLA clocks, lifecycle, incident, approvals, runs), read
with its ``state`` query and laid over the stored ticket.

Read-only, and apart from :mod:`kruxt.starter.intake` so that reading a ticket loads the
Temporal client but not the ticket workflow's code, nor the SDKs its activities use.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

from temporalio.service import RPCError, RPCStatusCode

from kruxt.adapters.temporal_client import TemporalUnavailableError
from kruxt.models.tickets import ApprovalBrief, RunBrief, TicketState, workflow_id_for

if TYPE_CHECKING:
    from temporalio.client import Client

    from kruxt.models.tickets import TicketView

__all__ = [
    "STATE_QUERY",
    "UnknownTicketError",
    "live_state",
    "overlay",
    "ticket_state",
    "with_live_state",
]

# TicketWorkflow.state, asked by its name: importing the workflow would load its activities.
STATE_QUERY = "state"


class UnknownTicketError(LookupError):
    """No workflow exists for this ticket id."""


async def ticket_state(client: Client, ticket_id: uuid.UUID) -> TicketState:
    """The live state of the ticket's workflow (works on finished workflows too).

    Raises:
        UnknownTicketError: no workflow exists for the ticket.
    """
    handle = client.get_workflow_handle(workflow_id_for(ticket_id))
    try:
        state: TicketState = await handle.query(STATE_QUERY, result_type=TicketState)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise UnknownTicketError(str(ticket_id)) from exc
        raise
    return state


async def with_live_state(client: Client, view: TicketView, *, timeout: float = 2.0) -> TicketView:
    """The stored ticket plus what only its workflow knows (SLA clocks, incident).

    Best effort: if Temporal does not answer in time the stored view is returned as is.
    """
    state = await live_state(client, view.ticket_id, timeout=timeout)
    return view if state is None else overlay(view, state)


async def live_state(
    client: Client, ticket_id: uuid.UUID, *, timeout: float = 2.0
) -> TicketState | None:
    """The ticket's live state; None when its workflow does not answer in time (or has none)."""
    try:
        return await asyncio.wait_for(ticket_state(client, ticket_id), timeout)
    except (TimeoutError, UnknownTicketError, RPCError, TemporalUnavailableError):
        return None


def overlay(view: TicketView, state: TicketState) -> TicketView:
    """The stored ticket with what its workflow's ``state`` says laid over it."""
    runs = [
        RunBrief(
            run_id=r.run_id,
            playbook=r.plan.playbook,
            status=r.status.value,
            approved_by=r.approved_by,
        )
        for r in state.runs
    ]
    approvals = [
        ApprovalBrief(
            approval_id=a.request.approval_id,
            kind=a.request.kind.value,
            playbook=a.request.playbook,
            status=a.status.value,
            required_role=a.request.required_role.value,
            decided_by=a.decided_by,
            expires_at=a.request.expires_at,
        )
        for a in state.approvals
    ]
    return view.model_copy(
        update={
            "sla": state.sla,
            "incident_id": state.incident_id,
            "lifecycle": state.lifecycle,
            "runs": runs,
            "approvals": approvals,
        }
    )
