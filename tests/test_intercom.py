"""Intercom as a customer channel, piece by piece: ``X-Hub-Signature``, each topic a
notification can carry, and the way out through ``python-intercom``'s real client to the local
Intercom fake, run by ``TicketActivities`` in ``ActivityEnvironment`` on a real Postgres (the
end-to-end path over HTTP is ``test_intercom_e2e``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from kruxt.activities.tickets import TicketActivities
from kruxt.adapters.channels import ChannelRegistry, InAppChannel
from kruxt.adapters.channels.intercom import (
    SIGNATURE_HEADER,
    IntercomChannel,
    html_body,
    html_text,
    sign,
)
from kruxt.adapters.intercom_client import IntercomClient, retry_after
from kruxt.adapters.postgres.channel_events import ChannelEventLog
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.adapters.settings import ConfigurationError, Settings
from kruxt.bootstrap import bootstrap, intercom_client_from, intercom_from
from kruxt.models import channels as ch
from kruxt.models.enums import Channel, MessageDirection, TicketStatus
from kruxt.models.records import MessageKind, StatusChangeInput
from kruxt.models.tickets import ticket_id_for
from kruxt.starter.api.main import build_deps
from kruxt.starter.dev import DevStack
from tests.fakes.intercom_server import TEST_ADMIN_ID, TEST_TOKEN, FakeIntercomServer
from tests.support import intake, refusing_port
from tests.test_bootstrap import settings_of
from tests.test_zendesk import Delivering, reply

SECRET = "dev-intercom-client-secret"
CUSTOMER = {"type": "user", "id": "6f1a2b", "name": "Ana Lima", "email": "ana@example.com"}
ADMIN = {"type": "admin", "id": "814", "name": "Sam", "email": "sam@kruxt.app"}


def signed(body: dict[str, Any] | bytes, *, secret: str = SECRET) -> ch.ChannelRequest:
    """A request as Intercom signs it (``sign`` is the documented formula, checked below)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ch.ChannelRequest(headers={SIGNATURE_HEADER: sign(secret.encode(), raw)}, body=raw)


def part(pid: str, body: str, *, author: dict[str, Any], kind: str = "comment") -> dict[str, Any]:
    """A conversation part as notifications list them."""
    return {
        "type": "conversation_part",
        "id": pid,
        "part_type": kind,
        "body": body,
        "created_at": 1764417600,
        "author": author,
    }


def notification(
    topic: str,
    conversation: str = "c-101",
    *,
    parts: tuple[dict[str, Any], ...] = (),
    nid: str | None = None,
    body: str = "<p>I asked for a data export last week.</p><p>What is the status?</p>",
) -> dict[str, Any]:
    """A notification of an Intercom app's webhook, with the conversation as ``data.item``."""
    item = {
        "type": "conversation",
        "id": conversation,
        "created_at": 1764417600,
        "source": {
            "type": "conversation",
            "id": "9001",
            "delivered_as": "customer_initiated",
            "subject": "",
            "body": body,
            "author": CUSTOMER,
        },
        "contacts": {
            "type": "contact.list",
            "contacts": [{"type": "contact", "id": CUSTOMER["id"], "external_id": "u-export"}],
        },
        "conversation_parts": {
            "type": "conversation_part.list",
            "conversation_parts": list(parts),
            "total_count": len(parts),
        },
    }
    return {
        "type": "notification_event",
        "app_id": "a86dr8yl",
        "id": nid or f"notif_{uuid.uuid4()}",
        "topic": topic,
        "created_at": 1764417600,
        "data": {"type": "notification_event_data", "item": item},
    }


def client_of(server: FakeIntercomServer) -> IntercomClient:
    """The real client, pointed at the fake, as the test admin."""
    return IntercomClient(server.base, access_token=TEST_TOKEN, admin_id=TEST_ADMIN_ID)


def channel(pool: asyncpg.Pool[Any] | None = None, client: IntercomClient | None = None) -> Any:
    return IntercomChannel(
        secret=SECRET,
        client=client,
        store=TicketStore(pool),  # type: ignore[arg-type]  # verify and parse never touch it
        events=ChannelEventLog(pool),  # type: ignore[arg-type]
    )


