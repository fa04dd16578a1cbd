"""Intercom end to end over HTTP: signed notifications into the real API, a worker on the
Temporal dev server and Postgres, replies and closing back through ``python-intercom``'s real
client to the local Intercom fake."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.client import Client, WorkflowHandle

from kruxt.adapters.channels.intercom import IntercomChannel
from kruxt.adapters.postgres.channel_events import ChannelEventLog
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.models.enums import Channel, MessageDirection, TicketStatus
from kruxt.models.tickets import TicketOutcome, ticket_id_for
from kruxt.starter import render
from kruxt.workflows.ticket import TicketWorkflow
from tests.fakes.intercom_server import TEST_ADMIN_ID, FakeIntercomServer
from tests.support import ChannelStack, eventually, resolve, serve_channel, until_status
from tests.test_intercom import (
    ADMIN,
    CUSTOMER,
    channel,
    client_of,
    notification,
    part,
    signed,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
async def stack(
    dev_client: Client, pool: asyncpg.Pool[Any], task_queue: str, intercom: FakeIntercomServer
) -> AsyncIterator[ChannelStack]:
    async with serve_channel(
        dev_client, pool, task_queue, channel(pool, client_of(intercom))
    ) as up:
        yield up


async def post(stack: ChannelStack, body: dict[str, Any], **sign: Any) -> httpx.Response:
    request = signed(body, **sign)
    return await stack.http.post(
        "/webhooks/intercom", content=request.body, headers=request.headers
    )


def handle_of(stack: ChannelStack, conversation: str) -> WorkflowHandle[Any, TicketOutcome]:
    ticket_id = ticket_id_for(Channel.INTERCOM, conversation)
    return stack.client.get_workflow_handle_for(TicketWorkflow.run, f"ticket-{ticket_id}")


async def test_a_signed_conversation_is_answered_once_in_intercom(
    stack: ChannelStack, intercom: FakeIntercomServer
) -> None:
    intercom.open_conversation("c-101")
    created = notification("conversation.user.created", "c-101")
    r = await post(stack, created)
    assert r.status_code == 200, r.text
    ticket_id = ticket_id_for(Channel.INTERCOM, "c-101")
    assert r.json() == {"status": "accepted", "ticket_id": str(ticket_id)}

    async def answered() -> list[Any]:
        return intercom.parts("c-101")

    [answer] = await eventually(answered)
    assert (answer.part_type, answer.admin_id) == ("comment", TEST_ADMIN_ID)
    # Redelivered, or the autopilot's own reply coming back as a notification: nothing new.
    assert (await post(stack, created)).json()["status"] == "duplicate"
    echo = part(answer.id, answer.body or "", author={"type": "admin", "id": TEST_ADMIN_ID})
    echoed = notification("conversation.admin.replied", "c-101", parts=(echo,))
    # Known by its author, as Zendesk's: by its remembered id it would be a "duplicate" only
    # once the delivery had stored it, and this notification can come first.
    assert (await post(stack, echoed)).json() == {
        "status": "ignored",
        "reason": "the autopilot's own reply",
    }

    state = await until_status(handle_of(stack, "c-101"), TicketStatus.AWAITING_CUSTOMER)
    assert state.messages_received == 0
    assert len(intercom.parts("c-101")) == 1
    assert await stack.count("support_tickets") == 1


async def test_ping_is_answered(stack: ChannelStack) -> None:
    ping = {
        "type": "notification_event",
        "id": "notif_ping",
        "topic": "ping",
        "data": {"type": "notification_event_data", "item": {"type": "ping", "message": "hi"}},
    }
    r = await post(stack, ping)
    assert (r.status_code, r.json()) == (200, {"status": "ignored", "reason": "ping"})


async def test_duplicate_forged_tampered_and_unsigned_deliveries_change_nothing(
    stack: ChannelStack,
) -> None:
    body = notification("conversation.user.created", "c-201")
    forged = [await post(stack, body, secret="not-the-secret") for _ in range(25)]
    good = signed(body)
    tampered = await stack.http.post(
        "/webhooks/intercom", content=good.body.replace(b"c-201", b"c-202"), headers=good.headers
    )
    unsigned = await stack.http.post("/webhooks/intercom", json=body)
    assert {r.status_code for r in [*forged, tampered, unsigned]} == {401}
    assert stack.deps.refusals.of(Channel.INTERCOM) == 27
    for table in ("support_audit_log", "support_channel_events", "support_tickets"):
        assert await stack.count(table) == 0, table
    # The same notification twice, and again under another notification id: one ticket.
    first, again = await post(stack, body), await post(stack, body)
    other_id = await post(stack, {**body, "id": "notif_other"})
    assert [first.json()["status"], again.json()["status"]] == ["accepted", "duplicate"]
    assert other_id.json()["status"] == "duplicate"  # the conversation was created once


async def test_a_reply_before_its_conversation_lands_on_one_workflow(
    stack: ChannelStack, intercom: FakeIntercomServer
) -> None:
    intercom.open_conversation("c-301")
    early = part("401", "<p>Still no export, please help!</p>", author=CUSTOMER)
    r = await post(stack, notification("conversation.user.replied", "c-301", parts=(early,)))
    assert (r.status_code, r.json()["status"]) == (200, "accepted")
    # The conversation's own notification, later: it finds the workflow the reply started.
    created = await post(stack, notification("conversation.user.created", "c-301"))
    assert created.json()["status"] == "accepted"
    handle = handle_of(stack, "c-301")

    async def received(n: int) -> bool:
        return (await handle.query(TicketWorkflow.state)).messages_received == n

    await eventually(lambda: received(1))
    # The customer replies again: the same workflow. An admin's part is recorded only.
    again = part("402", "<p>Any news?</p>", author=CUSTOMER)
    await post(stack, notification("conversation.user.replied", "c-301", parts=(again,)))
    await eventually(lambda: received(2))
    staff = part("403", "<p>Checking the export queue.</p>", author=ADMIN, kind="note")
    recorded = await post(stack, notification("conversation.admin.noted", "c-301", parts=(staff,)))
    assert recorded.json()["status"] == "recorded"

    listed = [w async for w in stack.client.list_workflows(f'WorkflowId = "{handle.id}"')]
    assert len(listed) == 1
    view = await TicketStore(stack.pool).get(ticket_id_for(Channel.INTERCOM, "c-301"))
    assert view is not None
    inbound = [m.body for m in view.messages if m.direction is MessageDirection.INBOUND]
    assert inbound == [
        "I asked for a data export last week.\n\nWhat is the status?",
        "Still no export, please help!",
        "Any news?",
    ]
    notes = [m for m in view.messages if m.body == "Checking the export queue."]
    assert [(m.direction.value, m.author) for m in notes] == [("internal", "intercom:Sam")]
    assert (await handle.query(TicketWorkflow.state)).messages_received == 2
    # `kruxt ticket show` says where it came from and where its answers go.
    shown = render.ticket(view)
    assert "via intercom (c-301)" in shown and "to Intercom conversation c-301" in shown


async def test_resolution_closes_the_conversation_after_a_rate_limit(
    stack: ChannelStack, intercom: FakeIntercomServer
) -> None:
    intercom.open_conversation("c-501")
    # Intercom is busy for the first call: the reply waits its Retry-After and goes out once.
    intercom.fail(429, headers={"Retry-After": "1"})
    await post(stack, notification("conversation.user.created", "c-501"))
    handle = handle_of(stack, "c-501")
    await until_status(handle, TicketStatus.AWAITING_CUSTOMER)
    assert [r.status for r in intercom.requests] == [429, 200]
    await resolve(handle)
    assert intercom.state("c-501") == "closed"
    assert [p.part_type for p in intercom.parts("c-501")] == ["comment", "close"]


async def test_intercom_is_404_without_a_client_secret(
    stack: ChannelStack, pool: asyncpg.Pool[Any]
) -> None:
    body = notification("conversation.user.created", "c-601")
    stack.deps.intercom = IntercomChannel(
        secret="", client=None, store=TicketStore(pool), events=ChannelEventLog(pool)
    )
    off = await post(stack, body)
    stack.deps.intercom = None
    absent = await post(stack, body)
    assert (off.status_code, absent.status_code) == (404, 404)
    assert json.loads(off.content)["error"] == "not_configured"
    assert await stack.count("support_tickets") == 0
