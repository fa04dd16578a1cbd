"""The staff JSON API under ``/v1/staff``: what the console shows and does, for scripts and
other tools, authenticated with a personal token (``Authorization: Bearer``) or the console's
session cookie (with ``X-CSRF-Token`` on every unsafe call).

Every action goes through :class:`~kruxt.starter.console.actions.ConsoleActions`, as the pages'
do: the same workflow updates and signals, audited with the channel ``console`` and the person
the token or session belongs to.
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' annotations, which name
# the router factory's local ``Ctx``.

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, EmailStr, Field, StringConstraints

from kruxt.models.approvals import DecisionOutcome, PendingApproval, Verdict
from kruxt.models.console import ConsoleIncident, ConsoleTicket, QueueBucket, QueueFilter, QueueRow
from kruxt.models.enums import Channel, Priority
from kruxt.models.incidents import Acknowledged, IncidentRecord, IncidentState
from kruxt.models.tickets import MessageBody, StrictModel
from kruxt.starter.console.auth import StaffApiUser, StaffMember
from kruxt.starter.console.context import ConsoleContext
from kruxt.starter.console.refusals import REFUSED, refusal_of

__all__ = ["staff_api_router"]

T = TypeVar("T")

Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
NeededReason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)
]


class DecideBody(StrictModel):
    """Body of ``POST /v1/staff/approvals/{approval_id}/decide``."""

    verdict: Verdict
    reason: Reason = Field(default="", description="Why; required to reject")


class MessageBodyIn(StrictModel):
    """Body of ``POST /v1/staff/tickets/{ticket_id}/messages``."""

    text: MessageBody
    internal: bool = Field(
        default=False, description="An internal note (staff only), not a reply to the customer"
    )


class ResolveBody(StrictModel):
    """Body of ``POST /v1/staff/tickets/{ticket_id}/resolve``."""

    note: Reason = ""


class ReassignBody(StrictModel):
    """Body of ``POST /v1/staff/tickets/{ticket_id}/reassign``."""

    assignee: EmailStr


class PriorityBody(StrictModel):
    """Body of ``POST /v1/staff/tickets/{ticket_id}/priority``."""

    priority: Priority
    reason: Reason = ""


class RollbackBody(StrictModel):
    """Body of ``POST /v1/staff/tickets/{ticket_id}/runs/{run_id}/rollback``."""

    reason: NeededReason


class IncidentResolveBody(StrictModel):
    """Body of ``POST /v1/staff/incidents/{incident_id}/resolve``."""

    note: Reason = ""


class MessageSent(BaseModel):
    """A reply or note the ticket's workflow took."""

    ticket_id: uuid.UUID
    message_id: uuid.UUID
    internal: bool


class ActionSent(BaseModel):
    """A staff action the ticket's workflow was signalled (it applies it in order)."""

    ticket_id: uuid.UUID
    action: str


class RollbackRequested(BaseModel):
    """The rollback's approval request: someone other than the asker decides it."""

    ticket_id: uuid.UUID
    run_id: uuid.UUID
    approval_id: uuid.UUID


def _not_found(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, {"error": "not_found", "detail": what})


async def _answer(call: Awaitable[T]) -> T:
    """``call``'s result; a domain refusal as the API's error (its status and the reason)."""
    try:
        return await call
    except REFUSED as exc:
        refusal = refusal_of(exc)
        raise HTTPException(
            refusal.status, {"error": refusal.error, "detail": refusal.detail}
        ) from exc


async def _signalled(ticket_id: uuid.UUID, action: str, call: Awaitable[None]) -> ActionSent:
    """``call`` (a signal to the ticket's workflow) answered as the API answers it."""
    await _answer(call)
    return ActionSent(ticket_id=ticket_id, action=action)


