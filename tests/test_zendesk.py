"""The Zendesk channel: its signature check, both payload shapes, and delivery through the real
httpx client to the local Zendesk fake (429 Retry-After, 5xx, 4xx as Temporal retry terms).

Delivery runs in ``ActivityEnvironment`` against a real Postgres, through ``TicketActivities``
and the channel registry, as the worker runs it.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from kruxt.activities.tickets import DELIVERY_MAX_ATTEMPTS, TicketActivities
from kruxt.adapters.channels import ChannelRegistry, InAppChannel
from kruxt.adapters.channels.zendesk import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    ZendeskChannel,
    sign,
)
from kruxt.adapters.postgres.channel_events import ChannelEventLog
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.adapters.settings import ConfigurationError, Settings
from kruxt.adapters.zendesk_client import ZendeskClient
from kruxt.bootstrap import bootstrap, zendesk_client_from
from kruxt.models.channels import (
    ChannelRequest,
    ChannelUnauthorized,
    FollowUp,
    Ignored,
    NewTicket,
    StaffComment,
)
from kruxt.models.enums import Channel, MessageDirection, TicketStatus
from kruxt.models.records import MessageKind, OutboundMessageInput, StatusChangeInput
from kruxt.models.tickets import ticket_id_for
from kruxt.starter.api.channel_webhooks import ChannelWebhook, Refusals
from kruxt.starter.api.zendesk_routes import zendesk_router
from tests.fakes.zendesk_server import FakeZendeskServer
from tests.support import ZD_EMAIL, ZD_TOKEN, intake, router_client

SECRET = "dev-zendesk-signing-secret"
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def signed(
    body: dict[str, Any] | bytes, *, at: datetime = NOW, secret: str = SECRET
) -> ChannelRequest:
    """A request as Zendesk signs it (``sign`` is the documented formula, checked below)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    timestamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {SIGNATURE_HEADER: sign(secret.encode(), timestamp, raw), TIMESTAMP_HEADER: timestamp}
    return ChannelRequest(headers=headers, body=raw)


def channel(
    pool: asyncpg.Pool[Any] | None = None, client: ZendeskClient | None = None
) -> ZendeskChannel:
    store = TicketStore(pool) if pool is not None else None
    return ZendeskChannel(
        secret=SECRET,
        client=client,
        store=store,  # type: ignore[arg-type]  # verify and parse never touch the store
        events=ChannelEventLog(pool),  # type: ignore[arg-type]
        clock=lambda: NOW,
    )


# -- verify ------------------------------------------------------------------------------