# -- verify ------------------------------------------------------------------------------


def test_the_signature_is_the_documented_formula() -> None:
    # Intercom documents "sha1=" + the hex HMAC-SHA1 of the raw body keyed by the app's
    # client secret. Its own example ("sha1=21ff2e14...") does not give the secret, so it
    # cannot be a vector: we use RFC 2202's HMAC-SHA1 test case 2 (key "Jefe"), which any
    # implementation of the formula must reproduce, and our own vector, computed with
    # `printf '%s' "$body" | openssl dgst -sha1 -hmac "$secret"`.
    rfc2202 = sign(b"Jefe", b"what do ya want for nothing?")
    assert rfc2202 == "sha1=effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
    ours = sign(SECRET.encode(), b'{"type":"notification_event","topic":"ping"}')
    assert ours == "sha1=5f128df4d5b1887a7a4cefab587ae263d6a5b54c"
    jefe = IntercomChannel(secret="Jefe", client=None, store=None, events=None)  # type: ignore[arg-type]
    request = ch.ChannelRequest(
        headers={SIGNATURE_HEADER: rfc2202}, body=b"what do ya want for nothing?"
    )
    assert jefe.verify(request).channel is Channel.INTERCOM


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {SIGNATURE_HEADER: ""},
        {SIGNATURE_HEADER: "sha1=" + "0" * 40},
        {SIGNATURE_HEADER: signed(b"{}").headers[SIGNATURE_HEADER].upper()},
        {SIGNATURE_HEADER: signed(b"{}").headers[SIGNATURE_HEADER].removeprefix("sha1=")},
        {SIGNATURE_HEADER: "sha256=" + signed(b"{}").headers[SIGNATURE_HEADER][5:]},
        signed(b"{}", secret="another-secret").headers,
    ],
)
def test_forged_and_unsigned_requests_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(ch.ChannelUnauthorized):
        channel().verify(ch.ChannelRequest(headers=headers, body=b"{}"))


def test_a_tampered_body_and_an_unset_secret_are_refused() -> None:
    good = signed(notification("conversation.user.created"))
    assert channel().verify(good).caller == "intercom"
    tampered = good.model_copy(update={"body": good.body.replace(b"c-101", b"c-102")})
    with pytest.raises(ch.ChannelUnauthorized, match="bad signature"):
        channel().verify(tampered)
    off = IntercomChannel(secret="", client=None, store=None, events=None)  # type: ignore[arg-type]
    assert not off.signed
    with pytest.raises(ch.ChannelUnauthorized, match="unsigned"):
        off.verify(signed(notification("ping"), secret=""))


# -- parse -------------------------------------------------------------------------------


def test_a_created_conversation_opens_a_ticket() -> None:
    event = channel().parse(signed(notification("conversation.user.created", nid="notif_1")))
    assert isinstance(event, ch.NewTicket)
    assert event.ticket.external_id == "c-101"
    assert event.ticket.requester.email == "ana@example.com"
    assert event.ticket.account_id == "u-export"  # the contact's external_id: the app's user
    assert event.ticket.body == "I asked for a data export last week.\n\nWhat is the status?"
    assert event.ticket.subject == "I asked for a data export last week."
    assert event.event_keys == ["notification:notif_1", "conversation:c-101:created"]


def test_a_contact_without_an_email_address_opens_a_ticket() -> None:
    # A Messenger lead may have no address; the contact id names them, never delivered to.
    lead = {"type": "lead", "id": "5f1a9c", "name": ""}
    body = notification("conversation.user.created")
    body["data"]["item"]["source"]["author"] = lead
    event = channel().parse(signed(body))
    assert isinstance(event, ch.NewTicket)
    requester = event.ticket.requester
    assert (requester.id, requester.email) == ("5f1a9c", "5f1a9c@no-email.intercom.example")


def test_a_user_reply_is_a_follow_up_that_can_open_its_ticket() -> None:
    reply = part("77", "<p>Still nothing &amp; no mail</p>", author=CUSTOMER)
    event = channel().parse(signed(notification("conversation.user.replied", parts=(reply,))))
    assert isinstance(event, ch.FollowUp)
    assert event.ticket_id == ticket_id_for(Channel.INTERCOM, "c-101")
    assert (event.message.external_id, event.message.body) == (
        "intercom-part:77",
        "Still nothing & no mail",
    )
    assert event.opening is not None and event.opening.external_id == "c-101"
    assert "part:77" in event.event_keys


