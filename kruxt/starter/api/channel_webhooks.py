"""What every customer channel's webhook does with a request (Zendesk, Intercom).

Verify first: an unsigned, forged, tampered or stale request is refused before anything in it
is read or stored, counted and logged without its body, so a flood of them writes nothing
(neither the audit log nor the event table). Then read it, claim its event keys (a redelivery
changes nothing) and hand it on: a new ticket or a follow-up to intake, a staff or autopilot
comment to the ticket's thread as a record (never as the customer's).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import HTTPException, Request

from kruxt.adapters import metrics
from kruxt.adapters.postgres.channel_events import ChannelEventLog
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.models import channels as ch
from kruxt.models.enums import Channel
from kruxt.models.records import MessageKind, ThreadMessage
from kruxt.models.tickets import inbound_message_id_for
from kruxt.starter.intake import IntakeService, TicketClosedError

__all__ = ["ChannelWebhook", "Refusals", "WebhookChannel"]

log = logging.getLogger(__name__)


class WebhookChannel(Protocol):
    """A channel that takes webhooks: the port's ``verify``, and ``read`` (``parse`` plus any
    lookup the payload needs); ``events`` is where its keys are claimed."""

    channel: Channel
    events: ChannelEventLog

    @property
    def signed(self) -> bool:
        """A signing secret is configured (without one the webhook is off: 404)."""
        ...

    def verify(self, request: ch.ChannelRequest) -> ch.ChannelIdentity: ...

    async def read(self, request: ch.ChannelRequest) -> ch.ChannelEvent: ...


@dataclass
class Refusals:
    """Refused webhook requests, by channel and reason (thread-safe); each is also counted in
    ``kruxt_webhook_refusals_total``, which the API serves at ``GET /metrics``."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, channel: Channel, reason: str) -> int:
        """Count one refusal; the channel's total so far."""
        metrics.webhook_refused(channel.value, reason)
        with self._lock:
            self.counts[(channel.value, reason)] += 1
            return sum(n for (c, _), n in self.counts.items() if c == channel.value)

    def of(self, channel: Channel) -> int:
        """How many requests ``channel``'s webhook refused."""
        with self._lock:
            return sum(n for (c, _), n in self.counts.items() if c == channel.value)


@dataclass
class ChannelWebhook:
    """One channel's webhook endpoint, as the API serves it."""

    channel: WebhookChannel
    intake: IntakeService
    tickets: TicketStore
    refusals: Refusals

    async def accept(self, request: Request) -> dict[str, Any]:
        """Verify, read, deduplicate and hand on one request; the answer's ``status`` says
        which (``accepted``, ``duplicate``, ``ignored``, ``recorded``, ``ticket_closed``).

        Raises:
            HTTPException: 401 refused, 422 not an event, 503 a lookup the event needs failed.
        """
        name = self.channel.channel
        raw = ch.ChannelRequest(
            headers={k.lower(): v for k, v in request.headers.items()}, body=await request.body()
        )
        try:
            self.channel.verify(raw)
        except ch.ChannelUnauthorized as exc:
            total = self.refusals.count(name, str(exc))
            # The reason is ours; the body and headers are the sender's and stay out of logs.
            log.warning("%s webhook refused: %s (%d refused so far)", name.value, exc, total)
            raise HTTPException(
                status_code=401, detail={"error": "unauthorized", "detail": "invalid signature"}
            ) from exc
        try:
            event = await self.channel.read(raw)
        except ValueError as exc:  # pydantic's ValidationError included
            log.warning("%s webhook: not an event (%s)", name.value, type(exc).__name__)
            raise HTTPException(
                status_code=422, detail={"error": "invalid_event", "detail": "not an event"}
            ) from exc
        except (ch.DeliveryDeferred, ch.DeliveryRefused) as exc:
            # The channel retries a 5xx: the requester lookup may work next time.
            raise HTTPException(
                status_code=503,
                detail={"error": "channel_unavailable", "detail": str(exc)},
                headers={"Retry-After": "30"},
            ) from exc
        if isinstance(event, ch.StaffComment) and not await self._stored(event):
            # Nothing to add to yet (its ticket's workflow has not stored it). Its keys are not
            # claimed: a redelivery, once the ticket is stored, is recorded.
            event = ch.Ignored(channel=name, reason="comment on a ticket not stored yet")
        if isinstance(event, ch.Ignored):
            return {"status": "ignored", "reason": event.reason}
        ticket_id = event.ticket_id if not isinstance(event, ch.NewTicket) else None
        async with self.channel.events.claim(name, event.event_keys, ticket_id=ticket_id) as new:
            if not new:
                return {"status": "duplicate"}
            return await self._hand_on(event)

    async def _hand_on(self, event: ch.NewTicket | ch.FollowUp | ch.StaffComment) -> dict[str, Any]:
        if isinstance(event, ch.NewTicket):
            accepted = await self.intake.open_parsed(event)
            return {"status": "accepted", "ticket_id": str(accepted.ticket_id)}
        if isinstance(event, ch.FollowUp):
            try:
                taken = await self.intake.follow_up(event)
            except TicketClosedError:
                return {"status": "ticket_closed", "ticket_id": str(event.ticket_id)}
            return {
                "status": "accepted",
                "ticket_id": str(taken.ticket_id),
                "message_id": str(taken.message_id),
            }
        return await self._record(event)

    async def _record(self, comment: ch.StaffComment) -> dict[str, Any]:
        """Keep a staff member's (or a trigger's) comment in the thread, as staff wrote it."""
        message = ThreadMessage(
            ticket_id=comment.ticket_id,
            message_id=_message_id(comment.ticket_id, comment.message_key),
            kind=MessageKind.AGENT_REPLY,
            body=comment.body,
            author=comment.author,
        )
        key = f"{comment.channel.value}:{comment.message_key}"
        if comment.public:
            await self.tickets.record_outbound_message(message, idempotency_key=key)
        else:
            await self.tickets.record_internal_note(message, idempotency_key=key)
        return {"status": "recorded", "ticket_id": str(comment.ticket_id)}

    async def _stored(self, comment: ch.StaffComment) -> bool:
        """The comment's ticket is stored (its workflow has persisted it)."""
        return await self.channel.events.external_id(comment.ticket_id) is not None


def _message_id(ticket_id: uuid.UUID, key: str) -> uuid.UUID:
    """The thread id of a staff comment: stable, so the same comment is stored once."""
    return inbound_message_id_for(ticket_id, f"staff:{key}")