def test_the_signature_is_the_documented_formula() -> None:
    # Our own vector, computed with the formula of Zendesk's current "Verifying webhook
    # authenticity" page, base64(HMAC-SHA256(secret, timestamp + body)) (checked with
    # `printf '%s%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$secret" -binary | base64`).
    # Not the vector an older copy of that page printed: that one matches body + timestamp.
    body = b'{"type":"zen:event-type:ticket.created"}'
    timestamp = "2026-11-29T12:00:00Z"
    assert sign(SECRET.encode(), timestamp, body) == "R8qZVFEhIx3c6e5mJ6iTU0FbVL6ExbXIYAA0WjmIpc4="
    request = ChannelRequest(
        headers={
            SIGNATURE_HEADER: "R8qZVFEhIx3c6e5mJ6iTU0FbVL6ExbXIYAA0WjmIpc4=",
            TIMESTAMP_HEADER: timestamp,
        },
        body=body,
    )
    assert channel().verify(request).channel is Channel.ZENDESK
    # The old, body-first order is refused.
    old_order = "jhq7baqojKEvTwzRgLfIlTjILj08Wb90XvM0JYdxxyo="
    with pytest.raises(ChannelUnauthorized):
        channel().verify(
            request.model_copy(update={"headers": {**request.headers, SIGNATURE_HEADER: old_order}})
        )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"at": NOW - timedelta(minutes=5, seconds=1)}, "window"),
        ({"at": NOW + timedelta(minutes=5, seconds=1)}, "window"),
        ({"secret": "another-secret"}, "signature"),
    ],
)
def test_stale_future_and_forged_requests_are_refused(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(ChannelUnauthorized, match=reason):
        channel().verify(signed({"type": "x"}, **change))


def test_a_tampered_body_or_missing_headers_are_refused() -> None:
    good = signed({"type": "zen:event-type:ticket.created", "detail": {"id": "1"}})
    assert channel().verify(good)
    with pytest.raises(ChannelUnauthorized):
        channel().verify(good.model_copy(update={"body": good.body.replace(b'"1"', b'"2"')}))
    for header in (SIGNATURE_HEADER, TIMESTAMP_HEADER):
        headers = {k: v for k, v in good.headers.items() if k != header}
        with pytest.raises(ChannelUnauthorized):
            channel().verify(good.model_copy(update={"headers": headers}))
    unsigned = ZendeskChannel(secret="", client=None, store=None, events=None, clock=lambda: NOW)  # type: ignore[arg-type]
    with pytest.raises(ChannelUnauthorized):
        unsigned.verify(good)


# -- parse -------------------------------------------------------------------------------


def envelope(kind: str, ticket: str = "101", **event: Any) -> dict[str, Any]:
    """An event-subscription payload as Zendesk sends it."""
    return {
        "type": f"zen:event-type:{kind}",
        "account_id": 12514403,
        "id": f"evt-{uuid.uuid4()}",
        "time": "2026-11-29T12:00:00Z",
        "zendesk_event_version": "2022-11-06",
        "subject": f"zen:ticket:{ticket}",
        "detail": {
            "id": ticket,
            "subject": "Where is my data export?",
            "description": "I requested a data export of my account last week, what is the status?",
            "requester_id": "501",
            "status": "NEW",
        },
        "event": event,
    }


def trigger(
    kind: str, ticket: str = "202", comment: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The classic trigger JSON of the README."""
    body: dict[str, Any] = {
        "event_type": kind,
        "ticket": {
            "id": ticket,
            "subject": "Cannot log in",
            "description": "My account says it is locked.",
            "requester": {"id": "502", "email": "bo@example.com", "name": "Bo Berg"},
        },
    }
    if comment is not None:
        body["comment"] = comment
    return body


def comment_event(
    body: str, *, author: str = "501", public: bool = True, cid: str = "9001"
) -> dict[str, Any]:
    return envelope(
        "ticket.comment_added",
        comment={
            "id": cid,
            "body": body,
            "is_public": public,
            "author": {"id": author, "is_staff": author != "501", "name": "Someone"},
        },
    )


def test_parse_the_trigger_json() -> None:
    created = channel().parse(signed(trigger("ticket.created")))
    assert isinstance(created, NewTicket)
    assert created.ticket.requester.email == "bo@example.com"
    assert created.ticket.external_id == "202"
    assert created.event_keys == ["ticket:202:created"]
    reply = channel().parse(
        signed(
            trigger(
                "ticket.comment_added",
                comment={"id": "77", "author_id": "502", "public": "true", "body": "Still locked."},
            )
        )
    )
    assert isinstance(reply, FollowUp)
    assert reply.ticket_id == ticket_id_for(Channel.ZENDESK, "202")
    assert reply.message.body == "Still locked." and reply.opening is not None
    assert reply.event_keys == ["comment:77"]


def test_agent_comments_are_staff_comments_and_other_events_are_ignored() -> None:
    agent = channel().parse(signed(comment_event("Looking into it", author="900")))
    assert isinstance(agent, StaffComment) and agent.author.startswith("zendesk:")
    note = channel().parse(signed(comment_event("internal", author="900", public=False)))
    assert isinstance(note, StaffComment) and not note.public
    other = channel().parse(signed(envelope("ticket.priority_changed")))
    assert isinstance(other, Ignored)


async def test_an_envelope_requester_is_looked_up(zendesk: FakeZendeskServer) -> None:
    async with zendesk_client(zendesk) as client:
        event = await channel(client=client).read(signed(envelope("ticket.created")))
    assert isinstance(event, NewTicket)
    assert (event.ticket.requester.email, event.ticket.requester.name) == (
        "ana@example.com",
        "Ana Lima",
    )
    assert event.event_keys[-1] == "ticket:101:created"


async def test_a_requester_without_an_email_address_is_taken(
    zendesk: FakeZendeskServer,
) -> None:
    # A messaging (chat) user has no address: refusing would lose the ticket (Zendesk does
    # not retry a 4xx). Their Zendesk id names them, in a domain never delivered to.
    zendesk.add_user("503", email=None, name="Chat visitor")
    body = envelope("ticket.created", ticket="105")
    body["detail"]["requester_id"] = "503"
    async with zendesk_client(zendesk) as client:
        event = await channel(client=client).read(signed(body))
    assert isinstance(event, NewTicket)
    requester = event.ticket.requester
    assert (requester.id, requester.email) == ("503", "503@no-email.zendesk.example")
    who = {"id": "504", "email": "", "name": "Chat visitor"}  # the trigger's placeholders
    created = trigger("ticket.created")
    created["ticket"]["requester"] = who
    opened = channel().parse(signed(created))
    assert isinstance(opened, NewTicket)
    assert opened.ticket.requester.email == "504@no-email.zendesk.example"


async def test_the_autopilots_own_comment_is_known_by_its_author(
    zendesk: FakeZendeskServer,
) -> None:
    # Its event may come before the post's answer (so before its id is remembered).
    own = comment_event("Your export is on its way.", author=str(zendesk.agent_id), cid="8")
    colleague = comment_event("I will call them.", author="901", cid="9")
    async with zendesk_client(zendesk) as client:
        zd = channel(client=client)
        assert isinstance(await zd.read(signed(own)), Ignored)
        assert isinstance(await zd.read(signed(colleague)), StaffComment)
    assert [r.path for r in zendesk.requests] == ["/api/v2/users/me.json"]  # asked once


def test_zendesk_settings_are_checked_before_anything_connects() -> None:
    def settings(**env: str) -> Settings:
        return Settings.model_validate(env)

    assert zendesk_client_from(settings()) is None
    with pytest.raises(ConfigurationError, match="ZENDESK_EMAIL"):
        zendesk_client_from(settings(ZENDESK_API_TOKEN="t", ZENDESK_SUBDOMAIN="acme"))
    full = settings(ZENDESK_API_TOKEN="t", ZENDESK_SUBDOMAIN="acme", ZENDESK_EMAIL="a@b.c")
    assert full.zendesk_base_url() == "https://acme.zendesk.com"
    assert zendesk_client_from(full) is not None
    assert settings(ZENDESK_API_URL="http://127.0.0.1:9/").zendesk_base_url() == (
        "http://127.0.0.1:9"
    )


async def test_bootstrap_connects_zendesk_for_the_api_and_the_worker(
    pool: asyncpg.Pool[Any],
) -> None:
    env = {"ZENDESK_WEBHOOK_SECRET": SECRET, "ZENDESK_API_URL": "http://127.0.0.1:9"}
    env |= {"ZENDESK_EMAIL": ZD_EMAIL, "ZENDESK_API_TOKEN": ZD_TOKEN}
    boot = await bootstrap(Settings.model_validate(env), client=None, pool=pool)
    try:
        assert boot.zendesk is not None and boot.zendesk.signed
        assert boot.outside.channels == {Channel.ZENDESK: boot.zendesk}
    finally:
        await boot.close()
    off = await bootstrap(Settings.model_validate({}), client=None, pool=pool)
    assert off.zendesk is None and off.outside.channels == {}


# -- deliver -----------------------------------------------------------------------------


class zendesk_client:
    """The real client pointed at the fake (closed on exit)."""

    def __init__(self, server: FakeZendeskServer) -> None:
        self.client = ZendeskClient(server.base, email=ZD_EMAIL, api_token=ZD_TOKEN)

    async def __aenter__(self) -> ZendeskClient:
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()


@dataclasses.dataclass
class Delivering:
    activities: TicketActivities
    store: TicketStore
    ticket_id: uuid.UUID


@pytest.fixture
async def delivering(
    pool: asyncpg.Pool[Any], zendesk: FakeZendeskServer
) -> AsyncIterator[Delivering]:
    store = TicketStore(pool)
    ticket = intake(channel=Channel.ZENDESK, external_id="101")
    await store.persist_ticket(
        intake=ticket, workflow_id=f"ticket-{ticket.ticket_id}", idempotency_key="p"
    )
    zendesk.add_ticket("101", requester_id="501")
    async with zendesk_client(zendesk) as client:
        zd = channel(pool, client)
        registry = ChannelRegistry.thread_only(InAppChannel(store), {Channel.ZENDESK: zd})
        yield Delivering(TicketActivities(store, registry), store, ticket.ticket_id)


def reply(ticket_id: uuid.UUID, kind: MessageKind = MessageKind.AUTO_REPLY) -> OutboundMessageInput:
    return OutboundMessageInput(
        ticket_id=ticket_id, message_id=uuid.uuid4(), kind=kind, body="Your export is on its way."
    )


async def test_a_reply_is_one_public_comment_and_pending(
    delivering: Delivering, zendesk: FakeZendeskServer
) -> None:
    env = ActivityEnvironment()
    message = reply(delivering.ticket_id)
    first = await env.run(delivering.activities.send_customer_message, message)
    assert first.first_response
    # A retry of the same activity (the same key) posts nothing more.
    await env.run(delivering.activities.send_customer_message, message)
    [comment] = zendesk.comments("101")
    assert (comment.body, comment.public) == ("Your export is on its way.", True)
    assert zendesk.status("101") == "pending"
    [put] = [r for r in zendesk.requests if r.method == "PUT"]
    assert put.json == {
        "ticket": {
            "comment": {"body": "Your export is on its way.", "public": True},
            "status": "pending",
        }
    }
    view = await delivering.store.get(delivering.ticket_id)
    assert view is not None
    assert [m.body for m in view.messages if m.direction is MessageDirection.OUTBOUND] == [
        comment.body
    ]


async def test_a_draft_is_an_internal_note_and_resolved_is_solved(
    delivering: Delivering, zendesk: FakeZendeskServer
) -> None:
    env = ActivityEnvironment()
    await env.run(
        delivering.activities.attach_draft, reply(delivering.ticket_id, MessageKind.DRAFT)
    )
    [note] = zendesk.comments("101")
    assert not note.public
    assert zendesk.status("101") == "new"  # a note for staff changes nothing for the customer
    await env.run(
        delivering.activities.change_status,
        StatusChangeInput(
            ticket_id=delivering.ticket_id,
            status=TicketStatus.RESOLVED,
            actor="lead",
            reason="done",
        ),
    )
    assert zendesk.status("101") == "solved"
    assert len(zendesk.comments("101")) == 1


async def test_429_waits_the_retry_after_and_5xx_is_bounded(
    delivering: Delivering, zendesk: FakeZendeskServer
) -> None:
    env = ActivityEnvironment()
    zendesk.fail(429, headers={"Retry-After": "7"})
    with pytest.raises(ApplicationError) as limited:
        await env.run(delivering.activities.send_customer_message, reply(delivering.ticket_id))
    assert limited.value.next_retry_delay == timedelta(seconds=7)
    assert not limited.value.non_retryable

    zendesk.fail(503)
    with pytest.raises(ApplicationError) as down:
        await env.run(delivering.activities.send_customer_message, reply(delivering.ticket_id))
    assert not down.value.non_retryable and down.value.type == "DeliveryDeferred"
    zendesk.fail(503)
    env.info = dataclasses.replace(env.info, attempt=DELIVERY_MAX_ATTEMPTS)
    with pytest.raises(ApplicationError) as last:
        await env.run(delivering.activities.send_customer_message, reply(delivering.ticket_id))
    assert last.value.non_retryable


async def test_a_refused_delivery_is_kept_for_staff_not_raised(
    delivering: Delivering, zendesk: FakeZendeskServer, pool: asyncpg.Pool[Any]
) -> None:
    # A 4xx is final (a ticket an agent closed takes no more updates): failing the activity
    # would fail the ticket's workflow. The workflow gets an ordinary outcome instead.
    env = ActivityEnvironment()
    zendesk.fail(422)
    message = reply(delivering.ticket_id)
    sent = await env.run(delivering.activities.send_customer_message, message)
    assert sent.refused == "zendesk answered 422 to PUT /api/v2/tickets/101.json"
    assert not sent.first_response  # the customer was not answered: the clock runs on
    zendesk.fail(422)
    env.info = dataclasses.replace(env.info, activity_id="draft")  # another activity's keys
    await env.run(
        delivering.activities.attach_draft, reply(delivering.ticket_id, MessageKind.DRAFT)
    )
    assert zendesk.comments("101") == []
    view = await delivering.store.get(delivering.ticket_id)
    assert view is not None
    notes = [m for m in view.messages if m.direction is MessageDirection.INTERNAL]
    assert [n.kind for n in notes] == ["auto_reply", "draft"]
    assert notes[0].body.startswith("Not delivered: zendesk refused the auto reply (zendesk")
    assert notes[0].body.endswith("reach them another way.\n\nYour export is on its way.")
    assert not [m for m in view.messages if m.direction is MessageDirection.OUTBOUND]
    async with pool.acquire() as conn:
        audited = await conn.fetch(
            "SELECT details FROM support_audit_log WHERE action = 'channel.delivery_refused' "
            "ORDER BY id"
        )
    assert [(a["details"]["channel"], a["details"]["delivery"]) for a in audited] == [
        ("zendesk", "public_reply"),
        ("zendesk", "internal_note"),
    ]


# -- the webhook -------------------------------------------------------------------------


async def test_a_staff_comment_before_its_ticket_is_recorded_when_redelivered(
    pool: asyncpg.Pool[Any],
) -> None:
    # Answered "ignored" while its ticket is not stored; its keys are not claimed then, so
    # Zendesk's (or an admin's) redelivery, once the ticket is stored, is recorded.
    store = TicketStore(pool)
    webhook = ChannelWebhook(
        channel=channel(pool),
        intake=None,  # type: ignore[arg-type]  # a staff comment never reaches intake
        tickets=store,
        refusals=Refusals(),
    )
    note = {"id": "401", "author_id": "901", "public": "false", "body": "Checking the lock."}
    request = signed(trigger("ticket.comment_added", ticket="303", comment=note))
    async with router_client(zendesk_router(lambda _: webhook), "http://api") as http:

        async def deliver() -> Any:
            r = await http.post("/webhooks/zendesk", content=request.body, headers=request.headers)
            return r.json()["status"]

        assert await deliver() == "ignored"
        ticket = intake(channel=Channel.ZENDESK, external_id="303")
        await store.persist_ticket(intake=ticket, workflow_id="ticket-303", idempotency_key="p")
        assert await deliver() == "recorded"
        assert await deliver() == "duplicate"
    view = await store.get(ticket.ticket_id)
    assert view is not None
    assert [m.body for m in view.messages if m.direction is MessageDirection.INTERNAL] == [
        "Checking the lock."
    ]
