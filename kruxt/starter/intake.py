"""Opening tickets and delivering follow-ups: shared by the HTTP API and the CLI.

Staff actions on a ticket (resolve, reassign, priority) are ``kruxt.starter.staff``'s; reading
what its workflow knows is ``kruxt.starter.live_state``'s.
"""

from __future__ import annotations

import uuid
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from kruxt.adapters.postgres.tickets import FIRST_MESSAGE_KEY
from kruxt.adapters.settings import Settings
from kruxt.adapters.temporal_client import unavailable_as_error
from kruxt.bootstrap import sla_targets_from
from kruxt.models import search_attributes as sa
from kruxt.models.channels import FollowUp, NewTicket
from kruxt.models.enums import Channel, TicketStatus
from kruxt.models.lifecycle import parse_duration
from kruxt.models.sla import SlaTargets
from kruxt.models.text import require_storable
from kruxt.models.tickets import (
    CustomerMessage,
    NewTicketRequest,
    Requester,
    RoutingPolicy,
    TicketAccepted,
    TicketIntake,
    TicketState,
    TicketView,
    TicketWorkflowInput,
    inbound_message_id_for,
    ticket_id_for,
    workflow_id_for,
)
from kruxt.starter.live_state import UnknownTicketError, ticket_state, with_live_state
from kruxt.workflows.ticket import TicketWorkflow

__all__ = [
    "FollowUpAccepted",
    "IntakeService",
    "TicketClosedError",
    "UnknownTicketError",
    "intake_from",
    "routing_policy_from",
    "signal_ticket",
]


def start_options(intake: TicketIntake) -> dict[str, Any]:
    """How intake starts a ticket's workflow, beside its input and queue: the id and its
    policies (USE_EXISTING answers a duplicate that arrives while the workflow runs,
    REJECT_DUPLICATE one that arrives after it finished), the search attributes it is found
    by from its first moment, and the summary and details the Web UI shows for it."""
    return {
        "id": workflow_id_for(intake.ticket_id),
        "id_conflict_policy": WorkflowIDConflictPolicy.USE_EXISTING,
        "id_reuse_policy": WorkflowIDReusePolicy.REJECT_DUPLICATE,
        "search_attributes": TypedSearchAttributes(
            [
                SearchAttributePair(sa.CHANNEL, intake.channel.value),
                SearchAttributePair(sa.TICKET_STATUS, TicketStatus.NEW.value),
            ]
        ),
        "static_summary": _one_line(f"{intake.requester.email}: {intake.subject}"),
        "static_details": (
            f"Ticket {intake.ticket_id} from {intake.channel.value} ({intake.external_id})"
        ),
    }


class TicketClosedError(Exception):
    """The ticket's workflow has finished; it takes no more messages."""


@dataclass(frozen=True)
class FollowUpAccepted:
    """Where a customer's follow-up went: its ticket, or the new ticket it opened after its
    ticket's reopen window ended (``follows``: the ticket it links to)."""

    ticket_id: uuid.UUID
    message_id: uuid.UUID
    follows: uuid.UUID | None = None


