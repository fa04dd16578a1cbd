"""What the connected channels (Zendesk, Intercom) share on the way out: post once, keep a copy.

A delivery is posted to the channel at most once: it is remembered under its idempotency key
with the id of what was posted (a comment, a conversation part), so an activity's retry after
the call went through posts nothing again, and the posted item, when it comes back as a
webhook event, is known as the autopilot's own (no reply loops). The ticket's thread keeps a
copy, so ``kruxt ticket show`` and the KPIs see what the customer was told.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from kruxt.adapters.channels.in_app import InAppChannel
from kruxt.adapters.postgres.channel_events import ChannelEventLog
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.models.channels import ChannelTicket, Delivery, DeliveryRefused
from kruxt.models.enums import Channel
from kruxt.models.records import OutboundMessageResult

__all__ = ["DeliverOnce", "Post"]

# The channel's call: (the ticket's id there, the message) -> the id of what it posted.
Post = Callable[[str, Delivery], Awaitable[str | None]]


class DeliverOnce:
    """Delivers through ``post`` once per idempotency key; ``item`` names what it posts."""

    def __init__(
        self, channel: Channel, *, item: str, store: TicketStore, events: ChannelEventLog
    ) -> None:
        self._channel = channel
        self._item = item
        # The thread's copy is stored as the in-app channel stores its messages.
        self._thread = InAppChannel(store)
        self._events = events

    async def __call__(
        self, ticket: ChannelTicket, message: Delivery, post: Post
    ) -> OutboundMessageResult | None:
        """Post ``message`` unless it was posted before; then the thread's copy.

        Raises:
            DeliveryRefused: the ticket is not stored (no id on the channel to post to).
        """
        external = await self._events.external_id(ticket.ticket_id)
        if external is None:
            raise DeliveryRefused(f"ticket {ticket.ticket_id} is not stored")
        done_key = f"delivery:{message.idempotency_key}"
        if await self._events.seen(self._channel, done_key) is None:
            posted = await post(external, message)
            keys = [done_key] + ([f"{self._item}:{posted}"] if posted else [])
            await self._events.remember(
                self._channel, keys, ticket_id=ticket.ticket_id, detail=posted
            )
        return await self._thread.deliver(ticket, message)
