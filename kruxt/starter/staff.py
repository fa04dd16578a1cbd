"""Staff actions on a ticket (resolve, reassign, change priority, reply, note): used by the CLI
and the staff console."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from temporalio.client import Client
from temporalio.service import RPCError

from kruxt.adapters.email_texts import format_utc
from kruxt.models.approvals import DecisionChannel
from kruxt.models.enums import Priority, TicketStatus
from kruxt.models.lifecycle import LifecycleState
from kruxt.models.text import require_storable
from kruxt.models.tickets import (
    MESSAGE_LIMIT,
    StaffAssign,
    StaffMessage,
    StaffPriorityChange,
    StaffResolve,
    workflow_id_for,
)
from kruxt.starter.intake import signal_ticket
from kruxt.workflows.ticket import TicketWorkflow

# A resolve asks the workflow whether it is solved already; a worker that does not answer
# within this long does not hold the resolve up (it is sent, and the workflow decides).
_STATE_TIMEOUT = 2.0


class MessageRefusedError(ValueError):
    """A reply or note that is empty or too long: nothing was sent."""


class TicketAlreadySolvedError(Exception):
    """The ticket is solved and its workflow waits out the reopen window: nothing to resolve."""

    def __init__(self, lifecycle: LifecycleState) -> None:
        how = lifecycle.solved_how.value if lifecycle.solved_how else "unknown"
        at = format_utc(lifecycle.solved_at) if lifecycle.solved_at else "an unknown time"
        text = f"is already solved ({how}) by {lifecycle.solved_by} at {at}"
        if lifecycle.reopen_until is not None:
            text += f"; the reopen window ends at {format_utc(lifecycle.reopen_until)}"
        super().__init__(text)
        self.lifecycle = lifecycle


class StaffService:
    """Sends a support staff member's action to the ticket's workflow as a signal.

    Every method raises ``UnknownTicketError`` when no workflow exists for the ticket,
    ``TicketClosedError`` when it has finished, and ``UnstorableTextError`` (nothing sent)
    when a field holds text Postgres cannot store. ``channel`` says where the staff member
    acted (the console, the CLI); the audit log records it.
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    async def change_priority(
        self,
        *,
        ticket_id: uuid.UUID,
        priority: Priority,
        actor: str,
        reason: str = "",
        channel: DecisionChannel | None = None,
    ) -> None:
        """A staff member's new priority; the ticket's SLA deadlines are recomputed."""
        require_storable({"actor": actor, "reason": reason})
        await signal_ticket(
            self._client,
            ticket_id,
            TicketWorkflow.change_priority,
            StaffPriorityChange(actor=actor, priority=priority, reason=reason, channel=channel),
        )

    async def reassign(
        self,
        *,
        ticket_id: uuid.UUID,
        assignee: str,
        actor: str,
        channel: DecisionChannel | None = None,
    ) -> None:
        """Give the ticket to someone on the support team."""
        require_storable({"assignee": assignee, "actor": actor})
        await signal_ticket(
            self._client,
            ticket_id,
            TicketWorkflow.reassign,
            StaffAssign(actor=actor, assignee=assignee, channel=channel),
        )

    async def reply(
        self,
        *,
        ticket_id: uuid.UUID,
        body: str,
        actor: str,
        channel: DecisionChannel | None = None,
    ) -> uuid.UUID:
        """A reply to the customer, sent by the ticket's workflow through the ticket's channel;
        returns the message's id (the workflow stores it under this id)."""
        return await self._message(TicketWorkflow.staff_reply, ticket_id, body, actor, channel)

    async def note(
        self,
        *,
        ticket_id: uuid.UUID,
        body: str,
        actor: str,
        channel: DecisionChannel | None = None,
    ) -> uuid.UUID:
        """An internal note in the ticket's thread (staff only, never sent to the customer);
        returns its id."""
        return await self._message(TicketWorkflow.staff_note, ticket_id, body, actor, channel)

    async def _message(
        self,
        signal: Callable[[TicketWorkflow, StaffMessage], None],
        ticket_id: uuid.UUID,
        body: str,
        actor: str,
        channel: DecisionChannel | None,
    ) -> uuid.UUID:
        require_storable({"body": body, "actor": actor})
        body = body.strip()
        if not body or len(body) > MESSAGE_LIMIT:
            raise MessageRefusedError(
                f"a message holds 1 to {MESSAGE_LIMIT} characters, not {len(body)}"
            )
        message = StaffMessage(message_id=uuid.uuid4(), actor=actor, body=body, channel=channel)
        await signal_ticket(self._client, ticket_id, signal, message)
        return message.message_id

    async def resolve(
        self,
        *,
        ticket_id: uuid.UUID,
        actor: str,
        note: str = "",
        defect: bool = False,
        prevention: str = "",
        channel: DecisionChannel | None = None,
    ) -> None:
        """Ask the ticket's workflow to resolve the ticket; ``defect``: its cause is a product
        defect, filed as a GitHub issue with the ``prevention`` notes.

        Raises:
            TicketAlreadySolvedError: the ticket is solved, inside its reopen window (the
                workflow ignores the resolve; the error says how, when, and the window's end).
        """
        require_storable({"actor": actor, "note": note, "prevention": prevention})
        resolve = StaffResolve(
            actor=actor, note=note, defect=defect, prevention=prevention, channel=channel
        )
        solved = await self._solved(ticket_id)
        await signal_ticket(self._client, ticket_id, TicketWorkflow.resolve, resolve)
        if solved is not None:  # still running (else TicketClosedError): it stays solved
            raise TicketAlreadySolvedError(solved)

    async def _solved(self, ticket_id: uuid.UUID) -> LifecycleState | None:
        """The lifecycle of a solved ticket; None when it is not solved, or nobody answers."""
        handle = self._client.get_workflow_handle_for(
            TicketWorkflow.run, workflow_id_for(ticket_id)
        )
        try:
            state = await asyncio.wait_for(handle.query(TicketWorkflow.state), _STATE_TIMEOUT)
        except (TimeoutError, RPCError):
            return None  # unknown or unreachable: the signal says which
        if state.status is TicketStatus.RESOLVED and state.lifecycle.solved_at is not None:
            return state.lifecycle
        return None