@dataclass(frozen=True)
class IntakeService:
    """Starts one TicketWorkflow per ticket and routes signals to it."""

    client: Client
    _: KW_ONLY
    task_queue: str
    policy: RoutingPolicy
    sla: SlaTargets = field(default_factory=SlaTargets)

    async def open_ticket(
        self,
        *,
        channel: Channel,
        external_id: str,
        requester: Requester,
        subject: str,
        body: str,
        account_id: str | None = None,
        with_message: CustomerMessage | None = None,
        previous_ticket_id: uuid.UUID | None = None,
    ) -> TicketAccepted:
        """Start the ticket's workflow, or find the one already started for this id.

        The id is derived from (channel, external_id); USE_EXISTING answers a duplicate that
        arrives while the workflow runs, REJECT_DUPLICATE one that arrives after it finished.
        Either way the caller gets the same ids and nothing new is started.

        ``with_message``: a follow-up that may arrive before its ticket (a channel's events
        come in any order). Signal-with-start delivers it to the running workflow, or starts
        the workflow with it, so it lands on the one workflow either way.

        Raises:
            UnstorableTextError: a field holds text Postgres cannot store (NUL, unpaired
                surrogates) or control characters; nothing is started.
        """
        require_storable(
            {
                "external_id": external_id,
                "requester.id": requester.id,
                "requester.email": str(requester.email),
                "requester.name": requester.name,
                "account_id": account_id,
                "subject": subject,
                "body": body,
            }
        )
        ticket_id = ticket_id_for(channel, external_id)
        workflow_id = workflow_id_for(ticket_id)
        intake = TicketIntake(
            ticket_id=ticket_id,
            channel=channel,
            external_id=external_id,
            requester=requester,
            account_id=account_id,
            subject=subject,
            body=body,
            received_at=datetime.now(UTC),
            previous_ticket_id=previous_ticket_id,
        )
        try:
            with unavailable_as_error():
                await self.client.start_workflow(
                    TicketWorkflow.run,
                    TicketWorkflowInput(intake=intake, policy=self.policy, sla=self.sla),
                    task_queue=self.task_queue,
                    start_signal=None if with_message is None else "customer_message",
                    start_signal_args=[] if with_message is None else [with_message],
                    **start_options(intake),
                )
        except WorkflowAlreadyStartedError as exc:
            if with_message is not None:
                raise TicketClosedError(str(ticket_id)) from exc
            # finished before: same ticket, nothing to start
        return TicketAccepted(ticket_id=ticket_id, workflow_id=workflow_id)

    async def add_message(
        self, *, ticket_id: uuid.UUID, external_id: str, body: str
    ) -> FollowUpAccepted:
        """Deliver a customer's follow-up to the ticket's workflow; returns where it went.

        A ticket whose reopen window has ended takes no more messages: the follow-up opens a
        new ticket that links to it (one per message, so a redelivery opens nothing twice).

        Raises:
            UnstorableTextError: the text holds characters intake refuses; nothing is sent.
        """
        require_storable({"external_id": external_id, "body": body})
        message_id = inbound_message_id_for(ticket_id, external_id)
        message = CustomerMessage(message_id=message_id, body=body, received_at=datetime.now(UTC))
        try:
            await signal_ticket(self.client, ticket_id, TicketWorkflow.customer_message, message)
        except TicketClosedError:
            previous = await self._intake_of(ticket_id)
            accepted = await self.open_ticket(
                channel=previous.channel,
                external_id=f"{previous.external_id}~{external_id}",
                requester=previous.requester,
                account_id=previous.account_id,
                subject=previous.subject,
                body=body,
                previous_ticket_id=ticket_id,
            )
            first = inbound_message_id_for(accepted.ticket_id, FIRST_MESSAGE_KEY)
            return FollowUpAccepted(accepted.ticket_id, first, follows=ticket_id)
        return FollowUpAccepted(ticket_id, message_id)

    async def _intake_of(self, ticket_id: uuid.UUID) -> TicketIntake:
        """The ticket as its (finished) workflow's last run was started with."""
        handle = self.client.get_workflow_handle(workflow_id_for(ticket_id))
        with unavailable_as_error():
            async for event in handle.fetch_history_events(page_size=1):
                payloads = event.workflow_execution_started_event_attributes.input.payloads
                decoded = await self.client.data_converter.decode(payloads, [TicketWorkflowInput])
                return cast(TicketWorkflowInput, decoded[0]).intake
        raise UnknownTicketError(str(ticket_id))

    async def open_parsed(
        self, parsed: NewTicket, *, with_message: CustomerMessage | None = None
    ) -> TicketAccepted:
        """Open the ticket a customer channel parsed from its request (see ``open_ticket``)."""
        ticket = parsed.ticket
        return await self.open_ticket(
            channel=parsed.channel,
            external_id=ticket.external_id,
            requester=ticket.requester,
            account_id=ticket.account_id,
            subject=ticket.subject,
            body=ticket.body,
            with_message=with_message,
        )

    async def follow_up(self, parsed: FollowUp) -> FollowUpAccepted:
        """Deliver the follow-up a customer channel parsed (see ``add_message``); one that
        carries its ticket's opening starts that ticket if need be (see ``open_ticket``)."""
        if parsed.opening is not None:
            try:
                return await self._open_with(parsed, parsed.opening)
            except TicketClosedError:
                pass  # its reopen window ended: the message opens a linked ticket
        return await self.add_message(
            ticket_id=parsed.ticket_id,
            external_id=parsed.message.external_id,
            body=parsed.message.body,
        )

    async def _open_with(self, parsed: FollowUp, opening: NewTicketRequest) -> FollowUpAccepted:
        require_storable({"external_id": parsed.message.external_id})
        message_id = inbound_message_id_for(parsed.ticket_id, parsed.message.external_id)
        message = CustomerMessage(
            message_id=message_id, body=parsed.message.body, received_at=datetime.now(UTC)
        )
        await self.open_parsed(
            NewTicket(channel=parsed.channel, ticket=opening), with_message=message
        )
        return FollowUpAccepted(parsed.ticket_id, message_id)

    async def state(self, ticket_id: uuid.UUID) -> TicketState:
        """The live state of the ticket's workflow (see :func:`live_state.ticket_state`)."""
        return await ticket_state(self.client, ticket_id)

    async def received(self, ticket_id: uuid.UUID) -> bool:
        """Whether the ticket's workflow exists (its row may not be written yet: its first
        activity writes it, just after the intake answers 202). False when Temporal cannot
        say."""
        try:
            await self.client.get_workflow_handle(workflow_id_for(ticket_id)).describe()
        except RPCError:
            return False
        return True

    async def with_live_state(self, view: TicketView, *, timeout: float = 2.0) -> TicketView:
        """The stored ticket plus what only its workflow knows (see
        :func:`live_state.with_live_state`)."""
        return await with_live_state(self.client, view, timeout=timeout)


