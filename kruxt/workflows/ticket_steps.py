"""The ticket workflow's outward steps: status changes and customer messages.

Each is an activity plus its effect on the workflow's state, its search attributes and its
SLA clocks; routing (:mod:`kruxt.workflows.ticket_routing`) and the playbook runs
(:mod:`kruxt.workflows.runs`) take the steps from here, so every caller changes them alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from kruxt.activities.tickets import TicketActivities
    from kruxt.models import search_attributes as sa
    from kruxt.models.approvals import DecisionChannel
    from kruxt.models.enums import TicketStatus
    from kruxt.models.records import (
        DraftReply,
        MessageKind,
        OutboundMessageInput,
        StatusChangeInput,
    )
    from kruxt.models.sla import ClockKind
    from kruxt.models.tickets import StaffMessage, TicketWorkflowState
    from kruxt.workflows.policies import db_activity
    from kruxt.workflows.revisions import Patches
    from kruxt.workflows.sla import SlaTracker

__all__ = ["AUTOPILOT", "DELIVERY_REFUSED", "TicketSteps"]

AUTOPILOT = "autopilot"
# workflow.patched: a message the ticket's channel refused for good sends the ticket to a
# person (before, the activity failed and took the workflow with it).
DELIVERY_REFUSED = "channel-delivery-refused"

# What does not answer the customer (as the ticket store counts first responses).
_NOT_AN_ANSWER = frozenset({MessageKind.ACKNOWLEDGEMENT, MessageKind.HOLDING})

_NEXT_STEP = {
    TicketStatus.AWAITING_HUMAN: "waiting for a person to pick it up",
    TicketStatus.AWAITING_APPROVAL: "waiting for an approver",
    TicketStatus.AWAITING_CUSTOMER: "answered; waiting for the customer",
    TicketStatus.IN_PROGRESS: "running an approved playbook",
    TicketStatus.RESOLVED: "done",
}


class TicketSteps:
    """Set the status, message the customer, say what the workflow does next."""

    def __init__(
        self,
        ticket_id: uuid.UUID,
        state: TicketWorkflowState,
        sla: SlaTracker,
        publish: Callable[[], None],
        patches: Patches,
    ) -> None:
        """``state`` is the workflow's own (changed in place); ``publish`` refreshes its details;
        ``patches`` answers the run's patches."""
        self._ticket_id = ticket_id
        self._patches = patches
        self._state = state
        self._sla = sla
        self._publish = publish
        # Why the last message to the customer was refused, until one goes through: the
        # customer was not told, so the ticket does not wait on them.
        self._undelivered: str | None = None

    def announce(self, next_step: str) -> None:
        """Show what the workflow does next, before a long step starts."""
        self._state.next_step = next_step
        self._publish()

    async def set_status(
        self,
        status: TicketStatus,
        reason: str,
        actor: str = AUTOPILOT,
        *,
        via: DecisionChannel | None = None,
    ) -> None:
        """Record the status change, flag it for search, pause or resume the resolution clock.

        While the customer's last message was refused, nothing waits on the customer: the
        ticket stays with the person it went to. ``via``: where a staff member acted.
        """
        if status is TicketStatus.AWAITING_CUSTOMER and self._undelivered is not None:
            return
        await db_activity(
            TicketActivities.change_status,
            StatusChangeInput(
                ticket_id=self._ticket_id, status=status, actor=actor, reason=reason, via=via
            ),
            f"Set status {status.value}",
        )
        previous, self._state.status = self._state.status, status
        self._state.next_step = _NEXT_STEP.get(status, status.value)
        workflow.upsert_search_attributes([sa.TICKET_STATUS.value_set(status.value)])
        # Zendesk's "requester wait": the resolution clock stops while the customer owes us.
        if status is TicketStatus.AWAITING_CUSTOMER:
            self._sla.pause()
        elif previous is TicketStatus.AWAITING_CUSTOMER:
            self._sla.resume()

    async def hold_for_a_person(self, note: str, reason: str) -> None:
        """Tell the customer a person will answer (``note``), and send the ticket to one."""
        await self.send_text(MessageKind.HOLDING, note)
        await self.set_status(TicketStatus.AWAITING_HUMAN, reason)

    async def send_text(self, kind: MessageKind, body: str, *, confirmable: bool = True) -> None:
        """Send a fixed text (no knowledge articles) to the customer."""
        await self.send(kind, DraftReply(body=body, article_ids=[]), confirmable=confirmable)

    async def send(
        self,
        kind: MessageKind,
        draft: DraftReply,
        *,
        confirmable: bool = True,
        staff: StaffMessage | None = None,
    ) -> None:
        """Send a message to the customer; the first response stops its SLA clock.

        One the ticket's channel refused (kept as a note for staff) sends the ticket to a
        person instead. ``staff``: a staff member wrote it (their id, name and channel).
        """
        message = OutboundMessageInput(
            ticket_id=self._ticket_id,
            message_id=staff.message_id if staff is not None else workflow.uuid4(),
            kind=kind,
            body=draft.body,
            article_ids=draft.article_ids,
            confirmable=confirmable,
        )
        if staff is not None:
            message = message.model_copy(update={"author": staff.actor, "via": staff.channel})
        sent = await db_activity(
            TicketActivities.send_customer_message,
            message,
            f"Send the {kind.value.replace('_', ' ')} to the customer",
        )
        if sent.refused is not None and self._patches.patched(DELIVERY_REFUSED):
            self._undelivered = sent.refused
            if self._state.status not in (TicketStatus.AWAITING_HUMAN, TicketStatus.RESOLVED):
                await self.set_status(
                    TicketStatus.AWAITING_HUMAN,
                    f"routed to a person: the channel refused the {kind.value.replace('_', ' ')}"
                    f" ({sent.refused})",
                )
            return
        self._undelivered = None
        if sent.first_response and self._state.first_response_at is None:
            self._state.first_response_at = sent.sent_at
            await self._sla.stop(ClockKind.FIRST_RESPONSE)
        elif self._state.lifecycle.reopened_count and kind not in _NOT_AN_ANSWER:
            # A reopened ticket's new exchange: its first answer stops the restarted clock.
            await self._sla.stop(ClockKind.FIRST_RESPONSE)
