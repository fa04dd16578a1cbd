"""The confirm link at the end of an answer (issue 14): a real worker appends it, opening it
changes nothing, pressing its button solves the ticket as confirmed, once."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from temporalio.testing import WorkflowEnvironment

from kruxt.adapters.email_tokens import ConfirmLinks, ConfirmTokens
from kruxt.bootstrap import Outside
from kruxt.models.enums import TicketStatus
from kruxt.models.lifecycle import SolvedHow
from kruxt.starter.api.app import ApiDeps, create_app
from kruxt.starter.api.confirm_routes import ConfirmContext, confirm_router
from kruxt.workers.composition import build_worker
from kruxt.workflows.ticket import TicketWorkflow
from tests.support import asgi_client, router_client, start_ticket, state_where, until_status
from tests.test_ticket_lifecycle import privacy_ticket, solved

BASE_URL = "http://kruxt.test"
TOKENS = ConfirmTokens(b"k" * 32)
LINK = re.compile(r"http://kruxt\.test/v1/tickets/[0-9a-f-]+/confirm/[A-Za-z0-9_.-]+")


async def test_the_confirm_link_solves_the_ticket_as_confirmed_once(
    ts_env: WorkflowEnvironment, pool: asyncpg.Pool[Any], task_queue: str
) -> None:
    links = ConfirmLinks(TOKENS, BASE_URL, valid_for=timedelta(days=10))
    outside = Outside(confirm_links=links)
    ticket = privacy_ticket()
    async with build_worker(ts_env.client, task_queue=task_queue, pool=pool, outside=outside):
        handle = await start_ticket(ts_env.client, ticket, task_queue=task_queue)
        await until_status(handle, TicketStatus.AWAITING_CUSTOMER)
        async with pool.acquire() as conn:
            body = await conn.fetchval(
                "SELECT body FROM support_ticket_messages WHERE ticket_id = $1 "
                "AND kind = 'auto_reply'",
                ticket.ticket_id,
            )
        found = LINK.search(body)
        assert found is not None, body  # the answer ends with the link
        url = found.group(0).removeprefix(BASE_URL)
        assert str(ticket.ticket_id) in url

        ctx = ConfirmContext(tokens=TOKENS, client=ts_env.client)
        async with router_client(confirm_router(lambda _: ctx), BASE_URL) as http:
            page = await http.get(url)  # a link scanner's prefetch: nothing happens
            assert page.status_code == 200 and 'method="post"' in page.text
            state = await handle.query(TicketWorkflow.state)
            assert state.status is TicketStatus.AWAITING_CUSTOMER

            done = await http.post(url)
            assert done.status_code == 200 and "Thank you" in done.text
            confirmed = await state_where(handle, solved(SolvedHow.CONFIRMED))
            assert confirmed.lifecycle.reopen_until is not None

            again = await http.post(url)
            assert again.status_code == 200 and "Already confirmed" in again.text

            # Another ticket's link, or a changed one, confirms nothing.
            other = TOKENS.issue(
                ticket_id=uuid.uuid4(), expires_at=datetime.now(UTC) + timedelta(hours=1)
            )
            assert (
                await http.post(f"/v1/tickets/{ticket.ticket_id}/confirm/{other}")
            ).status_code == 400
            assert (await http.get(url[:-2] + "xx")).status_code == 400


async def test_an_expired_confirm_link_says_so() -> None:
    now = datetime.now(UTC)
    ticket_id = uuid.uuid4()
    token = TOKENS.issue(ticket_id=ticket_id, expires_at=now - timedelta(seconds=1))
    ctx = ConfirmContext(tokens=TOKENS, client=None)  # type: ignore[arg-type]
    async with router_client(confirm_router(lambda _: ctx), BASE_URL) as http:
        page = await http.post(f"/v1/tickets/{ticket_id}/confirm/{token}")
    assert page.status_code == 410 and "expired" in page.text


async def test_the_api_serves_confirm_links_only_with_a_link_secret() -> None:
    ticket_id = uuid.uuid4()
    token = TOKENS.issue(ticket_id=ticket_id, expires_at=datetime.now(UTC) + timedelta(hours=1))
    url = f"/v1/tickets/{ticket_id}/confirm/{token}"
    deps = ApiDeps(intake=None, tickets=None, intake_token="t", health_checks={})  # type: ignore[arg-type]
    async with asgi_client(create_app(deps)) as http:
        off = await http.get(url)
    assert off.status_code == 404 and "confirm links are off" in off.text
    deps.confirm = ConfirmContext(tokens=TOKENS, client=None)  # type: ignore[arg-type]
    async with asgi_client(create_app(deps)) as http:
        page = await http.get(url)
    assert page.status_code == 200 and "Yes, it is solved" in page.text
