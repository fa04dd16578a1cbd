"""Ticket bookkeeping: persist, record messages and triage, change status."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from kruxt.activities._data_errors import bad_data_is_final
from kruxt.activities._keys import activity_key
from kruxt.adapters import metrics
from kruxt.adapters.channels import ChannelRegistry
from kruxt.adapters.email_tokens import ConfirmLinks
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.models.channels import (
    ChannelTicket,
    Delivery,
    DeliveryDeferred,
    DeliveryKind,
    DeliveryRefused,
)
from kruxt.models.enums import Channel, TicketStatus
from kruxt.models.records import (
    AssignInput,
    InboundMessageInput,
    MessageKind,
    OutboundMessageInput,
    OutboundMessageResult,
    PersistTicketInput,
    PersistTicketResult,
    PriorityChangeInput,
    RecordTriageInput,
    StatusChangeInput,
    StatusChangeResult,
    ThreadMessage,
)

log = logging.getLogger(__name__)

# A channel that keeps answering 5xx (or 429) is given this many attempts, then the delivery
# fails for good instead of holding the ticket forever; a 429's Retry-After sets the wait.
DELIVERY_MAX_ATTEMPTS = 10
# Statuses a connected channel is told about by themselves (answers carry their own status).
_ANNOUNCED = frozenset({TicketStatus.RESOLVED})
# Answers after which the ticket waits on the customer: they end with the confirm link.
# Two checks decide it, and both stay: the kind here, and the workflow's veto
# (OutboundMessageInput.confirmable, False for a message of such a kind that leaves nothing
# solved: a rollback's update). The workflow cannot decide alone: every message it scheduled
# before the veto existed, or scheduled with the default, carries confirmable=True whatever its
# kind, and an acknowledgement retried from such a history must still go out without a link.
_CONFIRMABLE = frozenset(
    {MessageKind.AUTO_REPLY, MessageKind.PLAYBOOK_UPDATE, MessageKind.INCIDENT_UPDATE}
)
CONFIRM_PROMPT = "Did this solve it? Confirm here and we will close the ticket:"


@dataclass(frozen=True)
class TicketActivities:
    """Writes to the support schema; each one transaction with its audit entry and KPIs.

    An input's fields are the store method's arguments; the activity adds its own key.

    A write the database refuses as data (NUL, an unpaired surrogate...) fails at once as
    ``BadTicketData``; the workflow sends the ticket to a person instead of retrying forever.
    """

    store: TicketStore
    channels: ChannelRegistry
    # End answers that wait on the customer with a confirm link.
    confirm_links: ConfirmLinks | None = None

    @activity.defn
    @bad_data_is_final
    async def persist_ticket(self, inp: PersistTicketInput) -> PersistTicketResult:
        """Store the ticket and its first message (a retry writes nothing twice)."""
        created = await self.store.persist_ticket(
            intake=inp.intake, workflow_id=inp.workflow_id, idempotency_key=activity_key()
        )
        return PersistTicketResult(created=created)

    @activity.defn
    @bad_data_is_final
    async def record_triage(self, inp: RecordTriageInput) -> str:
        """Record a triage run in ``support_automation_runs`` and apply it to the ticket."""
        run_id = await self.store.record_triage(
            ticket_id=inp.ticket_id, outcome=inp.outcome, idempotency_key=activity_key()
        )
        return str(run_id)

    @activity.defn
    @bad_data_is_final
    async def record_inbound_message(self, inp: InboundMessageInput) -> bool:
        """Store a customer's follow-up message."""
        return await self.store.record_inbound_message(
            **inp.model_dump(), idempotency_key=activity_key()
        )

    @activity.defn
    @bad_data_is_final
    async def send_customer_message(self, inp: OutboundMessageInput) -> OutboundMessageResult:
        """Deliver a message to the customer through the ticket's own channel.

        The workflow never names the channel: it is read from the ticket here, and the
        registry picks the implementation (the in-app thread today; Zendesk, Intercom next).
        """
        if self.confirm_links is not None and inp.kind in _CONFIRMABLE and inp.confirmable:
            link = self.confirm_links.url(inp.ticket_id)
            inp = inp.model_copy(update={"body": f"{inp.body}\n\n{CONFIRM_PROMPT} {link}"})
        delivered = await self._deliver(inp.ticket_id, _delivery(DeliveryKind.PUBLIC_REPLY, inp))
        if delivered is None:
            raise TypeError("the ticket's channel returned no receipt for a public reply")
        return delivered

    async def _deliver(
        self, ticket_id: uuid.UUID, delivery: Delivery
    ) -> OutboundMessageResult | None:
        """Hand ``delivery`` to the ticket's channel; its errors become Temporal's retry terms.

        A refusal for good (a 4xx: a Zendesk ticket an agent closed, a deleted Intercom
        conversation) is not an error of the workflow's: retrying sends the same refusal, and
        failing would lose the ticket. It is kept instead (``_refused``) and returned as an
        ordinary outcome, so the workflow hands the ticket to a person.
        """
        # One column, not the whole thread: this runs for every message the autopilot sends.
        # A ticket not stored yet cannot happen after persist_ticket; the thread refuses it.
        channel = await self.store.channel_of(ticket_id) or Channel.IN_APP
        try:
            return await self.channels[channel].deliver(
                ChannelTicket(ticket_id=ticket_id, channel=channel), delivery
            )
        except DeliveryRefused as exc:
            return await self._refused(ticket_id, channel, delivery, str(exc))
        except DeliveryDeferred as exc:
            wait = exc.retry_after
            raise ApplicationError(
                str(exc),
                type="DeliveryDeferred",
                non_retryable=activity.info().attempt >= DELIVERY_MAX_ATTEMPTS,
                next_retry_delay=timedelta(seconds=wait) if wait is not None else None,
            ) from exc

    async def _refused(
        self, ticket_id: uuid.UUID, channel: Channel, delivery: Delivery, reason: str
    ) -> OutboundMessageResult:
        """Keep a refused delivery where staff read: a note in the thread with what was not
        delivered and why, and the audit entry ``channel.delivery_refused``.

        ``reason`` is ours (the status and the call, never the channel's body).
        """
        log.warning("ticket %s: %s refused a %s: %s", ticket_id, channel, delivery.kind, reason)
        what = f"status {delivery.status}" if delivery.status else f"{delivery.message_kind}"
        body = f"Not delivered: {channel} refused the {what.replace('_', ' ')} ({reason})."
        if delivery.kind is DeliveryKind.PUBLIC_REPLY:
            body += " The customer has not seen it: reach them another way."
        if delivery.body:
            body += f"\n\n{delivery.body}"
        note = ThreadMessage(
            ticket_id=ticket_id,
            message_id=delivery.message_id,
            kind=delivery.message_kind,
            body=body,
            author=delivery.author,
            article_ids=delivery.article_ids,
        )
        await self.store.record_internal_note(
            note,
            idempotency_key=f"{delivery.idempotency_key}:refused",
            action="channel.delivery_refused",
            details={"channel": channel.value, "delivery": delivery.kind.value, "reason": reason},
        )
        return OutboundMessageResult(
            sent_at=datetime.now(UTC), first_response=False, refused=reason
        )

    @activity.defn
    @bad_data_is_final
    async def attach_draft(self, inp: OutboundMessageInput) -> None:
        """Keep a drafted reply on the ticket as an internal note for staff (not sent).

        The ticket's channel shows it to staff only (Zendesk: a ``public: false`` comment).
        """
        await self._deliver(inp.ticket_id, _delivery(DeliveryKind.INTERNAL_NOTE, inp))

    @activity.defn
    @bad_data_is_final
    async def assign(self, inp: AssignInput) -> None:
        """Store who on the support team owns the ticket now."""
        await self.store.assign(**inp.model_dump(), idempotency_key=activity_key())

    @activity.defn
    @bad_data_is_final
    async def change_priority(self, inp: PriorityChangeInput) -> None:
        """Store a staff member's priority change."""
        await self.store.change_priority(**inp.model_dump(), idempotency_key=activity_key())

    @activity.defn
    @bad_data_is_final
    async def change_status(self, inp: StatusChangeInput) -> StatusChangeResult:
        """Move the ticket to a new status, with an audit entry and a KPI event."""
        changed_at = await self.store.change_status(
            **inp.model_dump(), idempotency_key=activity_key()
        )
        metrics.ticket_status(inp.status.value)
        if inp.status in _ANNOUNCED:
            await self._announce(inp.ticket_id, inp.status)
        return StatusChangeResult(changed_at=changed_at)

    async def _announce(self, ticket_id: uuid.UUID, status: TicketStatus) -> None:
        """Tell the ticket's channel the new status; one it refuses is ours to keep all the
        same (a Zendesk ticket an agent closed takes no more updates): staff see a note."""
        key = activity_key("status")
        note = Delivery(
            kind=DeliveryKind.STATUS,
            message_id=uuid.uuid5(uuid.NAMESPACE_URL, key),
            body="",
            idempotency_key=key,
            message_kind=MessageKind.AGENT_REPLY,
            status=status,
        )
        await self._deliver(ticket_id, note)  # a refusal is kept as a note for staff


def _delivery(kind: DeliveryKind, inp: OutboundMessageInput) -> Delivery:
    """The message of ``inp`` as the channel port takes it, keyed by this activity."""
    return Delivery(
        kind=kind,
        message_id=inp.message_id,
        body=inp.body,
        idempotency_key=activity_key(),
        message_kind=inp.kind,
        author=inp.author,
        article_ids=inp.article_ids,
        via=inp.via,
    )