@pytest.mark.parametrize(
    ("author", "kind", "public"),
    [
        (ADMIN, "comment", True),
        (ADMIN, "note", False),
        ({"type": "bot", "id": "1", "name": "Fin"}, "comment", True),
        ({"type": "team", "id": "5"}, "comment", True),
    ],
)
def test_admin_bot_and_team_parts_are_staff_comments(
    author: dict[str, Any], kind: str, public: bool
) -> None:
    # Whatever the topic says: the part's author decides.
    staff = part("78", "<p>Looking into it</p>", author=author, kind=kind)
    for topic in ("conversation.user.replied", "conversation.admin.replied"):
        event = channel().parse(signed(notification(topic, parts=(staff,))))
        assert isinstance(event, ch.StaffComment), topic
        assert (event.body, event.public, event.message_key) == (
            "Looking into it",
            public,
            "intercom-part:78",
        )


async def test_a_part_by_the_autopilots_admin_is_its_own_before_any_delivery_stored_it(
    intercom: FakeIntercomServer,
) -> None:
    """Intercom may notify of the autopilot's reply before the reply's answer came back (and
    its id was remembered): the admin it posts as tells it apart from staff, comment or note.
    Another admin's part is still a staff comment."""
    client = client_of(intercom)
    try:
        own = {"type": "admin", "id": TEST_ADMIN_ID, "name": "KRUXT"}
        for kind in ("comment", "note"):
            echo = part("79", "<p>Your export is on its way.</p>", author=own, kind=kind)
            body = signed(notification("conversation.admin.replied", parts=(echo,)))
            event = channel(client=client).parse(body)
            assert event == ch.Ignored(channel=Channel.INTERCOM, reason="the autopilot's own reply")
            # Without the API client (a receive-only process) it cannot know its admin.
            assert isinstance(channel().parse(body), ch.StaffComment)
        staff = part("80", "<p>On it</p>", author=ADMIN)
        body = signed(notification("conversation.admin.replied", parts=(staff,)))
        assert isinstance(channel(client=client).parse(body), ch.StaffComment)
    finally:
        await client.aclose()


def test_ping_and_other_topics_are_ignored() -> None:
    ping = {
        "type": "notification_event",
        "id": None,  # Intercom's ping may carry no notification id
        "topic": "ping",
        "data": {"type": "notification_event_data", "item": {"type": "ping", "message": "hi"}},
    }
    assert channel().parse(signed(ping)) == ch.Ignored(channel=Channel.INTERCOM, reason="ping")
    closed = part("79", "", author=ADMIN, kind="close")
    event = channel().parse(signed(notification("conversation.admin.closed", parts=(closed,))))
    assert isinstance(event, ch.Ignored)
    contact = {**ping, "topic": "contact.user.created", "data": {"item": {"type": "contact"}}}
    assert isinstance(channel().parse(signed(contact)), ch.Ignored)


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'{"type": "other", "id": "1", "topic": "ping"}',
        json.dumps({**notification("conversation.user.created"), "id": None}).encode(),
    ],
)
def test_what_is_not_a_notification_is_a_value_error(body: bytes) -> None:
    with pytest.raises(ValueError, match="notification"):
        channel().parse(signed(body))


def test_a_reply_is_escaped_html_and_reads_back_as_its_text() -> None:
    text = "Hi Ana,\n\nTry this, it's quick:\n1. <b>Log out</b> & in\n2. Wait"
    body = html_body(text)
    assert body == (
        "<p>Hi Ana,</p>"
        "<p>Try this, it's quick:<br>1. &lt;b&gt;Log out&lt;/b&gt; &amp; in<br>2. Wait</p>"
    )
    assert html_text(body) == text


