"""The customer channel port: the in-app channel's verify, parse and deliver, and the registry.

Delivery runs against a real Postgres; the activity is run with ``ActivityEnvironment`` and a
second channel that records what it was asked to deliver (a port double, not a mock).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from pydantic import ValidationError
from temporalio.testing import ActivityEnvironment

from kruxt.activities.tickets import TicketActivities
from kruxt.adapters.channels import ChannelRegistry, InAppChannel, UnknownChannelError
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.models import channels as ch
from kruxt.models.enums import Channel, MessageDirection
from kruxt.models.records import MessageKind, OutboundMessageInput, OutboundMessageResult
from tests.support import intake

TOKEN = "in-app-token-for-tests"

NEW_TICKET = {
    "external_id": "app-123",
    "requester": {"id": "user-1", "email": "ana@example.com", "name": "Ana Lima"},
    "account_id": "u-locked",
    "subject": "Cannot log in",
    "body": "My account is locked.",
}


def _request(
    authorization: str | None = None, body: Any = None, ticket_id: uuid.UUID | None = None
) -> ch.ChannelRequest:
    headers = {"authorization": authorization} if authorization is not None else {}
    raw = json.dumps(body).encode() if body is not None else b""
    return ch.ChannelRequest(headers=headers, body=raw, ticket_id=ticket_id)


@pytest.fixture
def store(pool: asyncpg.Pool[Any]) -> TicketStore:
    return TicketStore(pool)


@pytest.fixture
def in_app(store: TicketStore) -> InAppChannel:
    return InAppChannel(store, intake_token=TOKEN)


def test_verify_accepts_the_intake_token(in_app: InAppChannel) -> None:
    identity = in_app.verify(_request(f"Bearer {TOKEN}"))
    assert identity == ch.ChannelIdentity(channel=Channel.IN_APP, caller="app")
    # The scheme is case-insensitive, as FastAPI's HTTPBearer (the API's check) reads it.
    assert in_app.verify(_request(f"bearer {TOKEN}")).channel is Channel.IN_APP


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer wrong", TOKEN],
)
def test_verify_refuses_anything_else(in_app: InAppChannel, authorization: str | None) -> None:
    with pytest.raises(ch.ChannelUnauthorized, match="a valid bearer token is required"):
        in_app.verify(_request(authorization))


def test_without_a_configured_token_nobody_is_verified(store: TicketStore) -> None:
    with pytest.raises(ch.ChannelUnauthorized):
        InAppChannel(store).verify(_request("Bearer "))
    with pytest.raises(ch.ChannelUnauthorized):
        InAppChannel(store).verify(_request(f"Bearer {TOKEN}"))


def test_parse_a_new_ticket(in_app: InAppChannel) -> None:
    parsed = in_app.parse(_request(body=NEW_TICKET))
    assert isinstance(parsed, ch.NewTicket)
    assert parsed.channel is Channel.IN_APP
    assert parsed.ticket.external_id == "app-123"
    assert parsed.ticket.requester.email == "ana@example.com"
    assert parsed.ticket.account_id == "u-locked"
    assert parsed.ticket.subject == "Cannot log in"
    assert parsed.ticket.body == "My account is locked."


def test_parse_a_follow_up(in_app: InAppChannel) -> None:
    ticket_id = uuid.uuid4()
    parsed = in_app.parse(
        _request(body={"external_id": "m-1", "body": "  Still locked.  "}, ticket_id=ticket_id)
    )
    assert isinstance(parsed, ch.FollowUp)
    assert parsed.ticket_id == ticket_id
    assert parsed.message.external_id == "m-1"
    assert parsed.message.body == "Still locked."


@pytest.mark.parametrize(
    "body",
    [
        {**NEW_TICKET, "subject": ""},
        {**NEW_TICKET, "body": "locked\x00out"},
        {**NEW_TICKET, "extra": "field"},
        {k: v for k, v in NEW_TICKET.items() if k != "requester"},
    ],
)
def test_parse_refuses_what_the_api_refuses(in_app: InAppChannel, body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        in_app.parse(_request(body=body))


async def _stored_ticket(store: TicketStore, channel: Channel) -> uuid.UUID:
    ticket = intake(channel=channel)
    await store.persist_ticket(
        intake=ticket, workflow_id=f"ticket-{ticket.ticket_id}", idempotency_key=uuid.uuid4().hex
    )
    return ticket.ticket_id


def _delivery(kind: ch.DeliveryKind, body: str = "We unlocked your account.") -> ch.Delivery:
    return ch.Delivery(
        kind=kind,
        message_id=uuid.uuid4(),
        body=body,
        idempotency_key=f"key-{uuid.uuid4().hex}",
        message_kind=MessageKind.AGENT_REPLY,
        author="kruxt-support",
    )


async def test_deliver_a_public_reply_stores_it_in_the_thread_once(
    in_app: InAppChannel, store: TicketStore
) -> None:
    ticket_id = await _stored_ticket(store, Channel.IN_APP)
    ticket = ch.ChannelTicket(ticket_id=ticket_id, channel=Channel.IN_APP)
    message = _delivery(ch.DeliveryKind.PUBLIC_REPLY)
    first = await in_app.deliver(ticket, message)
    assert first is not None and first.first_response
    again = await in_app.deliver(ticket, message)
    assert again is not None
    view = await store.get(ticket_id)
    assert view is not None
    out = [m for m in view.messages if m.direction is MessageDirection.OUTBOUND]
    assert [(m.body, m.kind) for m in out] == [("We unlocked your account.", "agent_reply")]


async def test_deliver_a_note_and_a_status(in_app: InAppChannel, store: TicketStore) -> None:
    ticket_id = await _stored_ticket(store, Channel.IN_APP)
    ticket = ch.ChannelTicket(ticket_id=ticket_id, channel=Channel.IN_APP)
    assert await in_app.deliver(ticket, _delivery(ch.DeliveryKind.INTERNAL_NOTE, "draft")) is None
    assert await in_app.deliver(ticket, _delivery(ch.DeliveryKind.STATUS, "resolved")) is None
    view = await store.get(ticket_id)
    assert view is not None
    added = [(m.direction, m.body) for m in view.messages if m.body in {"draft", "resolved"}]
    # The note is for staff only; a status is already on the ticket row, nothing is stored.
    assert added == [(MessageDirection.INTERNAL, "draft")]
    assert view.first_response_at is None


class RecordingChannel:
    """A channel that records deliveries (as Zendesk's will send them) and stores nothing."""

    def __init__(self) -> None:
        self.delivered: list[tuple[ch.ChannelTicket, ch.Delivery]] = []

    def verify(self, request: ch.ChannelRequest) -> ch.ChannelIdentity:
        raise ch.ChannelUnauthorized("not used here")

    def parse(self, request: ch.ChannelRequest) -> ch.NewTicket | ch.FollowUp:
        raise NotImplementedError

    async def deliver(
        self, ticket: ch.ChannelTicket, message: ch.Delivery
    ) -> OutboundMessageResult | None:
        self.delivered.append((ticket, message))
        return OutboundMessageResult(sent_at=datetime.now(UTC), first_response=True)


async def test_send_customer_message_delivers_through_the_tickets_channel(
    in_app: InAppChannel, store: TicketStore
) -> None:
    zendesk = RecordingChannel()
    registry = ChannelRegistry({**dict.fromkeys(Channel, in_app), Channel.ZENDESK: zendesk})
    activities = TicketActivities(store, registry)
    env = ActivityEnvironment()

    zendesk_ticket = await _stored_ticket(store, Channel.ZENDESK)
    reply = OutboundMessageInput(
        ticket_id=zendesk_ticket,
        message_id=uuid.uuid4(),
        kind=MessageKind.AUTO_REPLY,
        body="Here is how to reset your password.",
        article_ids=["kb-1"],
    )
    result = await env.run(activities.send_customer_message, reply)
    assert result.first_response
    [(ticket, message)] = zendesk.delivered
    assert ticket == ch.ChannelTicket(ticket_id=zendesk_ticket, channel=Channel.ZENDESK)
    assert (message.kind, message.message_id, message.body) == (
        ch.DeliveryKind.PUBLIC_REPLY,
        reply.message_id,
        reply.body,
    )
    assert (message.message_kind, message.article_ids) == (MessageKind.AUTO_REPLY, ["kb-1"])
    view = await store.get(zendesk_ticket)
    assert view is not None
    assert not [m for m in view.messages if m.direction is MessageDirection.OUTBOUND]

    # An in-app ticket is still answered in its thread.
    app_ticket = await _stored_ticket(store, Channel.IN_APP)
    await env.run(
        activities.send_customer_message,
        reply.model_copy(update={"ticket_id": app_ticket, "message_id": uuid.uuid4()}),
    )
    assert len(zendesk.delivered) == 1
    app_view = await store.get(app_ticket)
    assert app_view is not None
    assert [m.body for m in app_view.messages if m.direction is MessageDirection.OUTBOUND] == [
        reply.body
    ]


def test_the_registry_needs_a_channel_for_every_channel(in_app: InAppChannel) -> None:
    with pytest.raises(UnknownChannelError, match="zendesk"):
        ChannelRegistry({c: in_app for c in Channel if c is not Channel.ZENDESK})
    registry = ChannelRegistry.thread_only(in_app)
    assert all(registry[c] is in_app for c in Channel)
