"""One trace per ticket: the intake request, the workflow, its activities and their queries."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import asyncpg
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor

from kruxt.adapters.approvers import Approver, ApproverDirectory
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.adapters.telemetry import configure_tracing, instrument_libraries, uninstrument_libraries
from kruxt.models.enums import TicketStatus
from kruxt.models.playbooks import ApproverRole
from kruxt.models.tickets import RoutingPolicy
from kruxt.starter.api.app import ApiDeps, create_app
from kruxt.starter.intake import IntakeService
from kruxt.workers.composition import Outside, build_worker
from tests.support import (
    ApprovalRig,
    asgi_client,
    email_approvals,
    eventually,
    locked_ticket,
    slack_approvals,
    start_ticket,
    state_where,
    ticket_body,
)

TOKEN = "test-intake-token"
ADMIN = [ApproverRole.ADMIN]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span ended during the test, as configure_tracing installs them for a service."""
    exporter = InMemorySpanExporter()
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):  # installed by an earlier test of this session
        current.add_span_processor(SimpleSpanProcessor(exporter))
        instrument_libraries(current)
    else:
        configure_tracing("kruxt-test", None, exporters=[exporter])
    try:
        yield exporter
    finally:
        uninstrument_libraries()
        exporter.shutdown()  # the provider stays (it cannot be replaced); the spans stop here


def _one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"{name}: {[s.name for s in spans]}"
    return found[0]


def _parent_of(span: ReadableSpan, spans: list[ReadableSpan]) -> ReadableSpan:
    assert span.parent is not None, f"{span.name} is a root"
    by_id = {s.context.span_id: s for s in spans}
    return by_id[span.parent.span_id]


def _under(span: ReadableSpan, ancestor: ReadableSpan, spans: list[ReadableSpan]) -> bool:
    while span.parent is not None:
        span = _parent_of(span, spans)
        if span is ancestor:
            return True
    return False


async def test_one_ticket_is_one_trace_from_intake_to_postgres(
    spans: InMemorySpanExporter, dev_client: Client, pool: asyncpg.Pool[Any], task_queue: str
) -> None:
    deps = ApiDeps(
        intake=IntakeService(dev_client, task_queue=task_queue, policy=RoutingPolicy()),
        tickets=TicketStore(pool),
        intake_token=TOKEN,
        health_checks={},
    )
    app = create_app(deps)
    body = ticket_body(external_id="trace-1")
    async with (
        build_worker(dev_client, task_queue=task_queue, pool=pool),
        asgi_client(app, headers={"Authorization": f"Bearer {TOKEN}"}) as http,
    ):
        accepted = await http.post("/v1/tickets", json=body)
        assert accepted.status_code == 202
        ticket_id = uuid.UUID(accepted.json()["ticket_id"])

        async def answered() -> bool:
            ticket = await TicketStore(pool).get(ticket_id)
            return ticket is not None and ticket.status.value == "awaiting_customer"

        await eventually(answered)

    def reply_traced() -> list[ReadableSpan] | None:
        done = list(spans.get_finished_spans())
        names = {s.name for s in done}
        return done if "RunActivity:send_customer_message" in names else None

    finished = await eventually(_async(reply_traced))
    request = next(s for s in finished if s.name == "POST /v1/tickets" and s.kind.name == "SERVER")
    ticket_trace = [s for s in finished if s.context.trace_id == request.context.trace_id]

    assert request.parent is None  # the ticket's trace starts at its intake request
    start = _one(ticket_trace, "StartWorkflow:TicketWorkflow")
    assert _parent_of(start, ticket_trace) is request
    # The SDK ends a workflow's spans at once (a replay must not reopen them): the run and
    # every activity it schedules are children of the start that carried the trace context.
    run = _one(ticket_trace, "RunWorkflow:TicketWorkflow")
    assert _parent_of(run, ticket_trace) is start
    for activity in ("persist_ticket", "triage_with_rules", "send_customer_message"):
        scheduled = _one(ticket_trace, f"StartActivity:{activity}")
        assert _parent_of(scheduled, ticket_trace) is start
        ran = _one(ticket_trace, f"RunActivity:{activity}")
        assert _parent_of(ran, ticket_trace) is scheduled
    # The activities' queries: PostgreSQL spans (asyncpg's) inside persist and reply.
    for activity in ("persist_ticket", "send_customer_message"):
        ran = _one(ticket_trace, f"RunActivity:{activity}")
        queries = [
            s
            for s in ticket_trace
            if s.attributes and s.attributes.get("db.system") == "postgresql"
            if _under(s, ran, ticket_trace)
        ]
        assert queries, f"no PostgreSQL span under {activity}"


