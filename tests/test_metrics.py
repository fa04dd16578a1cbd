"""Prometheus metrics: the app's counters after a ticket, and the Temporal SDK's runtime's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from kruxt.adapters.channels.zendesk import ZendeskChannel
from kruxt.adapters.metrics import serve_metrics, temporal_runtime
from kruxt.adapters.postgres.channel_events import ChannelEventLog
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.adapters.temporal_client import data_converter
from kruxt.adapters.zendesk_client import ZendeskClient
from kruxt.models.enums import TicketStatus
from kruxt.models.sla import ClockState
from kruxt.workers.composition import build_worker
from tests.conftest import run_payload_codec
from tests.fakes.zendesk_server import FakeZendeskServer
from tests.support import (
    API_TOKEN,
    ZD_EMAIL,
    ZD_TOKEN,
    TicketRig,
    bound_socket,
    eventually,
    intake,
    serve_channel,
    start_ticket,
    state_where,
    until_status,
)
from tests.test_zendesk import SECRET, envelope, signed

BREACHED = ClockState.BREACHED
# Each sample of a scrape by its name and labels.
Scraped = dict[tuple[str, frozenset[tuple[str, str]]], float]
OUTAGE = {
    "subject": "Nobody at our gym can log in",
    "body": "Since 7am none of our members can log in, everyone gets an error. Whole gym down.",
}


@pytest.fixture
def app_metrics() -> Iterator[str]:
    """The worker's app metrics endpoint, served on a free port for the test."""
    server = serve_metrics(0, None, host="127.0.0.1")
    assert server is not None
    try:
        yield f"http://127.0.0.1:{server.server_port}/metrics"
    finally:
        server.shutdown()
        server.server_close()


async def _scrape(url: str) -> Scraped:
    async with httpx.AsyncClient() as http:
        r = await http.get(url)
    r.raise_for_status()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(r.text)
        for sample in family.samples
    }


def _value(scraped: Scraped, name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


async def test_a_breached_p1_shows_in_the_app_counters(
    app_metrics: str, tickets: TicketRig, ts_env: WorkflowEnvironment
) -> None:
    # Counters are per process: what this ticket adds is measured against a scrape before it.
    before = await _scrape(app_metrics)
    handle = await tickets.start(intake(subject=OUTAGE["subject"], body=OUTAGE["body"]))
    await until_status(handle, TicketStatus.AWAITING_HUMAN)
    await ts_env.sleep(timedelta(minutes=16))  # past a P1's 15-minute first response
    await state_where(
        handle, lambda s: s.sla is not None and any(c.state is BREACHED for c in s.sla.clocks)
    )

    async def breach_counted() -> Scraped | None:
        after = await _scrape(app_metrics)
        breaches = ("kruxt_sla_breaches_total", "first_response", "P1")
        counted = _breaches(after, *breaches) > _breaches(before, *breaches)
        return after if counted else None

    after = await eventually(breach_counted)
    status = {"status": TicketStatus.AWAITING_HUMAN.value}
    assert _value(after, "kruxt_ticket_status_changes_total", **status) > _value(
        before, "kruxt_ticket_status_changes_total", **status
    )
    # The families no ticket here touched are exposed too (with no samples yet).
    async with httpx.AsyncClient() as http:
        text = (await http.get(app_metrics)).text
    assert "# TYPE kruxt_approval_decision_seconds histogram" in text
    assert "# TYPE kruxt_playbook_compensations_total counter" in text


def _breaches(scraped: Scraped, name: str, clock: str, priority: str) -> float:
    return _value(scraped, name, clock=clock, priority=priority)


async def test_the_sdk_runtime_serves_temporal_metrics(
    dev_server: Any, pool: asyncpg.Pool[Any], task_queue: str
) -> None:
    sock = bound_socket()
    port = sock.getsockname()[1]
    sock.close()  # the SDK's core binds it itself
    client = await Client.connect(
        dev_server.address,
        data_converter=data_converter(run_payload_codec()),
        runtime=temporal_runtime(f"127.0.0.1:{port}"),
    )
    async with build_worker(client, task_queue=task_queue, pool=pool):
        handle = await start_ticket(
            client, intake(subject=OUTAGE["subject"], body=OUTAGE["body"]), task_queue=task_queue
        )
        await until_status(handle, TicketStatus.AWAITING_HUMAN)
        scraped = await _scrape(f"http://127.0.0.1:{port}/metrics")
    names = {name for name, _ in scraped}
    assert any(n.startswith("temporal_activity_execution_latency") for n in names), names
    assert any(n.startswith("temporal_workflow_task_execution_latency") for n in names), names


async def test_the_api_serves_its_webhook_refusals_to_the_token_holder(
    dev_client: Client, pool: asyncpg.Pool[Any], task_queue: str, zendesk: FakeZendeskServer
) -> None:
    api = ZendeskClient(zendesk.base, email=ZD_EMAIL, api_token=ZD_TOKEN)
    channel = ZendeskChannel(
        secret=SECRET, client=api, store=TicketStore(pool), events=ChannelEventLog(pool)
    )
    token = {"Authorization": f"Bearer {API_TOKEN}"}
    async with serve_channel(dev_client, pool, task_queue, channel) as stack:

        async def scrape() -> Scraped:
            r = await stack.http.get("/metrics", headers=token)
            r.raise_for_status()
            return {
                (sample.name, frozenset(sample.labels.items())): sample.value
                for family in text_string_to_metric_families(r.text)
                for sample in family.samples
            }

        before = await scrape()
        forged = signed(envelope("ticket.created"), at=datetime.now(UTC), secret="not-the-secret")
        for _ in range(2):
            r = await stack.http.post(
                "/webhooks/zendesk", content=forged.body, headers=forged.headers
            )
            assert r.status_code == 401
        assert (await stack.http.post("/webhooks/zendesk", json={})).status_code == 401
        after = await scrape()
        assert (await stack.http.get("/metrics")).status_code == 401  # not without the token

    name = "kruxt_webhook_refusals_total"
    for reason, n in (("bad signature", 2), ("unsigned", 1)):
        labels = {"channel": "zendesk", "reason": reason}
        assert _value(after, name, **labels) - _value(before, name, **labels) == n, reason
