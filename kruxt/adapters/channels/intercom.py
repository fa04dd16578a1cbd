"""The Intercom channel: signed notifications in, admin replies, notes and closing out.

In: ``POST /webhooks/intercom`` receives the notifications of an Intercom app's webhook
subscription (``type: notification_event``, a ``topic``, the conversation in ``data.item``),
signed as Intercom documents: ``X-Hub-Signature: sha1=<hex HMAC-SHA1(client secret, raw
body)>``. There is no timestamp to bound a replay, so every notification is handled once by
its id (and each conversation part once by its own). ``conversation.user.created`` opens a
ticket, ``conversation.user.replied`` is the customer's follow-up; the part's author decides,
not the topic: a part by an admin, a bot or a team is recorded, never the customer's.

Out: ``POST /conversations/{id}/reply`` as the configured admin (``comment`` for the customer,
``note`` for the team), and ``POST /conversations/{id}/parts`` with ``close`` when the ticket
is resolved. A part by that admin that comes back as a notification is known as the
autopilot's own and changes nothing (each posted part is also remembered by its Intercom id).
"""

from __future__ import annotations

import hashlib
import hmac
import html
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
from kruxt.adapters.intercom_client import IntercomClient
from kruxt.adapters.postgres.channel_events import ChannelEventLog
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.models import channels as ch
from kruxt.models.enums import Channel, TicketStatus
from kruxt.models.records import OutboundMessageResult
from kruxt.models.tickets import NewMessageRequest, NewRequester, NewTicketRequest, ticket_id_for

__all__ = ["SIGNATURE_HEADER", "IntercomChannel", "html_body", "html_text", "sign"]

SIGNATURE_HEADER = "x-hub-signature"
_CREATED = "conversation.user.created"
_PING = "ping"
# Who writes as the customer; anything else (admin, bot, team, an unknown type) is staff.
_CUSTOMER_AUTHORS = frozenset({"user", "lead", "contact"})
# The parts that carry text: a public comment, or a note only the team sees.
_TEXT_PARTS = frozenset({"comment", "note", "open"})
_TAGS_THAT_BREAK = frozenset({"p", "br", "div", "li", "h1", "h2", "h3", "blockquote", "pre"})


def sign(secret: bytes, body: bytes) -> str:
    """Intercom's ``X-Hub-Signature``: ``sha1=`` and the hex HMAC-SHA1 of the raw body."""
    return "sha1=" + hmac.new(secret, body, hashlib.sha1).hexdigest()


def html_text(markup: str) -> str:
    """The text of an Intercom body (HTML): tags dropped, entities decoded, one pass.

    Linear in the input (ticket text is hostile): each ``<`` and ``>`` is found once with
    ``str.find``; a ``<`` with no ``>`` after it is kept as text.
    """
    pieces: list[str] = []
    at = 0
    while at < len(markup):
        lt = markup.find("<", at)
        gt = markup.find(">", lt + 1) if lt >= 0 else -1
        if lt < 0 or gt < 0:
            pieces.append(markup[at:])
            break
        pieces.append(markup[at:lt])
        name = markup[lt + 1 : min(gt, lt + 12)].strip("/ ").split(" ", 1)[0].lower()
        if name in _TAGS_THAT_BREAK:
            pieces.append("\n")
        at = gt + 1
    lines = [line.strip() for line in _unescape("".join(pieces)).split("\n")]
    kept = [line for i, line in enumerate(lines) if line or (i > 0 and lines[i - 1])]
    return "\n".join(kept).strip()


def _unescape(text: str) -> str:
    """Entities decoded; left as they are when a numeric one is too long for ``int`` (Python
    refuses more than 4300 digits rather than convert in quadratic time)."""
    try:
        return html.unescape(text)
    except ValueError:
        return text


def html_body(text: str) -> str:
    """Plain text as the HTML an Intercom part's body is: escaped (a reply can quote ticket
    text, which must not become markup), a paragraph per blank-line block, ``<br>`` within."""
    blocks = (block.strip() for block in text.replace("\r\n", "\n").split("\n\n"))
    return "".join(
        "<p>" + "<br>".join(html.escape(line, quote=False) for line in block.split("\n")) + "</p>"
        for block in blocks
        if block
    )