async def signal_ticket(client: Client, ticket_id: uuid.UUID, signal: object, arg: object) -> None:
    """Signal the ticket's workflow.

    Raises:
        UnknownTicketError: no workflow exists for the ticket.
        TicketClosedError: the ticket's workflow has finished.
    """
    handle = client.get_workflow_handle(workflow_id_for(ticket_id))
    try:
        with unavailable_as_error():
            await handle.signal(signal, arg)  # type: ignore[call-overload]
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        try:
            description = await handle.describe()
        except RPCError as missing:
            raise UnknownTicketError(str(ticket_id)) from missing
        if description.status != WorkflowExecutionStatus.RUNNING:
            raise TicketClosedError(str(ticket_id)) from exc
        raise


def _one_line(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def routing_policy_from(settings: Settings) -> RoutingPolicy:
    """The routing policy of the settings (the auto-reply confidence bar, the lifecycle)."""
    return RoutingPolicy(
        auto_reply_min_confidence=settings.auto_reply_min_confidence,
        auto_solve_after_seconds=_seconds(settings.auto_solve_after, "KRUXT_AUTO_SOLVE_AFTER"),
        reopen_window_seconds=_seconds(settings.reopen_window, "KRUXT_REOPEN_WINDOW"),
    )


def _seconds(text: str, source: str) -> int:
    return int(parse_duration(text, source=source).total_seconds())


def intake_from(client: Client, settings: Settings) -> IntakeService:
    """The intake service with the routing policy and SLA targets of the settings."""
    return IntakeService(
        client,
        task_queue=settings.task_queue,
        policy=routing_policy_from(settings),
        sla=sla_targets_from(settings),
    )