def test_html_text_is_linear_and_keeps_unclosed_brackets() -> None:
    assert html_text("<p>a &lt;b&gt;</p><p>c<br>d</p>") == "a <b>\n\nc\nd"
    assert html_text("2 < 3 and no tag") == "2 < 3 and no tag"
    # Hostile shapes: every "<" opens a tag that never closes, or thousands of empty tags.
    assert html_text("<" * 65_536) == "<" * 65_536
    assert html_text("<p>" * 20_000 + "x") == "x"
    huge = "&#" + "9" * 10_000 + ";"  # int() refuses it: the text stays as written
    assert html_text(f"<p>{huge}</p>") == huge


# -- deliver -----------------------------------------------------------------------------


@pytest.fixture
async def delivering(
    pool: asyncpg.Pool[Any], intercom: FakeIntercomServer
) -> AsyncIterator[Delivering]:
    """A stored Intercom ticket (conversation ``c-101``) and the activities that answer it."""
    intercom.open_conversation("c-101")
    client = client_of(intercom)
    store = TicketStore(pool)
    connected = {Channel.INTERCOM: channel(pool, client)}
    activities = TicketActivities(
        store, ChannelRegistry.thread_only(InAppChannel(store), connected)
    )
    ticket = intake(channel=Channel.INTERCOM, external_id="c-101")
    await store.persist_ticket(intake=ticket, workflow_id="ticket-c-101", idempotency_key="p")
    yield Delivering(activities, store, ticket.ticket_id)
    await client.aclose()


async def test_a_reply_is_one_admin_comment(
    delivering: Delivering, intercom: FakeIntercomServer
) -> None:
    send, message = delivering.activities.send_customer_message, reply(delivering.ticket_id)
    # The second run is a retry of the same activity (the same key): it posts nothing more.
    receipts = [await ActivityEnvironment().run(send, message) for _ in range(2)]
    assert receipts[0].first_response
    [comment] = intercom.parts("c-101")
    assert (comment.part_type, comment.body, comment.admin_id) == (
        "comment",
        "<p>Your export is on its way.</p>",
        TEST_ADMIN_ID,
    )
    [sent] = intercom.requests
    assert sent.path == "/conversations/c-101/reply"
    assert sent.json == {
        "message_type": "comment",
        "type": "admin",
        "admin_id": TEST_ADMIN_ID,
        "body": "<p>Your export is on its way.</p>",
    }
    assert sent.headers["authorization"] == f"Bearer {TEST_TOKEN}"
    assert sent.headers["intercom-version"] == "2.11"
    view = await delivering.store.get(delivering.ticket_id)
    assert view is not None
    outbound = [m.body for m in view.messages if m.direction is MessageDirection.OUTBOUND]
    assert outbound == ["Your export is on its way."]  # the thread keeps the text


async def test_a_draft_is_a_note_and_resolved_closes_the_conversation(
    delivering: Delivering, intercom: FakeIntercomServer
) -> None:
    draft = reply(delivering.ticket_id, MessageKind.DRAFT)
    env = ActivityEnvironment()
    await env.run(delivering.activities.attach_draft, draft)
    assert [p.part_type for p in intercom.parts("c-101")] == ["note"]
    assert intercom.state("c-101") == "open"  # a note for the team changes nothing
    resolved = StatusChangeInput(
        ticket_id=delivering.ticket_id, status=TicketStatus.RESOLVED, actor="lead", reason="ok"
    )
    await env.run(delivering.activities.change_status, resolved)
    assert intercom.state("c-101") == "closed"
    [_, close] = intercom.requests
    assert (close.path, close.json["message_type"], close.json["type"]) == (
        "/conversations/c-101/parts",
        "close",
        "admin",
    )


@pytest.mark.parametrize(
    ("status", "headers", "wait"),
    [(429, {"Retry-After": "7"}, 7.0), (429, {}, None), (500, {}, None), (503, {}, None)],
)
async def test_a_busy_intercom_defers_with_its_wait(
    intercom: FakeIntercomServer, status: int, headers: dict[str, str], wait: float | None
) -> None:
    intercom.open_conversation("c-7")
    intercom.fail(status, headers=headers)
    client = client_of(intercom)
    with pytest.raises(ch.DeliveryDeferred) as deferred:
        await client.reply("c-7", body="hello", note=False)
    assert deferred.value.retry_after == wait
    # Deferred, not refused: the next attempt gets through and posts once.
    assert await client.reply("c-7", body="hello", note=False) is not None
    assert [p.body for p in intercom.parts("c-7")] == ["hello"]
    await client.aclose()


