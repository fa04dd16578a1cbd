"""Staff actions on a ticket (resolve, reassign, change priority): used by the CLI."""

from __future__ import annotations

import uuid

from temporalio.client import Client

from kruxt.models.enums import Priority
from kruxt.models.text import require_storable
from kruxt.models.tickets import StaffAssign, StaffPriorityChange, StaffResolve
from kruxt.starter.intake import signal_ticket
from kruxt.workflows.ticket import TicketWorkflow


class StaffService:
    """Sends a support staff member's action to the ticket's workflow as a signal.

    Every method raises ``UnknownTicketError`` when no workflow exists for the ticket,
    ``TicketClosedError`` when it has finished, and ``UnstorableTextError`` (nothing sent)
    when a field holds text Postgres cannot store.
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    async def change_priority(
        self, *, ticket_id: uuid.UUID, priority: Priority, actor: str, reason: str = ""
    ) -> None:
        """A staff member's new priority; the ticket's SLA deadlines are recomputed."""
        require_storable({"actor": actor, "reason": reason})
        await signal_ticket(
            self._client,
            ticket_id,
            TicketWorkflow.change_priority,
            StaffPriorityChange(actor=actor, priority=priority, reason=reason),
        )

    async def reassign(self, *, ticket_id: uuid.UUID, assignee: str, actor: str) -> None:
        """Give the ticket to someone on the support team."""
        require_storable({"assignee": assignee, "actor": actor})
        await signal_ticket(
            self._client,
            ticket_id,
            TicketWorkflow.reassign,
            StaffAssign(actor=actor, assignee=assignee),
        )

    async def resolve(self, *, ticket_id: uuid.UUID, actor: str, note: str = "") -> None:
        """Ask the ticket's workflow to resolve the ticket."""
        require_storable({"actor": actor, "note": note})
        await signal_ticket(
            self._client, ticket_id, TicketWorkflow.resolve, StaffResolve(actor=actor, note=note)
        )
