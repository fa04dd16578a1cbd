"""Ticket bookkeeping: persist, record messages and triage, change status."""

from __future__ import annotations

from temporalio import activity

from kruxt.activities._data_errors import bad_data_is_final
from kruxt.activities._keys import activity_key
from kruxt.adapters.channels import ChannelRegistry
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.models.channels import ChannelTicket, Delivery, DeliveryKind
from kruxt.models.enums import Channel
from kruxt.models.records import (
    AssignInput,
    InboundMessageInput,
    OutboundMessageInput,
    OutboundMessageResult,
    PersistTicketInput,
    PersistTicketResult,
    PriorityChangeInput,
    RecordTriageInput,
    StatusChangeInput,
    StatusChangeResult,
)


class TicketActivities:
    """Writes to the support schema; each one transaction with its audit entry and KPIs.

    A write the database refuses as data (NUL, an unpaired surrogate...) fails at once as
    ``BadTicketData``; the workflow sends the ticket to a person instead of retrying forever.
    """

    def __init__(self, store: TicketStore, channels: ChannelRegistry) -> None:
        self._store = store
        self._channels = channels

    @activity.defn
    @bad_data_is_final
    async def persist_ticket(self, inp: PersistTicketInput) -> PersistTicketResult:
        """Store the ticket and its first message (a retry writes nothing twice)."""
        created = await self._store.persist_ticket(
            intake=inp.intake, workflow_id=inp.workflow_id, idempotency_key=activity_key()
        )
        return PersistTicketResult(created=created)

    @activity.defn
    @bad_data_is_final
    async def record_triage(self, inp: RecordTriageInput) -> str:
        """Record a triage run in ``support_automation_runs`` and apply it to the ticket."""
        run_id = await self._store.record_triage(
            ticket_id=inp.ticket_id, outcome=inp.outcome, idempotency_key=activity_key()
        )
        return str(run_id)

    @activity.defn
    @bad_data_is_final
    async def record_inbound_message(self, inp: InboundMessageInput) -> bool:
        """Store a customer's follow-up message."""
        return await self._store.record_inbound_message(
            ticket_id=inp.ticket_id,
            message_id=inp.message_id,
            author=inp.author,
            body=inp.body,
            idempotency_key=activity_key(),
        )

    @activity.defn
    @bad_data_is_final
    async def send_customer_message(self, inp: OutboundMessageInput) -> OutboundMessageResult:
        """Deliver a message to the customer through the ticket's own channel.

        The workflow never names the channel: it is read from the ticket here, and the
        registry picks the implementation (the in-app thread today; Zendesk, Intercom next).
        """
        # One column, not the whole thread: this runs for every message the autopilot sends.
        # A ticket not stored yet cannot happen after persist_ticket; the thread refuses it.
        channel = await self._store.channel_of(inp.ticket_id) or Channel.IN_APP
        delivered = await self._channels[channel].deliver(
            ChannelTicket(ticket_id=inp.ticket_id, channel=channel),
            Delivery(
                kind=DeliveryKind.PUBLIC_REPLY,
                message_id=inp.message_id,
                body=inp.body,
                idempotency_key=activity_key(),
                message_kind=inp.kind,
                author=inp.author,
                article_ids=inp.article_ids,
            ),
        )
        if delivered is None:
            raise TypeError(f"the {channel.value} channel returned no receipt for a public reply")
        return delivered

    @activity.defn
    @bad_data_is_final
    async def attach_draft(self, inp: OutboundMessageInput) -> None:
        """Keep a drafted reply on the ticket as an internal note for staff (not sent)."""
        await self._store.record_internal_note(
            ticket_id=inp.ticket_id,
            message_id=inp.message_id,
            kind=inp.kind,
            body=inp.body,
            article_ids=inp.article_ids,
            author=inp.author,
            idempotency_key=activity_key(),
        )

    @activity.defn
    @bad_data_is_final
    async def assign(self, inp: AssignInput) -> None:
        """Store who on the support team owns the ticket now."""
        await self._store.assign(
            ticket_id=inp.ticket_id,
            assignee=inp.assignee,
            actor=inp.actor,
            idempotency_key=activity_key(),
        )

    @activity.defn
    @bad_data_is_final
    async def change_priority(self, inp: PriorityChangeInput) -> None:
        """Store a staff member's priority change."""
        await self._store.change_priority(
            ticket_id=inp.ticket_id,
            priority=inp.priority.value,
            actor=inp.actor,
            reason=inp.reason,
            idempotency_key=activity_key(),
        )

    @activity.defn
    @bad_data_is_final
    async def change_status(self, inp: StatusChangeInput) -> StatusChangeResult:
        """Move the ticket to a new status, with an audit entry and a KPI event."""
        changed_at = await self._store.change_status(
            ticket_id=inp.ticket_id,
            status=inp.status,
            actor=inp.actor,
            reason=inp.reason,
            idempotency_key=activity_key(),
        )
        return StatusChangeResult(changed_at=changed_at)