@pytest.mark.parametrize(
    ("token", "admin", "conversation"),
    [
        ("wrong-token", TEST_ADMIN_ID, "c-7"),
        (TEST_TOKEN, "404", "c-7"),
        (TEST_TOKEN, TEST_ADMIN_ID, "c-8"),
    ],
)
async def test_what_intercom_refuses_is_refused_for_good(
    intercom: FakeIntercomServer, token: str, admin: str, conversation: str
) -> None:
    intercom.open_conversation("c-7")
    client = IntercomClient(intercom.base, access_token=token, admin_id=admin)
    with pytest.raises(ch.DeliveryRefused, match=r"intercom answered 4\d\d to reply"):
        await client.reply(conversation, body="hello", note=False)
    with pytest.raises(ch.DeliveryRefused):
        await client.close(conversation)
    assert intercom.parts("c-7") == []
    await client.aclose()


async def test_an_unreachable_intercom_defers() -> None:
    client = IntercomClient(
        f"http://127.0.0.1:{refusing_port()}", access_token=TEST_TOKEN, admin_id=TEST_ADMIN_ID
    )
    with pytest.raises(ch.DeliveryDeferred, match="unreachable"):
        await client.close("c-7")
    await client.aclose()


def test_retry_after_reads_seconds_then_the_rate_limit_reset() -> None:
    assert retry_after({"Retry-After": "3"}) == 3.0
    assert retry_after({"X-RateLimit-Reset": "1000"}, now=990.0) == 10.0
    assert retry_after({"retry-after": "soon", "x-ratelimit-reset": "²"}) is None


# -- configuration -----------------------------------------------------------------------


def test_the_channel_is_off_until_configured_and_needs_its_admin(
    pool: asyncpg.Pool[Any],
) -> None:
    assert intercom_from(Settings(), pool, None) is None
    with pytest.raises(ConfigurationError, match="INTERCOM_ADMIN_ID"):
        intercom_client_from(Settings(INTERCOM_ACCESS_TOKEN="tok"))
    # A secret alone: the webhook takes notifications, nothing is posted (no token).
    receiving = intercom_from(Settings(INTERCOM_CLIENT_SECRET=SECRET), pool, None)
    assert receiving is not None and receiving.signed
    # A token alone: replies go out, the webhook is off (404), never unsigned.
    settings = Settings(INTERCOM_ACCESS_TOKEN="tok", INTERCOM_ADMIN_ID=TEST_ADMIN_ID)
    sending = intercom_from(settings, pool, intercom_client_from(settings))
    assert sending is not None and not sending.signed


async def test_the_composition_root_connects_intercom(
    pool: asyncpg.Pool[Any], dev_client: Client, tmp_path: Path
) -> None:
    """``kruxt worker`` delivers through the channel ``kruxt api`` takes webhooks for."""
    settings = settings_of(
        tmp_path,
        KRUXT_INTAKE_TOKEN="intake",
        INTERCOM_CLIENT_SECRET=SECRET,
        INTERCOM_ACCESS_TOKEN=TEST_TOKEN,
        INTERCOM_ADMIN_ID=TEST_ADMIN_ID,
    )
    worker = await bootstrap(settings, worker=True, client=dev_client, pool=pool)
    deps, api = await build_deps(settings, client=dev_client, pool=pool)
    try:
        assert worker.intercom is not None and worker.intercom.signed
        assert worker.outside.channels == {Channel.INTERCOM: worker.intercom}
        assert deps.intercom is api.intercom and api.intercom is not None
    finally:
        await worker.close()
        await api.close()


def test_kruxt_dev_prints_the_webhook_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for secret, state in ((None, "(set INTERCOM_CLIENT_SECRET)"), (SECRET, "(on)")):
        settings = Settings(KRUXT_HOME=str(tmp_path), INTERCOM_CLIENT_SECRET=secret)
        DevStack(settings)._banner("postgresql:///kruxt", "127.0.0.1:7233", None, "token")
        line = f"Intercom       http://127.0.0.1:8000/webhooks/intercom  {state}"
        assert line in capsys.readouterr().out