class IntercomChannel:
    """The :class:`~kruxt.adapters.channels.base.CustomerChannel` of Intercom.

    ``secret`` is the Intercom app's client secret (empty: every request is refused);
    ``client`` the REST API as the configured admin (None in a process that only receives).
    """

    channel = Channel.INTERCOM

    def __init__(
        self,
        *,
        secret: str,
        client: IntercomClient | None,
        store: TicketStore,
        events: ChannelEventLog,
    ) -> None:
        self._secret = secret.encode()
        self._client = client
        self._deliver = DeliverOnce(self.channel, item="part", store=store, events=events)
        self.events = events

    # -- in ------------------------------------------------------------------------------

    @property
    def signed(self) -> bool:
        """The client secret is set: without it the webhook is off (404), never unsigned."""
        return bool(self._secret)

    def verify(self, request: ch.ChannelRequest) -> ch.ChannelIdentity:
        """Intercom signed this body with the app's client secret (compared in constant time)."""
        presented = request.headers.get(SIGNATURE_HEADER, "")
        if not self._secret or not presented:
            raise ch.ChannelUnauthorized("unsigned")
        expected = sign(self._secret, request.body)
        if not hmac.compare_digest(presented.encode(), expected.encode()):
            raise ch.ChannelUnauthorized("bad signature")
        return ch.ChannelIdentity(channel=self.channel, caller="intercom")

    def parse(self, request: ch.ChannelRequest) -> ch.ChannelEvent:
        """A verified notification as an event.

        Raises:
            ValueError: the body is not a notification (pydantic's errors included).
        """
        data = untrusted_json.loads(request.body)
        if not isinstance(data, dict) or data.get("type") != "notification_event":
            raise ValueError("an Intercom notification has type notification_event")
        topic = json_text(data.get("topic"))
        if topic == _PING:  # sent when the webhook is saved; its id may be null
            return ch.Ignored(channel=self.channel, reason="ping")
        item = json_object(json_object(data, "data"), "item")
        if item.get("type") != "conversation":
            return ch.Ignored(channel=self.channel, reason=f"topic {topic or 'unnamed'}")
        notification = json_text(data.get("id"))
        if not notification:
            raise ValueError("a notification without its id")
        own_admin = self._client.admin_id if self._client is not None else ""
        return _conversation_event(topic, f"notification:{notification}", item, own_admin)

    async def read(self, request: ch.ChannelRequest) -> ch.ChannelEvent:
        """``parse``: a notification carries everything the autopilot needs, no lookup."""
        return self.parse(request)

    # -- out -----------------------------------------------------------------------------

    async def deliver(
        self, ticket: ch.ChannelTicket, message: ch.Delivery
    ) -> OutboundMessageResult | None:
        """Reply (comment or note) as the admin, or close the conversation when resolved;
        once per delivery, with the thread's copy (see ``DeliverOnce``)."""
        if self._client is None:
            raise ch.DeliveryRefused("INTERCOM_ACCESS_TOKEN is not configured")
        return await self._deliver(ticket, message, self._post)

    async def _post(self, conversation: str, message: ch.Delivery) -> str | None:
        assert self._client is not None
        if message.kind is ch.DeliveryKind.STATUS:
            if message.status is TicketStatus.RESOLVED:
                await self._client.close(conversation)
            return None  # other statuses Intercom keeps by itself (open until closed)
        note = message.kind is ch.DeliveryKind.INTERNAL_NOTE
        return await self._client.reply(conversation, body=html_body(message.body), note=note)

    async def aclose(self) -> None:
        """Close the API client's connections (bootstrap's ``close``)."""
        if self._client is not None:
            await self._client.aclose()


