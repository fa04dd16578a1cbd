"""Zendesk end to end over HTTP: signed webhooks into the real API, a worker on the Temporal
dev server and Postgres, answers back through the real client to the local Zendesk fake."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from kruxt.adapters.channels.zendesk import ZendeskChannel
from kruxt.adapters.postgres.channel_events import ChannelEventLog
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.adapters.zendesk_client import ZendeskClient
from kruxt.models.enums import Channel, TicketStatus
from kruxt.models.tickets import RoutingPolicy, StaffResolve, ticket_id_for
from kruxt.starter import render
from kruxt.starter.intake import IntakeService
from kruxt.workflows.ticket import TicketWorkflow
from tests.fakes.zendesk_server import FakeZendeskServer
from tests.support import (
    ZD_EMAIL,
    ZD_TOKEN,
    ChannelStack,
    eventually,
    serve_channel,
    state_where,
    until_status,
)
from tests.test_zendesk import SECRET, comment_event, envelope, signed, trigger

pytestmark = pytest.mark.e2e

WINDOW = RoutingPolicy(reopen_window_seconds=6)


@pytest.fixture
async def stack(
    dev_client: Client, pool: asyncpg.Pool[Any], task_queue: str, zendesk: FakeZendeskServer
) -> AsyncIterator[ChannelStack]:
    api = ZendeskClient(zendesk.base, email=ZD_EMAIL, api_token=ZD_TOKEN)
    channel = ZendeskChannel(
        secret=SECRET, client=api, store=TicketStore(pool), events=ChannelEventLog(pool)
    )
    async with serve_channel(dev_client, pool, task_queue, channel) as served:
        yield served
    await api.aclose()


async def post(stack: ChannelStack, body: dict[str, Any], **sign: Any) -> httpx.Response:
    request = signed(body, at=sign.pop("at", datetime.now(UTC)), **sign)
    return await stack.http.post("/webhooks/zendesk", content=request.body, headers=request.headers)


async def test_a_signed_ticket_is_answered_once_in_zendesk(
    stack: ChannelStack, zendesk: FakeZendeskServer
) -> None:
    zendesk.add_ticket("101", requester_id="501")
    created = envelope("ticket.created")
    r = await post(stack, created)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted"
    ticket_id = ticket_id_for(Channel.ZENDESK, "101")
    assert r.json()["ticket_id"] == str(ticket_id)

    [answer] = await eventually(lambda: _async(zendesk.comments("101")))
    assert answer.public and zendesk.status("101") == "pending"
    # Redelivered, or arriving as its opening comment, or the autopilot's own comment coming
    # back: nothing new.
    assert (await post(stack, created)).json()["status"] == "duplicate"
    opening = comment_event(created["detail"]["description"], cid="1")
    assert (await post(stack, opening)).json()["status"] == "duplicate"
    echo = comment_event(answer.body, author=str(zendesk.agent_id), cid=str(answer.id))
    assert (await post(stack, echo)).json()["status"] == "ignored"

    handle = stack.client.get_workflow_handle_for(TicketWorkflow.run, f"ticket-{ticket_id}")
    state = await handle.query(TicketWorkflow.state)
    assert state.status.value == "awaiting_customer" and state.messages_received == 0
    assert len(zendesk.comments("101")) == 1
    assert await stack.count("support_tickets") == 1


async def test_an_answer_zendesk_refuses_goes_to_a_person_not_lost(
    stack: ChannelStack, zendesk: FakeZendeskServer
) -> None:
    # An agent closed the ticket in Zendesk: the update with the answer is refused (422).
    zendesk.add_ticket("111", requester_id="502")
    zendesk.fail(422)
    created = trigger("ticket.created", ticket="111")  # no requester lookup: one PUT, refused
    question = envelope("ticket.created")["detail"]  # one the knowledge base answers
    created["ticket"] |= {k: question[k] for k in ("subject", "description")}
    r = await post(stack, created)
    assert r.json()["status"] == "accepted", r.text
    ticket_id = ticket_id_for(Channel.ZENDESK, "111")
    handle = stack.client.get_workflow_handle_for(TicketWorkflow.run, f"ticket-{ticket_id}")
    state = await until_status(handle, TicketStatus.AWAITING_HUMAN)
    assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
    assert zendesk.comments("111") == [] and state.first_response_at is None
    view = await TicketStore(stack.pool).get(ticket_id)
    assert view is not None and view.status is TicketStatus.AWAITING_HUMAN
    [note] = [m for m in view.messages if m.direction.value == "internal"]
    assert note.body.startswith("Not delivered: zendesk refused the auto reply (zendesk answered")
    async with stack.pool.acquire() as conn:
        reasons = await conn.fetch(
            "SELECT action, details->>'reason' AS reason FROM support_audit_log "
            "WHERE ticket_id = $1 AND action IN ('channel.delivery_refused', "
            "'ticket.status_changed') ORDER BY id",
            ticket_id,
        )
    # Refused, then with a person; never "awaiting the customer", who was not told anything.
    assert [r["action"] for r in reasons] == ["channel.delivery_refused", "ticket.status_changed"]
    assert reasons[1]["reason"].startswith("routed to a person: the channel refused the auto")


async def test_forged_tampered_stale_and_unsigned_requests_change_nothing(
    stack: ChannelStack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="kruxt")
    body = envelope("ticket.created")
    forged = [await post(stack, body, secret="not-the-secret") for _ in range(25)]
    stale = await post(stack, body, at=datetime.now(UTC) - timedelta(minutes=6))
    good = signed(body, at=datetime.now(UTC))
    tampered = await stack.http.post(
        "/webhooks/zendesk", content=good.body.replace(b"101", b"102"), headers=good.headers
    )
    unsigned = await stack.http.post("/webhooks/zendesk", json=body)
    assert {r.status_code for r in [*forged, stale, tampered, unsigned]} == {401}
    assert stack.deps.refusals.of(Channel.ZENDESK) == 28
    # Logged, counted, and without the sender's body.
    logged = [r.getMessage() for r in caplog.records if "webhook refused" in r.getMessage()]
    assert len(logged) == 28 and "(28 refused so far)" in logged[-1]
    assert not any(body["detail"]["description"] in m for m in caplog.messages)
    for table in ("support_audit_log", "support_channel_events", "support_tickets"):
        assert await stack.count(table) == 0, table


async def test_a_comment_before_its_ticket_lands_on_one_workflow(
    stack: ChannelStack, zendesk: FakeZendeskServer
) -> None:
    zendesk.add_ticket("202", requester_id="502")
    first = {"id": "301", "author_id": "502", "public": "true", "body": "Still locked, help!"}
    r = await post(stack, trigger("ticket.comment_added", comment=first))
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    # The ticket's own event, later: it finds the workflow the comment started.
    assert (await post(stack, trigger("ticket.created"))).json()["status"] == "accepted"
    ticket_id = ticket_id_for(Channel.ZENDESK, "202")
    handle = stack.client.get_workflow_handle_for(TicketWorkflow.run, f"ticket-{ticket_id}")

    async def received(n: int) -> bool:
        return (await handle.query(TicketWorkflow.state)).messages_received == n

    await eventually(lambda: received(1))
    # The requester replies again: the same workflow. An agent's comment is recorded only.
    again = {"id": "302", "author_id": "502", "public": "true", "body": "Any news?"}
    assert (await post(stack, trigger("ticket.comment_added", comment=again))).status_code == 200
    await eventually(lambda: received(2))
    agent = {"id": "303", "author_id": "901", "public": "false", "body": "Checking the lock."}
    recorded = await post(stack, trigger("ticket.comment_added", comment=agent))
    assert recorded.json()["status"] == "recorded"

    runs = [w async for w in stack.client.list_workflows(f'WorkflowId = "ticket-{ticket_id}"')]
    assert len(runs) == 1
    view = await TicketStore(stack.pool).get(ticket_id)
    assert view is not None
    inbound = [m.body for m in view.messages if m.direction.value == "inbound"]
    assert inbound == ["My account says it is locked.", "Still locked, help!", "Any news?"]
    notes = [m for m in view.messages if m.body == "Checking the lock."]
    assert [(m.direction.value, m.kind) for m in notes] == [("internal", "agent_reply")]
    assert (await handle.query(TicketWorkflow.state)).messages_received == 2
    # `kruxt ticket show` says where it came from and where its answers go.
    shown = render.ticket(view).splitlines()
    assert "via zendesk (202)" in shown[2]
    assert shown[3].startswith("Replies  to Zendesk ticket #202")


async def test_zendesk_is_404_without_a_webhook_secret(
    stack: ChannelStack, pool: asyncpg.Pool[Any]
) -> None:
    stack.deps.zendesk = ZendeskChannel(
        secret="", client=None, store=TicketStore(pool), events=ChannelEventLog(pool)
    )
    off = await post(stack, envelope("ticket.created"))
    stack.deps.zendesk = None
    absent = await post(stack, envelope("ticket.created"))
    assert (off.status_code, absent.status_code) == (404, 404)
    assert json.loads(off.content)["error"] == "not_configured"


async def _async(value: Any) -> Any:
    return value


async def test_comments_reopen_in_the_window_and_follow_up_after_it_in_zendesk(
    stack: ChannelStack, zendesk: FakeZendeskServer, task_queue: str
) -> None:
    # Issue 14: a window long enough to comment in, short enough to wait out (real time).
    stack.deps.intake = IntakeService(stack.client, task_queue=task_queue, policy=WINDOW)
    zendesk.add_ticket("121", requester_id="501")
    opened = await post(stack, envelope("ticket.created", ticket="121"))
    assert opened.json()["status"] == "accepted"
    ticket_id = ticket_id_for(Channel.ZENDESK, "121")
    handle = stack.client.get_workflow_handle_for(TicketWorkflow.run, f"ticket-{ticket_id}")
    await until_status(handle, TicketStatus.AWAITING_CUSTOMER)
    await handle.signal(TicketWorkflow.resolve, StaffResolve(actor="lead@kruxt.app"))
    await until_status(handle, TicketStatus.RESOLVED)

    inside = on_121(comment_event("The export link does not open for me.", cid="9101"))
    assert (await post(stack, inside)).json()["ticket_id"] == str(ticket_id)
    state = await state_where(handle, lambda s: s.lifecycle.reopened_count == 1)
    assert state.status is not TicketStatus.RESOLVED  # the same workflow took it again
    runs = [w async for w in stack.client.list_workflows(f'WorkflowId = "ticket-{ticket_id}"')]
    assert len(runs) == 1
    await handle.signal(TicketWorkflow.resolve, StaffResolve(actor="lead@kruxt.app"))
    await handle.result()  # the window ran out

    before = len(zendesk.comments("121"))
    late = await post(stack, on_121(comment_event("It is broken again.", cid="9102")))
    new_id = ticket_id_for(Channel.ZENDESK, "121~zendesk-comment:9102")  # a new ticket
    assert late.json()["ticket_id"] == str(new_id)
    new = stack.client.get_workflow_handle_for(TicketWorkflow.run, f"ticket-{new_id}")
    await state_where(new, lambda s: s.first_response_at is not None)
    # Its answer went to the Zendesk ticket the customer wrote on, not to an id of ours.
    answers = zendesk.comments("121")[before:]
    view = await TicketStore(stack.pool).get(new_id)
    assert view is not None and view.previous_ticket_id == ticket_id
    sent = [m.body for m in view.messages if m.direction.value == "outbound"]
    assert sent and [a.body for a in answers] == sent


def on_121(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` on Zendesk ticket 121 (other tests' workflows hold ticket 101's id)."""
    event["subject"] = "zen:ticket:121"
    event["detail"]["id"] = "121"
    return event
