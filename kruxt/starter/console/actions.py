"""What the staff console does: every action is the same workflow update or signal that Slack,
e-mail and the CLI send, audited with the channel ``console`` and the signed-in person.

Refusals are the domain errors the other entrypoints raise (``DecisionRefusedError``,
``UnknownTicketError``, ``TicketClosedError``, ``IncidentRefusedError``,
``UnknownIncidentError``, ``UnstorableTextError``, ``TicketAlreadySolvedError``,
``MessageRefusedError`` for an empty or too long reply or note): the pages and the JSON API
translate them.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from kruxt.models.approvals import DecisionChannel, DecisionOutcome, Verdict
from kruxt.models.enums import Priority
from kruxt.models.incidents import Acknowledged, IncidentState
from kruxt.starter.approvals import ApprovalService, DecisionAttempt
from kruxt.starter.incidents import IncidentService
from kruxt.starter.staff import StaffService

if TYPE_CHECKING:
    from kruxt.starter.console.auth import StaffMember

__all__ = ["ConsoleActions"]

# Every action here is audited as taken in the console, by the signed-in person.
CONSOLE = DecisionChannel.CONSOLE


class ConsoleActions:
    """A signed-in staff member's actions on tickets, approvals and incidents."""

    def __init__(
        self,
        *,
        approvals: ApprovalService,
        staff: StaffService,
        incidents: IncidentService,
    ) -> None:
        self._approvals = approvals
        self._staff = staff
        self._incidents = incidents

    async def decide(
        self, approval_id: uuid.UUID, verdict: Verdict, reason: str, actor: StaffMember
    ) -> DecisionOutcome:
        """Approve or reject; the workflow's validator refuses the requester, a missing role,
        the expired and the already decided (``DecisionRefusedError``)."""
        attempt = DecisionAttempt(
            approval_id=approval_id,
            approver_email=actor.email,
            verdict=verdict,
            channel=CONSOLE,
            reason=reason,
        )
        return await self._approvals.decide(attempt)

    async def request_rollback(
        self, ticket_id: uuid.UUID, run_id: uuid.UUID, reason: str, actor: StaffMember
    ) -> uuid.UUID:
        """Ask to undo a completed playbook run; returns the approval someone else decides."""
        return await self._approvals.request_rollback(
            ticket_id=ticket_id, run_id=run_id, actor=actor.email, reason=reason, channel=CONSOLE
        )

    async def reply(self, ticket_id: uuid.UUID, text: str, actor: StaffMember) -> uuid.UUID:
        """A public reply to the customer through the ticket's channel; returns its message id."""
        return await self._staff.reply(
            ticket_id=ticket_id, body=text, actor=actor.email, channel=CONSOLE
        )

    async def note(self, ticket_id: uuid.UUID, text: str, actor: StaffMember) -> uuid.UUID:
        """An internal note in the thread (never sent to the customer); returns its id."""
        return await self._staff.note(
            ticket_id=ticket_id, body=text, actor=actor.email, channel=CONSOLE
        )

    async def resolve(self, ticket_id: uuid.UUID, note: str, actor: StaffMember) -> None:
        """Resolve the ticket (``TicketAlreadySolvedError`` when it is solved already)."""
        await self._staff.resolve(
            ticket_id=ticket_id, actor=actor.email, note=note, channel=CONSOLE
        )

    async def reassign(self, ticket_id: uuid.UUID, assignee: str, actor: StaffMember) -> None:
        """Give the ticket to someone on the team (an e-mail)."""
        await self._staff.reassign(
            ticket_id=ticket_id, assignee=assignee, actor=actor.email, channel=CONSOLE
        )

    async def change_priority(
        self, ticket_id: uuid.UUID, priority: Priority, reason: str, actor: StaffMember
    ) -> None:
        """Set the ticket's priority; its SLA deadlines are recomputed."""
        await self._staff.change_priority(
            ticket_id=ticket_id,
            priority=priority,
            actor=actor.email,
            reason=reason,
            channel=CONSOLE,
        )

    async def acknowledge_incident(
        self, incident_id: uuid.UUID, actor: StaffMember
    ) -> Acknowledged:
        """Take the incident: escalation stops."""
        return await self._incidents.acknowledge(incident_id, by=actor.email, channel=CONSOLE)

    async def resolve_incident(
        self, incident_id: uuid.UUID, note: str, actor: StaffMember
    ) -> IncidentState:
        """Resolve the incident; its tickets are told."""
        return await self._incidents.resolve(
            incident_id, by=actor.email, note=note, channel=CONSOLE
        )