def _conversation_event(
    topic: str, notification_key: str, item: dict[str, Any], own_admin: str
) -> ch.ChannelEvent:
    """What a conversation notification asks of the autopilot, which posts as ``own_admin``."""
    conversation = json_text(item.get("id"))
    if not conversation:
        raise ValueError("a conversation without its id")
    source = json_object(item, "source")
    author = _author(source)
    created_key = f"conversation:{conversation}:created"
    if topic == _CREATED:
        if json_text(author.get("type")) not in _CUSTOMER_AUTHORS:
            return ch.Ignored(channel=Channel.INTERCOM, reason="a conversation an admin started")
        return ch.NewTicket(
            channel=Channel.INTERCOM,
            ticket=_opening(conversation, item, source),
            event_keys=[notification_key, created_key],
        )
    part = _last_text_part(item)
    if part is None:
        return ch.Ignored(channel=Channel.INTERCOM, reason=f"topic {topic or 'unnamed'}")
    part_id = json_text(part.get("id"))
    if not part_id:
        raise ValueError("a conversation part without its id")
    body = html_text(json_text(part.get("body")))[:BODY_MAX]
    keys = [notification_key, f"part:{part_id}"]
    ticket_id = ticket_id_for(Channel.INTERCOM, conversation)
    by = _author(part)
    note = json_text(part.get("part_type")) == "note"
    if own_admin and json_text(by.get("type")) == "admin" and json_text(by.get("id")) == own_admin:
        # Its part ids are remembered at delivery too, but Intercom can notify before the
        # post's answer came back (as Zendesk can: see ZendeskChannel._by_autopilot).
        return ch.Ignored(channel=Channel.INTERCOM, reason="the autopilot's own reply")
    if json_text(by.get("type")) not in _CUSTOMER_AUTHORS or note:
        # An admin, a bot (Fin, a workflow) or a team.
        return ch.StaffComment(
            channel=Channel.INTERCOM,
            ticket_id=ticket_id,
            message_key=f"intercom-part:{part_id}",
            author=f"intercom:{json_text(by.get('name')) or json_text(by.get('type')) or '?'}",
            body=body or "(empty part)",
            public=not note,
            event_keys=keys,
        )
    if not body:
        return ch.Ignored(channel=Channel.INTERCOM, reason="a part without text (an attachment)")
    # The customer's reply. It may arrive before its conversation's own notification: it
    # carries the opening, and intake signals-with-start, so it lands on the one workflow
    # either way (conversation.user.created, arriving later, then starts nothing). A reply to
    # a conversation an admin started opens the ticket with the reply itself.
    first = source if json_text(author.get("type")) in _CUSTOMER_AUTHORS else part
    return ch.FollowUp(
        channel=Channel.INTERCOM,
        ticket_id=ticket_id,
        message=NewMessageRequest(external_id=f"intercom-part:{part_id}", body=body),
        event_keys=keys,
        opening=_opening(conversation, item, first),
    )


def _opening(conversation: str, item: dict[str, Any], first: dict[str, Any]) -> NewTicketRequest:
    """The ticket a conversation opens: its first customer message, by the contact who wrote
    it (the conversation's ``source``, or a part)."""
    author = _author(first)
    contact_id = json_text(author.get("id"))
    if not contact_id:
        raise ValueError("a message whose author has no id")
    # A Messenger lead may have no address: see requester_email.
    email = requester_email(json_text(author.get("email")), Channel.INTERCOM, contact_id)
    body = html_text(json_text(first.get("body")))
    subject = html_text(json_text(first.get("subject"))) or body.split("\n", 1)[0][:80]
    name = json_text(author.get("name"))[:200]
    return NewTicketRequest(
        external_id=conversation,
        requester=NewRequester(id=contact_id, email=email, name=name),
        account_id=_account_id(item),
        subject=(subject or "(Intercom conversation)")[:SUBJECT_MAX],
        body=(body or subject or "(no text)")[:BODY_MAX],
    )


def _account_id(item: dict[str, Any]) -> str | None:
    """The KRUXT user id: the contact's ``external_id``, which the app sets to its own id."""
    contacts = item.get("contacts")
    listed = contacts.get("contacts") if isinstance(contacts, dict) else None
    first = listed[0] if isinstance(listed, list) and listed else None
    if not isinstance(first, dict):
        return None
    return json_text(first.get("external_id")) or None


def _last_text_part(item: dict[str, Any]) -> dict[str, Any] | None:
    """The newest part that carries text (a notification lists the parts it is about)."""
    parts = item.get("conversation_parts")
    listed = parts.get("conversation_parts") if isinstance(parts, dict) else None
    if not isinstance(listed, list):
        return None
    for part in reversed(listed):
        if isinstance(part, dict) and json_text(part.get("part_type")) in _TEXT_PARTS:
            return part
    return None


def _author(holder: dict[str, Any]) -> dict[str, Any]:
    author = holder.get("author")
    return author if isinstance(author, dict) else {}