def _async(probe: Any) -> Any:
    async def wrapped() -> Any:
        return probe()

    return wrapped


APPROVERS = ApproverDirectory(
    [
        Approver(name="Maya", email="maya@kruxt.app", slack_user_id="U0MAYA", roles=ADMIN),
        Approver(name="Sam", email="sam@kruxt.app", slack_user_id="U0SAM", roles=ADMIN),
    ]
)


async def test_the_calls_to_slack_and_sendgrid_are_spans_of_the_activity_that_makes_them(
    spans: InMemorySpanExporter, approval_rig: ApprovalRig
) -> None:
    rig = approval_rig
    # The time-skipping server's client, traced as every client the code builds is.
    config = rig.env.client.config()
    config["interceptors"] = [TracingInterceptor()]
    client = Client(**config)
    outside = Outside(
        app=rig.app,
        approvers=APPROVERS,
        slack=slack_approvals(rig.slack),
        email=email_approvals(rig.sendgrid, rig.pool),
    )
    async with build_worker(client, task_queue=rig.queue, pool=rig.pool, outside=outside):
        handle = await start_ticket(client, locked_ticket(), task_queue=rig.queue)
        await state_where(handle, lambda s: s.status is TicketStatus.AWAITING_APPROVAL)

        async def mailed() -> bool:
            return len(rig.sendgrid.sent) >= len(APPROVERS.approvers)

        await eventually(mailed)
    finished = list(spans.get_finished_spans())
    notify = _one(finished, "RunActivity:notify_approvers")
    calls = [
        s
        for s in finished
        if s.kind.name == "CLIENT" and s.attributes and _under(s, notify, finished)
    ]
    attributes = [dict(s.attributes or {}) for s in calls]
    urls = {str(a.get("url.full") or a.get("http.url")) for a in attributes}
    assert any(u.startswith(rig.slack.api_url) for u in urls), urls  # aiohttp (slack-sdk)
    assert any(u.startswith(rig.sendgrid.base_url) for u in urls), urls  # urllib (sendgrid)


OTLP_CHILD = """
import sys
from opentelemetry import trace
from kruxt.adapters.telemetry import configure_tracing
provider = configure_tracing("kruxt-worker", sys.argv[1])
with trace.get_tracer("t").start_as_current_span("ticket-step"):
    pass
provider.shutdown()  # flushes the batch
"""


def test_spans_go_to_the_otlp_endpoint_when_one_is_set() -> None:
    received: list[tuple[str, bytes]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_port}"
        # A process of its own: a process installs its tracer provider once.
        done = subprocess.run(
            [sys.executable, "-c", OTLP_CHILD, endpoint],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stderr
    assert "not installed" not in done.stderr
    [(path, body)] = received
    assert path == "/v1/traces"
    assert b"ticket-step" in body and b"kruxt-worker" in body


UNSENT_CHILD = """
from opentelemetry import trace
from kruxt.adapters.telemetry import configure_tracing
configure_tracing("kruxt-worker", None)
with trace.get_tracer("t").start_as_current_span("ticket-step") as span:
    context = span.get_span_context()
    print(span.is_recording(), context.is_valid)
"""


def test_without_an_endpoint_spans_are_not_recorded_but_carry_ids() -> None:
    """Nothing to send them to: a span costs no recording, and still has its ids (Temporal's
    headers carry them on)."""
    # A process of its own: a process installs its tracer provider once.
    done = subprocess.run(
        [sys.executable, "-c", UNSENT_CHILD],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]