def staff_api_router(get_ctx: Callable[[Request], ConsoleContext]) -> APIRouter:
    """The ``/v1/staff`` routes; ``get_ctx`` finds their dependencies (404 when the console
    is off)."""
    router = APIRouter(prefix="/v1/staff", tags=["staff"])
    Ctx = Annotated[ConsoleContext, Depends(get_ctx)]

    @router.get("/me")
    async def me(user: StaffApiUser) -> StaffMember:
        """Who the token or session acts for, with the directory's roles."""
        return user

    # --- approvals ------------------------------------------------------------------------

    @router.get("/approvals")
    async def approvals(user: StaffApiUser, ctx: Ctx) -> list[PendingApproval]:
        """Approval requests waiting for a decision, the oldest first."""
        return await ctx.queries.pending_approvals()

    @router.post("/approvals/{approval_id}/decide")
    async def decide(
        approval_id: uuid.UUID, body: DecideBody, user: StaffApiUser, ctx: Ctx
    ) -> DecisionOutcome:
        """Approve or reject, as the caller; 403 when the workflow refuses (the requester,
        a missing role, expired or decided already)."""
        if body.verdict is Verdict.REJECT and not body.reason:
            raise HTTPException(
                422,
                {
                    "error": "invalid_request",
                    "detail": "invalid: reason",
                    "fields": [{"field": "reason", "message": "required to reject"}],
                },
            )
        return await _answer(ctx.actions.decide(approval_id, body.verdict, body.reason, user))

    # --- tickets --------------------------------------------------------------------------

    @router.get("/tickets")
    async def tickets(
        user: StaffApiUser,
        ctx: Ctx,
        bucket: QueueBucket = QueueBucket.ALL,
        search: Annotated[str, Query(max_length=200)] = "",
        priority: Priority | None = None,
        channel: Channel | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[QueueRow]:
        """The queue: one tab, filtered, the most urgent first."""
        f = QueueFilter(
            bucket=bucket, search=search, priority=priority, channel=channel, limit=limit
        )
        return await ctx.queries.queue(f)

    @router.get("/tickets/{ticket_id}")
    async def ticket(ticket_id: uuid.UUID, user: StaffApiUser, ctx: Ctx) -> ConsoleTicket:
        """The ticket with its live state, triage, approvals (and what the caller may decide),
        incident and audit trail."""
        found = await ctx.queries.ticket(ticket_id, viewer=user)
        if found is None:
            raise _not_found(f"no ticket {ticket_id}")
        return found

    @router.post("/tickets/{ticket_id}/messages", status_code=status.HTTP_202_ACCEPTED)
    async def write(
        ticket_id: uuid.UUID, body: MessageBodyIn, user: StaffApiUser, ctx: Ctx
    ) -> MessageSent:
        """A reply to the customer through the ticket's channel, or (``internal``) a note
        staff see and the customer never does."""
        send = ctx.actions.note if body.internal else ctx.actions.reply
        message_id = await _answer(send(ticket_id, body.text, user))
        return MessageSent(ticket_id=ticket_id, message_id=message_id, internal=body.internal)

    @router.post("/tickets/{ticket_id}/resolve", status_code=status.HTTP_202_ACCEPTED)
    async def resolve(
        ticket_id: uuid.UUID, body: ResolveBody, user: StaffApiUser, ctx: Ctx
    ) -> ActionSent:
        """Resolve the ticket; 409 when it is solved or closed already."""
        return await _signalled(
            ticket_id, "resolve", ctx.actions.resolve(ticket_id, body.note, user)
        )

    @router.post("/tickets/{ticket_id}/reassign", status_code=status.HTTP_202_ACCEPTED)
    async def reassign(
        ticket_id: uuid.UUID, body: ReassignBody, user: StaffApiUser, ctx: Ctx
    ) -> ActionSent:
        """Give the ticket to someone on the team."""
        assignee = str(body.assignee)
        return await _signalled(
            ticket_id, "reassign", ctx.actions.reassign(ticket_id, assignee, user)
        )

    @router.post("/tickets/{ticket_id}/priority", status_code=status.HTTP_202_ACCEPTED)
    async def change_priority(
        ticket_id: uuid.UUID, body: PriorityBody, user: StaffApiUser, ctx: Ctx
    ) -> ActionSent:
        """Set the ticket's priority; its SLA deadlines follow."""
        change = ctx.actions.change_priority(ticket_id, body.priority, body.reason, user)
        return await _signalled(ticket_id, "change_priority", change)

    @router.post("/tickets/{ticket_id}/runs/{run_id}/rollback")
    async def rollback(
        ticket_id: uuid.UUID, run_id: uuid.UUID, body: RollbackBody, user: StaffApiUser, ctx: Ctx
    ) -> RollbackRequested:
        """Ask for a completed playbook run to be undone; another person approves it."""
        approval_id = await _answer(
            ctx.actions.request_rollback(ticket_id, run_id, body.reason, user)
        )
        return RollbackRequested(ticket_id=ticket_id, run_id=run_id, approval_id=approval_id)

    # --- incidents ------------------------------------------------------------------------

    @router.get("/incidents")
    async def incidents(user: StaffApiUser, ctx: Ctx) -> list[IncidentRecord]:
        """Open and acknowledged incidents, the most severe first."""
        return await ctx.queries.incidents()

    @router.get("/incidents/{incident_id}")
    async def incident(incident_id: uuid.UUID, user: StaffApiUser, ctx: Ctx) -> ConsoleIncident:
        """One incident with its escalation level and timeline."""
        found = await ctx.queries.incident(incident_id)
        if found is None:
            raise _not_found(f"no incident {incident_id}")
        return found

    @router.post("/incidents/{incident_id}/acknowledge")
    async def acknowledge(incident_id: uuid.UUID, user: StaffApiUser, ctx: Ctx) -> Acknowledged:
        """Take the incident: escalation stops; 409 when someone did already."""
        return await _answer(ctx.actions.acknowledge_incident(incident_id, user))

    @router.post("/incidents/{incident_id}/resolve")
    async def resolve_incident(
        incident_id: uuid.UUID, body: IncidentResolveBody, user: StaffApiUser, ctx: Ctx
    ) -> IncidentState:
        """Resolve the incident; its tickets are told."""
        return await _answer(ctx.actions.resolve_incident(incident_id, body.note, user))

    return router
