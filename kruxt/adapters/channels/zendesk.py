"""The Zendesk channel: signed webhooks in, public comments, internal notes and status out.

In: ``POST /webhooks/zendesk`` carries either Zendesk's event-subscription envelope
(``type: zen:event-type:ticket.created`` / ``...ticket.comment_added``, the ticket in
``detail``) or the classic trigger JSON the README gives admins to paste. Both are signed as
Zendesk's "Verifying webhook authenticity" page states today: base64(HMAC-SHA256(secret,
timestamp + raw body)), the timestamp in ``X-Zendesk-Webhook-Signature-Timestamp``.

Out: ``PUT /api/v2/tickets/{id}.json``, one update carrying the comment and the status it
implies (an automatic answer leaves the ticket ``pending``: the customer owes the next word).
Every comment the autopilot posts is remembered by its Zendesk id, so when it comes back as a
``comment_added`` event it is known as the autopilot's own and changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kruxt.adapters import untrusted_json
from kruxt.adapters.channels._payload import (
    BODY_MAX,
    SUBJECT_MAX,
    json_object,
    json_text,
    requester_email,
)
from kruxt.adapters.channels._remote import DeliverOnce
from kruxt.adapters.postgres.channel_events import ChannelEventLog
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.adapters.zendesk_client import ZendeskClient, ZendeskUser
from kruxt.models import channels as ch
from kruxt.models.enums import Channel, TicketStatus
from kruxt.models.records import MessageKind, OutboundMessageResult
from kruxt.models.tickets import NewMessageRequest, NewRequester, NewTicketRequest, ticket_id_for

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "RequesterUnknown",
    "ZendeskChannel",
    "sign",
]

SIGNATURE_HEADER = "x-zendesk-webhook-signature"
TIMESTAMP_HEADER = "x-zendesk-webhook-signature-timestamp"
# A signed request older (or newer) than this is a replay, whatever its signature.
REPLAY_WINDOW = timedelta(minutes=5)

_CREATED = "ticket.created"
_COMMENTED = "ticket.comment_added"
_ENVELOPE_PREFIX = "zen:event-type:"

# The Zendesk status a message leaves the ticket in: an answer waits on the customer
# ("pending"); an acknowledgement or a holding note means we still owe one ("open").
_STATUS_AFTER: Mapping[MessageKind, str] = {
    MessageKind.AUTO_REPLY: "pending",
    MessageKind.AGENT_REPLY: "pending",
    MessageKind.PLAYBOOK_UPDATE: "pending",
    MessageKind.ACKNOWLEDGEMENT: "open",
    MessageKind.HOLDING: "open",
    MessageKind.INCIDENT_UPDATE: "open",
}
# A status change the workflow delivers by itself (no message carries it).
_ZENDESK_STATUS: Mapping[TicketStatus, str] = {TicketStatus.RESOLVED: "solved"}


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """Zendesk's signature: base64(HMAC-SHA256(secret, timestamp + body))."""
    digest = hmac.new(secret, timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class RequesterUnknown(LookupError):
    """The event opens a ticket but names its requester by Zendesk id only (look them up)."""

    def __init__(self, user_id: str) -> None:
        super().__init__(f"requester {user_id} is named by id only")
        self.user_id = user_id


@dataclass(frozen=True)
class _Comment:
    id: str
    body: str
    public: bool
    author_id: str
    author_name: str


@dataclass(frozen=True)
class _Payload:
    """Either payload shape, read into the fields the autopilot uses."""

    kind: str
    event_id: str | None
    ticket: str
    subject: str
    description: str
    requester_id: str
    requester: NewRequester | None
    comment: _Comment | None


class ZendeskChannel:
    """The :class:`~kruxt.adapters.channels.base.CustomerChannel` of Zendesk.

    ``secret`` is the webhook's signing secret (empty: every request is refused);
    ``client`` the API (None in a process that only receives); ``clock`` the time the replay
    window is measured from.
    """

    channel = Channel.ZENDESK

    def __init__(
        self,
        *,
        secret: str,
        client: ZendeskClient | None,
        store: TicketStore,
        events: ChannelEventLog,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._secret = secret.encode()
        self._client = client
        self._deliver_once = DeliverOnce(self.channel, item="comment", store=store, events=events)
        self.events = events
        self._clock = clock
        self._me: str | None = None  # the API user's id, once asked

    @property
    def signed(self) -> bool:
        """The webhook secret is set: without it the webhook is off (404), never unsigned."""
        return bool(self._secret)

    async def aclose(self) -> None:
        """Close the API client's connections."""
        if self._client is not None:
            await self._client.aclose()

    # -- in ------------------------------------------------------------------------------

    def verify(self, request: ch.ChannelRequest) -> ch.ChannelIdentity:
        """Zendesk signed this body within the last five minutes (compared in constant time)."""
        presented = request.headers.get(SIGNATURE_HEADER, "")
        timestamp = request.headers.get(TIMESTAMP_HEADER, "")
        if not self._secret or not presented or not timestamp:
            raise ch.ChannelUnauthorized("unsigned")
        try:
            at = datetime.fromisoformat(timestamp)
        except ValueError as exc:
            raise ch.ChannelUnauthorized("unreadable timestamp") from exc
        if at.tzinfo is None or abs(self._clock() - at) > REPLAY_WINDOW:
            raise ch.ChannelUnauthorized("timestamp outside the replay window")
        expected = sign(self._secret, timestamp, request.body)
        if not hmac.compare_digest(presented.encode(), expected.encode()):
            raise ch.ChannelUnauthorized("bad signature")
        return ch.ChannelIdentity(channel=self.channel, caller="zendesk")

    def parse(self, request: ch.ChannelRequest) -> ch.ChannelEvent:
        """A verified body as an event; ``RequesterUnknown`` when it needs ``read``'s lookup.

        Raises:
            ValueError: the body is not an event of either shape (pydantic's errors included).
            RequesterUnknown: the event opens a ticket whose requester only has an id here.
        """
        return _event(_payload(request.body), {})

    async def read(self, request: ch.ChannelRequest) -> ch.ChannelEvent:
        """``parse``, looking up a requester the payload names by id only (event subscriptions
        carry ``requester_id``, not the address).

        Raises:
            ValueError: as ``parse``.
            DeliveryDeferred, DeliveryRefused: the lookup failed (Zendesk retries the webhook).
        """
        payload = _payload(request.body)
        try:
            event = _event(payload, {})
        except RequesterUnknown as unknown:
            if self._client is None:
                raise ch.DeliveryRefused("no Zendesk API client to look the requester up") from None
            user = await self._client.user(unknown.user_id)
            event = _event(payload, {unknown.user_id: user})
        if isinstance(event, ch.StaffComment) and await self._by_autopilot(payload):
            return ch.Ignored(channel=self.channel, reason="the autopilot's own comment")
        return event

    async def _by_autopilot(self, payload: _Payload) -> bool:
        """The comment's author is the API user the autopilot posts as.

        Its comments are also remembered by id when posted; this catches one whose event
        arrives before the post's answer did. The user is asked for once, then kept.
        """
        author = payload.comment.author_id if payload.comment else ""
        if self._client is None or not author:
            return False
        if self._me is None:
            self._me = (await self._client.user("me")).id
        return author == self._me

    # -- out -----------------------------------------------------------------------------

    async def deliver(
        self, ticket: ch.ChannelTicket, message: ch.Delivery
    ) -> OutboundMessageResult | None:
        """Post the message (public comment, internal note) or the status to the ticket;
        once per delivery, with the thread's copy (see ``DeliverOnce``)."""
        if self._client is None:
            raise ch.DeliveryRefused("ZENDESK_API_TOKEN is not configured")
        return await self._deliver_once(ticket, message, self._update)

    async def _update(self, external: str, message: ch.Delivery) -> str | None:
        assert self._client is not None
        if message.kind is ch.DeliveryKind.STATUS:
            status = _ZENDESK_STATUS.get(message.status) if message.status else None
            if status is None:
                return None  # a status Zendesk keeps by itself
            return await self._client.update_ticket(
                external, comment=None, public=False, status=status
            )
        public = message.kind is ch.DeliveryKind.PUBLIC_REPLY
        return await self._client.update_ticket(
            external,
            comment=message.body,
            public=public,
            status=_STATUS_AFTER.get(message.message_kind) if public else None,
        )


def _payload(body: bytes) -> _Payload:
    """Read either shape; every field is looked up by name, nothing in it is evaluated."""
    data = untrusted_json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("a Zendesk event is a JSON object")
    kind = data.get("type")
    if isinstance(kind, str) and kind.startswith(_ENVELOPE_PREFIX):
        return _from_envelope(data, kind.removeprefix(_ENVELOPE_PREFIX))
    if isinstance(data.get("ticket"), dict):
        return _from_trigger(data)
    raise ValueError("neither an event-subscription envelope nor the trigger JSON")


def _from_envelope(data: dict[str, Any], kind: str) -> _Payload:
    # Checked against Zendesk's "Ticket events" webhook reference
    # (developer.zendesk.com/api-reference/webhooks/event-types/ticket-events): ``detail`` is
    # the ticket (id, subject, description, requester_id, ... ids as strings) and, for
    # ``zen:event-type:ticket.comment_added``, ``event.comment`` is {id, body, is_public,
    # author: {id, is_staff, name}}. The stored copy of that page showed the detail list;
    # the comment's shape is as integrations built on it read it (dust-tt's JSON schema of
    # the event, zendesk_event_version 2022-11-06).
    detail = json_object(data, "detail")
    raw = _sub(_sub(data, "event"), "comment")
    comment = None
    if raw:
        author = _sub(raw, "author")
        comment = _Comment(
            id=json_text(raw.get("id")),
            body=json_text(raw.get("body")),
            public=raw.get("is_public") is not False,
            author_id=json_text(author.get("id")),
            author_name=json_text(author.get("name")),
        )
    event_id = json_text(data.get("id")) or None
    requester_id = json_text(detail.get("requester_id"))
    return _Payload(kind, event_id, *_ticket_of(detail), requester_id, None, comment)


def _from_trigger(data: dict[str, Any]) -> _Payload:
    # The README's trigger body. Placeholders render as text ("" when unknown): see Zendesk's
    # placeholders reference (support.zendesk.com/hc/en-us/articles/4408886858138, "Comment
    # data"; the stored copy showed its outline only). ``{{ticket.latest_comment.id}}``
    # renders the comment's id, as deployed triggers record it; a look-alike such as
    # ``{{ticket.latest_comment_id}}`` renders "", which would collapse every comment onto
    # one key, so a comment without an id is refused below.
    ticket = json_object(data, "ticket")
    who = _sub(ticket, "requester")
    raw = _sub(data, "comment")
    comment = None
    if json_text(raw.get("id")):
        comment = _Comment(
            id=json_text(raw.get("id")),
            body=json_text(raw.get("body")),
            # Placeholders render as text: "true"/"false".
            public=json_text(raw.get("public")).lower() != "false",
            author_id=json_text(raw.get("author_id")),
            author_name=json_text(raw.get("author_name")),
        )
    # A messaging user has no address ({{ticket.requester.email}} renders empty): their id
    # is enough (see requester_email); with no id either, the API is asked.
    who_id, who_email = json_text(who.get("id")), json_text(who.get("email"))
    requester = (
        NewRequester(
            id=who_id or who_email,
            email=requester_email(who_email, Channel.ZENDESK, who_id),
            name=json_text(who.get("name"))[:200],
        )
        if who_id or who_email
        else None
    )
    kind = json_text(data.get("event_type"))
    return _Payload(kind, None, *_ticket_of(ticket), who_id, requester, comment)


def _ticket_of(ticket: dict[str, Any]) -> tuple[str, str, str]:
    """The ticket's id, subject and description, named alike in both shapes."""
    return (
        json_text(ticket.get("id")),
        json_text(ticket.get("subject")),
        json_text(ticket.get("description")),
    )


def _event(payload: _Payload, known: Mapping[str, ZendeskUser]) -> ch.ChannelEvent:
    """What the payload asks of the autopilot."""
    if payload.kind not in (_CREATED, _COMMENTED) or not payload.ticket:
        return ch.Ignored(channel=Channel.ZENDESK, reason=f"event {payload.kind or 'unnamed'}")
    ticket_id = ticket_id_for(Channel.ZENDESK, payload.ticket)
    created_key = f"ticket:{payload.ticket}:created"
    keys = [f"event:{payload.event_id}"] if payload.event_id else []
    comment = payload.comment
    if payload.kind == _CREATED:
        return ch.NewTicket(
            channel=Channel.ZENDESK,
            ticket=_opening(payload, known),
            event_keys=[*keys, created_key],
        )
    if comment is None or not comment.id:
        raise ValueError("a comment_added event without its comment")
    keys.append(f"comment:{comment.id}")
    by_requester = comment.author_id == payload.requester_id and comment.public
    if not by_requester:
        # An agent, a trigger, or the autopilot itself (whose comment ids are remembered at
        # delivery, so its own come back as duplicates before they get here).
        return ch.StaffComment(
            channel=Channel.ZENDESK,
            ticket_id=ticket_id,
            message_key=f"zendesk-comment:{comment.id}",
            author=f"zendesk:{comment.author_name or comment.author_id}",
            body=comment.body or "(empty comment)",
            public=comment.public,
            event_keys=keys,
        )
    if comment.body.strip() == payload.description.strip():
        # The ticket's first comment is its description: it opens the ticket, once, whichever
        # of it and ticket.created arrives first.
        return ch.NewTicket(
            channel=Channel.ZENDESK,
            ticket=_opening(payload, known),
            event_keys=[*keys, created_key],
        )
    # A follow-up. It may arrive before its ticket's own event: it carries the opening, and
    # intake signals-with-start, so it lands on the one workflow either way (ticket.created,
    # arriving later, then finds that workflow and starts nothing).
    return ch.FollowUp(
        channel=Channel.ZENDESK,
        ticket_id=ticket_id,
        message=NewMessageRequest(
            external_id=f"zendesk-comment:{comment.id}", body=comment.body[:BODY_MAX]
        ),
        event_keys=keys,
        opening=_opening(payload, known),
    )


def _opening(payload: _Payload, known: Mapping[str, ZendeskUser]) -> NewTicketRequest:
    requester = payload.requester
    if requester is None:
        user = known.get(payload.requester_id)
        if user is None:
            raise RequesterUnknown(payload.requester_id)
        email = requester_email(user.email, Channel.ZENDESK, payload.requester_id)
        requester = NewRequester(id=payload.requester_id, email=email, name=user.name[:200])
    return NewTicketRequest(
        external_id=payload.ticket,
        requester=requester,
        subject=(payload.subject or "(no subject)")[:SUBJECT_MAX],
        body=(payload.description or payload.subject or "(no description)")[:BODY_MAX],
    )


def _sub(data: dict[str, Any], key: str) -> dict[str, Any]:
    """An optional object of the payload; {} when absent or not an object."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}
