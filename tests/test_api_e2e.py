"""End to end over HTTP: the API and a worker against the Temporal dev server and Postgres."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from kruxt.models.enums import Channel
from kruxt.models.tickets import StaffResolve, ticket_id_for
from kruxt.starter.api.app import create_app
from kruxt.workers.composition import build_worker
from tests.support import API_TOKEN, api_deps, eventually, refusing_port, serve_app, ticket_body

pytestmark = pytest.mark.e2e


@dataclass
class Stack:
    http: httpx.AsyncClient
    client: Client
    pool: asyncpg.Pool[Any]


@pytest.fixture
async def stack(
    dev_client: Client, pool: asyncpg.Pool[Any], task_queue: str
) -> AsyncIterator[Stack]:
    app = create_app(api_deps(dev_client, pool, task_queue))
    worker = build_worker(dev_client, task_queue=task_queue, pool=pool)
    server, task, base = await serve_app(app)
    try:
        async with (
            worker,
            httpx.AsyncClient(
                base_url=base, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=30
            ) as http,
        ):
            yield Stack(http=http, client=dev_client, pool=pool)
    finally:
        server.should_exit = True
        await task


async def _triaged(stack: Stack, ticket_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        r = await stack.http.get(f"/v1/tickets/{ticket_id}")
        if r.status_code == 200 and r.json()["status"] not in ("new", "triaged"):
            data: dict[str, Any] = r.json()
            return data
        return None

    return await eventually(probe)


async def _runs_settle_at(client: Client, workflow_id: str, expected: int) -> None:
    """Wait until visibility (which lags behind the history) lists ``expected`` runs."""

    async def listed() -> bool:
        runs = [w async for w in client.list_workflows(f'WorkflowId = "{workflow_id}"')]
        return len(runs) == expected

    await eventually(listed)


async def test_ticket_in_triaged_and_answered(stack: Stack) -> None:
    body = ticket_body()
    r = await stack.http.post("/v1/tickets", json=body)
    assert r.status_code == 202
    accepted = r.json()
    expected_id = ticket_id_for(Channel.IN_APP, body["external_id"])
    assert accepted == {"ticket_id": str(expected_id), "workflow_id": f"ticket-{expected_id}"}

    ticket = await _triaged(stack, accepted["ticket_id"])
    assert ticket["status"] == "awaiting_customer"
    assert ticket["triage"]["result"]["category"] == "privacy_request_status"
    assert ticket["triage"]["model"] == "rules"
    assert ticket["first_response_at"] is not None
    assert [m["kind"] for m in ticket["messages"]] == ["customer", "auto_reply"]
    assert ticket["requester"]["email"] == "ana@example.com"


async def test_duplicate_and_concurrent_intake_start_one_ticket(stack: Stack) -> None:
    body = ticket_body()
    responses = await asyncio.gather(*(stack.http.post("/v1/tickets", json=body) for _ in range(8)))
    assert {r.status_code for r in responses} == {202}
    assert len({json.dumps(r.json(), sort_keys=True) for r in responses}) == 1
    ticket_id = responses[0].json()["ticket_id"]
    await _triaged(stack, ticket_id)

    # After the workflow finished, the same external id still maps to the same ticket.
    handle = stack.client.get_workflow_handle(f"ticket-{ticket_id}")
    first_run = (await handle.describe()).run_id
    await handle.signal("resolve", StaffResolve(actor="lead@kruxt.app"))
    await handle.result()
    again = await stack.http.post("/v1/tickets", json=body)
    assert again.status_code == 202 and again.json() == responses[0].json()

    await _runs_settle_at(stack.client, f"ticket-{ticket_id}", 1)
    # The latest run, read from the history (not visibility), is still the first one.
    assert (await stack.client.get_workflow_handle(f"ticket-{ticket_id}").describe()).run_id == (
        first_run
    )
    async with stack.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM support_tickets") == 1
        triage_runs = "SELECT count(*) FROM support_automation_runs WHERE agent = 'triage'"
        assert await conn.fetchval(triage_runs) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"requester": {"id": "u", "email": "not-an-email"}}, "requester.email"),
        ({"subject": ""}, "subject"),
        ({"body": "   "}, "body"),
        ({"external_id": None}, "external_id"),
        ({"priority": "P1"}, "priority"),
    ],
)
async def test_bad_bodies_get_422_naming_the_field(
    stack: Stack, change: dict[str, Any], field: str
) -> None:
    r = await stack.http.post("/v1/tickets", json=ticket_body(**change))
    assert r.status_code == 422
    assert field in [f["field"] for f in r.json()["fields"]]
    async with stack.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM support_tickets") == 0


async def test_not_json_is_422(stack: Stack) -> None:
    r = await stack.http.post(
        "/v1/tickets", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", "Basic dGVzdDp0ZXN0"])
async def test_intake_needs_the_bearer_token(stack: Stack, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    async with httpx.AsyncClient(base_url=stack.http.base_url, headers=headers) as anon:
        post = await anon.post("/v1/tickets", json=ticket_body())
        get = await anon.get(f"/v1/tickets/{uuid.uuid4()}")
    assert post.status_code == 401 and get.status_code == 401
    assert post.headers["www-authenticate"] == "Bearer"


async def test_bodies_over_64_kib_are_refused_with_413(stack: Stack) -> None:
    big = ticket_body(body="x" * (64 * 1024))
    r = await stack.http.post("/v1/tickets", json=big)
    assert r.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        yield json.dumps(big).encode()

    r = await stack.http.post(
        "/v1/tickets", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413
    async with stack.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM support_tickets") == 0


def body_of_size(size: int) -> bytes:
    """A valid ticket whose JSON request body is exactly ``size`` bytes long.

    The ticket body holds at most 20,000 characters, so it is filled with four-byte
    characters to get near 64 KiB, then padded with one-byte ones to the exact size.
    """
    external_id = f"app-{uuid.uuid4().hex[:10]}"
    frame = json.dumps(ticket_body(external_id=external_id, body=""), ensure_ascii=False)
    wide, narrow = divmod(size - len(frame.encode()), 4)
    text = "\N{FLEXED BICEPS}" * wide + "x" * narrow
    data = json.dumps(ticket_body(external_id=external_id, body=text), ensure_ascii=False).encode()
    assert len(data) == size and len(text) <= 20_000
    return data


@pytest.mark.parametrize(("size", "status"), [(64 * 1024, 202), (64 * 1024 + 1, 413)])
async def test_the_64_kib_limit_is_exact(stack: Stack, size: int, status: int) -> None:
    """A body of the limit itself is accepted, one byte more is refused, with or without a
    Content-Length up front."""
    data = body_of_size(size)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        yield data[: size // 2]
        yield data[size // 2 :]

    headers = {"Content-Type": "application/json"}
    declared = await stack.http.post("/v1/tickets", content=data, headers=headers)
    streamed = await stack.http.post("/v1/tickets", content=chunks(), headers=headers)
    assert (declared.status_code, streamed.status_code) == (status, status)


async def test_unknown_ticket_is_404(stack: Stack) -> None:
    assert (await stack.http.get(f"/v1/tickets/{uuid.uuid4()}")).status_code == 404
    assert (await stack.http.get("/v1/tickets/not-a-uuid")).status_code == 422
    r = await stack.http.post(
        f"/v1/tickets/{uuid.uuid4()}/messages", json={"external_id": "m1", "body": "hi"}
    )
    assert r.status_code == 404


async def test_follow_up_messages_and_closed_tickets(stack: Stack) -> None:
    body = ticket_body()
    accepted = (await stack.http.post("/v1/tickets", json=body)).json()
    ticket_id = accepted["ticket_id"]
    await _triaged(stack, ticket_id)
    msg = {"external_id": "msg-2", "body": "Still waiting on that export."}
    first = await stack.http.post(f"/v1/tickets/{ticket_id}/messages", json=msg)
    second = await stack.http.post(f"/v1/tickets/{ticket_id}/messages", json=msg)
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()

    async def escalated() -> dict[str, Any] | None:
        data: dict[str, Any] = (await stack.http.get(f"/v1/tickets/{ticket_id}")).json()
        return data if data["status"] == "awaiting_human" else None

    ticket = await eventually(escalated)
    assert [m["body"] for m in ticket["messages"]].count(msg["body"]) == 1

    handle = stack.client.get_workflow_handle(accepted["workflow_id"])
    await handle.signal("resolve", StaffResolve(actor="lead@kruxt.app", note="exported"))
    await handle.result()  # the reopen window ended
    # Issue 14: never 409 for a customer; a message after the window opens a linked ticket.
    late = await stack.http.post(
        f"/v1/tickets/{ticket_id}/messages", json={"external_id": "m3", "body": "It is back"}
    )
    assert late.status_code == 202
    new_id = ticket_id_for(Channel.IN_APP, f"{body['external_id']}~m3")
    # The answer names the new ticket, and the one it follows.
    assert late.json()["ticket_id"] == str(new_id)
    assert late.json()["follows_ticket_id"] == ticket_id

    async def linked() -> dict[str, Any] | None:
        got = await stack.http.get(f"/v1/tickets/{new_id}")
        return got.json() if got.status_code == 200 else None

    follow_up = await eventually(linked)
    assert follow_up["previous_ticket_id"] == ticket_id
    assert follow_up["messages"][0]["body"] == "It is back"


async def test_healthz_names_what_failed(
    stack: Stack, dev_client: Client, pool: asyncpg.Pool[Any], task_queue: str
) -> None:
    ok = await stack.http.get("/healthz")
    assert ok.status_code == 200 and ok.json()["checks"] == {"temporal": "ok", "postgres": "ok"}

    async def postgres_down() -> None:
        await asyncpg.connect(f"postgresql://nobody@127.0.0.1:{refusing_port()}/x", timeout=1)

    deps = api_deps(dev_client, pool, task_queue)
    deps.health_checks["postgres"] = postgres_down
    server, task, base = await serve_app(create_app(deps))
    try:
        async with httpx.AsyncClient(base_url=base) as http:
            r = await http.get("/healthz")
    finally:
        server.should_exit = True
        await task
    assert r.status_code == 503
    assert r.json()["checks"]["temporal"] == "ok"
    assert r.json()["checks"]["postgres"].startswith("failed")


async def test_temporal_down_is_503_and_the_retry_succeeds(
    stack: Stack, pool: asyncpg.Pool[Any], task_queue: str
) -> None:
    unreachable = await Client.connect(
        f"127.0.0.1:{refusing_port()}", lazy=True, data_converter=pydantic_data_converter
    )
    server, task, base = await serve_app(create_app(api_deps(unreachable, pool, task_queue)))
    body = ticket_body()
    try:
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=60
        ) as http:
            r = await http.post("/v1/tickets", json=body)
    finally:
        server.should_exit = True
        await task
    assert r.status_code == 503 and r.json()["error"] == "temporal_unavailable"
    # When to come back: whole seconds, as RFC 9110 allows.
    assert int(r.headers["retry-after"]) > 0
    # The client retries against a healthy API: accepted, nothing was half-created.
    retry = await stack.http.post("/v1/tickets", json=body)
    assert retry.status_code == 202
    await _triaged(stack, retry.json()["ticket_id"])


async def test_a_ticket_read_right_after_its_post_is_waited_for_not_refused(
    dev_client: Client, pool: asyncpg.Pool[Any], task_queue: str
) -> None:
    """The row is written by the workflow's first activity, after the 202: a read in between
    waits for it. With no worker it says the ticket is being stored (not "no ticket"), and an
    id nobody sent is unknown at once."""
    app = create_app(api_deps(dev_client, pool, task_queue))
    server, task, base = await serve_app(app)
    try:
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=30
        ) as http:
            accepted = (await http.post("/v1/tickets", json=ticket_body())).json()
            url = f"/v1/tickets/{accepted['ticket_id']}"
            pending = await http.get(url)  # no worker: the row never comes
            assert pending.status_code == 404, pending.text
            assert pending.json()["error"] == "not_stored_yet"
            assert pending.headers["retry-after"] == "1"
            unknown = await http.get(f"/v1/tickets/{uuid.uuid4()}")
            assert (unknown.status_code, unknown.json()["error"]) == (404, "not_found")

            second = (await http.post("/v1/tickets", json=ticket_body())).json()
            async with build_worker(dev_client, task_queue=task_queue, pool=pool):
                # Read at once, as a client does after its POST: before the worker stored it.
                read = await http.get(f"/v1/tickets/{second['ticket_id']}")
            assert read.status_code == 200, read.text
            assert read.json()["ticket_id"] == second["ticket_id"]
    finally:
        server.should_exit = True
        await task
