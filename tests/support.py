"""Small helpers for tests (not fixtures)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import APIRouter, FastAPI
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from kruxt.activities.notifications import EmailApprovals
from kruxt.adapters.app_db import SUPPORT_ROLE, KruxtApp, install_app_schema
from kruxt.adapters.approvers import ApproverDirectory, parse_approvers
from kruxt.adapters.email import SendGridMailer
from kruxt.adapters.email_tokens import ApprovalTokens
from kruxt.adapters.embedded_postgres import with_database
from kruxt.adapters.postgres.approvals import ApprovalStore
from kruxt.adapters.postgres.email_tokens import EmailTokenStore
from kruxt.adapters.postgres.pool import connect, create_pool
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.adapters.slack import SlackApprovals, SlackIncidents
from kruxt.adapters.temporal_dev_server import TemporalDevServer
from kruxt.models.approvals import (
    ApprovalKind,
    ApprovalRecord,
    ApprovalRequest,
    ApprovalStatus,
    Decision,
    DecisionChannel,
    DecisionOutcome,
    Verdict,
)
from kruxt.models.enums import Category, Channel, Priority, TicketStatus
from kruxt.models.incidents import AttachTicket, IncidentInput, default_escalation_policy
from kruxt.models.playbooks import ApproverRole
from kruxt.models.tickets import (
    Requester,
    RoutingPolicy,
    StaffChannel,
    StaffResolve,
    TicketIntake,
    TicketOutcome,
    TicketState,
    TicketWorkflowInput,
    ticket_id_for,
)
from kruxt.starter.api.app import ApiDeps, create_app
from kruxt.starter.api.channel_webhooks import WebhookChannel
from kruxt.starter.api.slack_routes import SlackContext
from kruxt.starter.approvals import ApprovalService, DecisionAttempt, DecisionRefusedError
from kruxt.starter.cli import main as kruxt
from kruxt.starter.intake import IntakeService, start_options
from kruxt.starter.waiting import until_found
from kruxt.workers.composition import ExecutorWorker, Outside, build_worker
from kruxt.workflows.ticket import TicketWorkflow
from tests.fakes.sendgrid_server import FakeSendGridServer
from tests.fakes.slack_server import FakeSlackServer

T = TypeVar("T")

# The SendGrid key the `sendgrid` fixture (tests/conftest.py) accepts.
SENDGRID_TEST_KEY = "SG.test-key"
# The signing secret of the Slack app the tests' API trusts (``slack_context``).
SLACK_SIGNING_SECRET = "slack-signing-secret-for-tests"
# The API user the `zendesk` fixture (tests/conftest.py) accepts.
ZD_EMAIL, ZD_TOKEN = "autopilot@kruxt.dev", "zd-api-token"


def bound_socket() -> socket.socket:
    """A TCP socket bound to a port the OS chose on 127.0.0.1, for a server in this process.

    Hand it to the server (``uvicorn.Server(config).serve(sockets=[sock])``) and read the
    port from ``sock.getsockname()[1]``: the port is held from the moment it is chosen, so no
    other process can take it before the server listens.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


# Held open until the process exits: a port handed out by refusing_port stays refused.
_REFUSING: list[socket.socket] = []


def refusing_port() -> int:
    """A port on 127.0.0.1 that refuses every connection, for an address that must not answer.

    The socket is bound and never listens, so the kernel refuses connections to it; it stays
    open for the rest of the run, so no other process can bind the port and start answering.
    """
    sock = bound_socket()
    _REFUSING.append(sock)
    port: int = sock.getsockname()[1]
    return port


async def start_temporal_dev_server() -> TemporalDevServer:
    """A headless Temporal dev server on a port it chose and is known to own (see ``launch``)."""
    server = TemporalDevServer(port=0, ui_port=None)
    await server.launch()
    return server


@asynccontextmanager
async def connection(dsn: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    """One connection to ``dsn`` (with the pool's codecs), closed on the way out."""
    conn = await connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


@asynccontextmanager
async def pool_on(
    dsn: str, *, max_size: int = 5, role: str | None = None
) -> AsyncIterator[asyncpg.Pool[Any]]:
    """A connection pool on ``dsn`` (as ``role``, when given), closed on the way out."""
    pool = await create_pool(dsn, max_size=max_size, role=role)
    try:
        yield pool
    finally:
        await pool.close()


@asynccontextmanager
async def scratch_database(
    admin_dsn: str, name: str, *, template: str | None = None
) -> AsyncIterator[str]:
    """A new database ``name`` (a copy of ``template``, or empty) on the server of
    ``admin_dsn``, dropped on the way out; its DSN."""
    admin = await connect(admin_dsn)
    try:
        copy = f' TEMPLATE "{template}"' if template else ""
        await admin.execute(f'CREATE DATABASE "{name}"{copy}')
        try:
            yield with_database(admin_dsn, name)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def install_demo_app(dsn: str) -> None:
    """Install the reference KRUXT app's schema with its demo data in ``dsn``."""
    async with connection(dsn) as conn:
        await install_app_schema(conn, with_demo_data=True)


@asynccontextmanager
async def demo_app(db_dsn: str, *, max_size: int = 3) -> AsyncIterator[KruxtApp]:
    """The demo KRUXT app (``u-locked`` and friends) in ``db_dsn``, through the support role.

    Installs the app's schema with its demo data, then yields the app on a pool of the
    support role, as the autopilot reaches it.
    """
    await install_demo_app(db_dsn)
    async with pool_on(db_dsn, max_size=max_size, role=SUPPORT_ROLE) as app_pool:
        yield KruxtApp(app_pool)


@dataclass
class TicketRig:
    """A real worker (rules triage, no outside world) on the test's own queue: start tickets."""

    env: WorkflowEnvironment
    queue: str

    async def start(
        self, ticket: TicketIntake, *, policy: RoutingPolicy | None = None
    ) -> WorkflowHandle[Any, TicketOutcome]:
        """Start the ticket's workflow on the rig's queue."""
        return await start_ticket(self.env.client, ticket, task_queue=self.queue, policy=policy)


@dataclass
class ApprovalRig:
    """Approvals that go out for real: a worker on the demo app whose requests reach Slack and
    SendGrid (the local fakes) through the real clients, on the test's own queue."""

    env: WorkflowEnvironment
    pool: asyncpg.Pool[Any]
    queue: str
    app: KruxtApp
    sendgrid: FakeSendGridServer
    slack: FakeSlackServer

    def worker(self, approvers: ApproverDirectory) -> ExecutorWorker:
        """The real worker, its approvers directory ``approvers``."""
        outside = Outside(
            app=self.app,
            approvers=approvers,
            slack=slack_approvals(self.slack),
            email=email_approvals(self.sendgrid, self.pool),
        )
        return build_worker(self.env.client, task_queue=self.queue, pool=self.pool, outside=outside)

    async def announced(
        self, ticket: TicketIntake
    ) -> tuple[WorkflowHandle[Any, TicketOutcome], TicketState]:
        """Start the ticket; its state once its plan waits for approval and was mailed to two."""
        handle = await start_ticket(self.env.client, ticket, task_queue=self.queue)

        def mailed(state: TicketState) -> bool:
            waiting = state.status is TicketStatus.AWAITING_APPROVAL
            return waiting and len(self.sendgrid.sent) >= 2

        return handle, await state_where(handle, mailed, timeout=60)


@dataclass
class Cli:
    """The ``kruxt`` CLI pointed at this test's stack: its database, the dev server, its queue.

    ``env`` sets more of the CLI's environment; the worker the CLI's tickets need is started
    by the test (``worker``, ``approvals_worker``), so it decides what the outside world is.
    """

    env: pytest.MonkeyPatch
    client: Client
    pool: asyncpg.Pool[Any]
    db_dsn: str
    task_queue: str

    async def run(self, *args: str) -> int:
        """``kruxt <args>`` in a thread (it runs its own event loop); its exit code."""
        return await asyncio.to_thread(kruxt, list(args))

    def worker(self, outside: Outside | None = None) -> ExecutorWorker:
        """The real worker on the CLI's queue."""
        return build_worker(
            self.client, task_queue=self.task_queue, pool=self.pool, outside=outside
        )

    @asynccontextmanager
    async def approvals_worker(self, approvers: str) -> AsyncIterator[None]:
        """A worker on the demo app; ``approvers`` (JSON) is both its and the CLI's directory."""
        self.env.setenv("KRUXT_APPROVERS", approvers)
        async with demo_app(self.db_dsn, max_size=2) as app:
            # The worker snapshots the same directory onto each approval: roles come from there.
            outside = Outside(app=app, approvers=parse_approvers(approvers, source="test"))
            async with self.worker(outside):
                yield


def intake(
    *,
    subject: str = "Cannot log in",
    body: str = "My account says it is locked after I mistyped my password.",
    external_id: str | None = None,
    channel: Channel = Channel.IN_APP,
    name: str = "Ana Lima",
    email: str = "ana@example.com",
) -> TicketIntake:
    """A ticket as the intake would hand it to the workflow."""
    import uuid

    ext = external_id or uuid.uuid4().hex
    return TicketIntake(
        ticket_id=ticket_id_for(channel, ext),
        channel=channel,
        external_id=ext,
        requester=Requester(id="user-1", email=email, name=name),
        subject=subject,
        body=body,
        received_at=datetime.now(UTC),
    )


def ticket_body(**overrides: Any) -> dict[str, Any]:
    """The JSON body of ``POST /v1/tickets`` (a data-export question), with fields overridden."""
    body: dict[str, Any] = {
        "external_id": f"app-{uuid.uuid4().hex[:10]}",
        "requester": {"id": "u-42", "email": "ana@example.com", "name": "Ana Lima"},
        "account_id": "acct-42",
        "subject": "Where is my data export?",
        "body": "I requested a data export of my account last week, what is the status?",
    }
    body.update(overrides)
    return body


def locked_ticket(**kw: Any) -> TicketIntake:
    """A ticket from a member whose demo account (``u-locked``) is locked: auth_login plans."""
    ticket = intake(
        subject="Account locked",
        body="I cannot log in, the app says my account is locked after too many attempts.",
        **kw,
    )
    return ticket.model_copy(update={"account_id": "u-locked"})


def privacy_answer(**overrides: Any) -> dict[str, Any]:
    """The model's triage of a data-export question: confident, read-only, auto-replied."""
    answer: dict[str, Any] = {
        "summary": "Customer asks where their data export is.",
        "severity": "P4",
        "category": "privacy_request_status",
        "playbook": "privacy_request_status",
        "probable_root_cause": "Export still inside its 72-hour window.",
        "recommended_action": "Answer from the privacy article.",
        "suspected_injection": False,
        "confidence": 0.92,
    }
    return answer | overrides


async def start_ticket(
    client: Client,
    ticket: TicketIntake,
    *,
    task_queue: str,
    policy: RoutingPolicy | None = None,
    history_limit: int | None = None,
) -> WorkflowHandle[Any, TicketOutcome]:
    """Start the ticket's workflow as the intake does, under the default routing policy."""
    return await client.start_workflow(
        TicketWorkflow.run,
        TicketWorkflowInput(
            intake=ticket, policy=policy or RoutingPolicy(), history_limit=history_limit
        ),
        task_queue=task_queue,
        **start_options(ticket),
    )


async def approve_first(handle: WorkflowHandle[Any, Any], state: TicketState) -> None:
    """The founder approves the ticket's first approval from the CLI, as an admin."""
    await handle.execute_update(
        TicketWorkflow.decide,
        Decision(
            approval_id=state.approvals[0].request.approval_id,
            approver="founder@kruxt.app",
            roles=[ApproverRole.ADMIN],
            verdict=Verdict.APPROVE,
            channel=DecisionChannel.CLI,
        ),
    )


async def resolve(
    handle: WorkflowHandle[Any, TicketOutcome],
    *,
    actor: str = "lead@kruxt.app",
    note: str = "",
    channel: StaffChannel = None,
) -> TicketOutcome:
    """Staff resolve the ticket (``channel``: where they acted); its outcome once the
    workflow ended."""
    resolution = StaffResolve(actor=actor, note=note, channel=channel)
    await handle.signal(TicketWorkflow.resolve, resolution)
    return await handle.result()


async def state_where(
    handle: WorkflowHandle[Any, Any],
    test: Callable[[TicketState], bool],
    *,
    timeout: float = 30.0,
) -> TicketState:
    """The ticket's state once ``test`` holds for it; the failure names the last state seen."""
    last: list[TicketState] = []

    async def probe() -> TicketState | None:
        state: TicketState = await handle.query(TicketWorkflow.state)
        last[:] = [state]
        return state if test(state) else None

    try:
        return await eventually(probe, timeout=timeout)
    except AssertionError:
        raise AssertionError(f"not reached within {timeout}s: last state {last}") from None


async def until_status(
    handle: WorkflowHandle[Any, Any], *statuses: TicketStatus, timeout: float = 30.0
) -> TicketState:
    """The ticket's state once its status is one of ``statuses``."""
    return await state_where(handle, lambda state: state.status in statuses, timeout=timeout)


def slack_context(
    client: Client,
    pool: asyncpg.Pool[Any],
    *,
    approvers: ApproverDirectory,
    slack: SlackApprovals,
    **options: Any,
) -> SlackContext:
    """The Slack routes as the API wires them: the real ``ApprovalService`` decides and audits
    strangers' clicks; requests are signed with ``SLACK_SIGNING_SECRET``."""
    service = ApprovalService(client, approvers=approvers, store=ApprovalStore(pool))
    return SlackContext(
        signing_secret=SLACK_SIGNING_SECRET,
        approvers=approvers,
        decider=service,
        slack=slack,
        audit_refusal=service.audit_slack_stranger,
        **options,
    )


def api_with_slack(
    client: Client, pool: asyncpg.Pool[Any], *, task_queue: str, slack: SlackContext
) -> FastAPI:
    """The API with its Slack routes on ``slack`` and the intake on the test's queue."""
    return create_app(
        ApiDeps(
            intake=IntakeService(client, task_queue=task_queue, policy=RoutingPolicy()),
            tickets=TicketStore(pool),
            intake_token="t",
            health_checks={},
            slack=slack,
        )
    )


def asgi_client(
    app: FastAPI, base_url: str = "http://api", *, headers: dict[str, str] | None = None
) -> httpx.AsyncClient:
    """An HTTP client calling ``app`` in this process: no server, no port."""
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url=base_url, headers=headers)


def router_client(router: APIRouter, base_url: str) -> httpx.AsyncClient:
    """An HTTP client of an app serving only ``router``, in this process."""
    app = FastAPI()
    app.include_router(router)
    return asgi_client(app, base_url)


@dataclass
class ChannelStack:
    """The API and a worker with one connected channel, and an HTTP client on the API."""

    http: httpx.AsyncClient
    client: Client
    pool: asyncpg.Pool[Any]
    deps: ApiDeps

    async def count(self, table: str) -> int:
        """Rows in ``table`` (a name of ours, never input)."""
        async with self.pool.acquire() as conn:
            n: int = await conn.fetchval(f"SELECT count(*) FROM {table}")
            return n


class ServedChannel(WebhookChannel, Protocol):
    """A connected channel (Zendesk, Intercom): its webhook, its deliveries, its API client."""

    async def aclose(self) -> None: ...


# The intake token of the tests' own API stacks (``api_deps``).
API_TOKEN = "test-intake-token"


async def serve_app(app: Any) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    """Serve ``app`` on a free loopback port; returns the server, its task and its base URL."""
    # A socket bound before the server starts: its port cannot be taken in between.
    sock = bound_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.05)
    return server, task, f"http://127.0.0.1:{port}"


# The dev server runs in real time: a solved ticket's reopen window lasts two seconds here.
QUICK_WINDOW = RoutingPolicy(reopen_window_seconds=2)


def api_deps(client: Client, pool: asyncpg.Pool[Any], task_queue: str) -> ApiDeps:
    """The API's dependencies on a test's client, pool and queue, with ``API_TOKEN``."""

    async def postgres_ok() -> None:
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 1")

    async def temporal_ok() -> None:
        await client.service_client.check_health()

    return ApiDeps(
        intake=IntakeService(client, task_queue=task_queue, policy=QUICK_WINDOW),
        tickets=TicketStore(pool),
        intake_token=API_TOKEN,
        health_checks={"temporal": temporal_ok, "postgres": postgres_ok},
    )


@asynccontextmanager
async def serve_channel(
    client: Client, pool: asyncpg.Pool[Any], task_queue: str, connected: ServedChannel
) -> AsyncIterator[ChannelStack]:
    """The API taking ``connected``'s webhook (``ApiDeps`` names it after its channel) and a
    worker delivering through it, until the block ends; then its API client is closed."""
    deps = api_deps(client, pool, task_queue)
    setattr(deps, connected.channel.value, connected)
    outside = Outside(channels={connected.channel: connected})  # type: ignore[dict-item]
    worker = build_worker(client, task_queue=task_queue, pool=pool, outside=outside)
    server, task, base = await serve_app(create_app(deps))
    try:
        async with worker, httpx.AsyncClient(base_url=base, timeout=30) as http:
            yield ChannelStack(http=http, client=client, pool=pool, deps=deps)
    finally:
        server.should_exit = True
        await task
        await connected.aclose()


def slack_signature(body: bytes, *, secret: str, timestamp: int | str) -> dict[str, str]:
    """Headers as Slack sends them, computed here independently of the code under test."""
    base = f"v0:{timestamp}:".encode() + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": f"v0={digest}"}


def slack_interaction(payload: dict[str, Any], *, secret: str) -> tuple[bytes, dict[str, str]]:
    """An interaction (button click, modal submission) as Slack posts it now: body, headers."""
    body = urlencode({"payload": json.dumps(payload)}).encode()
    signature = slack_signature(body, secret=secret, timestamp=int(time.time()))
    return body, {**signature, "Content-Type": "application/x-www-form-urlencoded"}


def slack_approvals(server: FakeSlackServer, *, channel: str = "C0APPROVALS") -> SlackApprovals:
    """Approval messages through the real slack_sdk client, to the local fake."""
    return SlackApprovals(
        AsyncWebClient(token=server.token, base_url=server.api_url), channel=channel
    )


def slack_incidents(
    server: FakeSlackServer, *, incident_channel: str, warning_channel: str | None = None
) -> SlackIncidents:
    """Incident (and SLA warning) messages through the real slack_sdk client, to the local fake."""
    return SlackIncidents(
        AsyncWebClient(token=server.token, base_url=server.api_url),
        incident_channel=incident_channel,
        warning_channel=warning_channel,
    )


def outbox_mails(outbox: Path) -> list[Message]:
    """The mails the ``OutboxMailer`` wrote to ``outbox`` (none yet: no folder), oldest first."""
    return [message_from_bytes(path.read_bytes()) for path in sorted(outbox.glob("*.eml"))]


def email_approvals(server: FakeSendGridServer, pool: asyncpg.Pool[Any]) -> EmailApprovals:
    """Approval mails through the real SendGrid client to the local fake; links in the DB."""
    return EmailApprovals(
        mailer=SendGridMailer(server.api_key, "autopilot@kruxt.app", host=server.base_url),
        tokens=ApprovalTokens(b"a-link-secret-that-is-long-enough-for-hmac"),
        token_store=EmailTokenStore(pool),
        public_url="http://127.0.0.1:8000",
    )


def approval_request(**overrides: Any) -> ApprovalRequest:
    """A pending plan approval: unlock Ana's account (P2), with a preview and a draft reply."""
    now = datetime(2025, 3, 4, 3, 0, tzinfo=UTC)
    fields: dict[str, Any] = {
        "approval_id": uuid.uuid4(),
        "ticket_id": uuid.uuid4(),
        "kind": ApprovalKind.PLAN,
        "plan_id": uuid.uuid4(),
        "playbook": "auth_login",
        "required_role": ApproverRole.APPROVER,
        "requester_email": "ana@example.com",
        "summary": "Ana cannot log in: account locked after 5 wrong passwords",
        "severity": Priority.P2,
        "confidence": 0.87,
        "plain_explanation": "Unlock Ana's account so she can sign in again.",
        "technical_explanation": "1. kruxt_admin.unlock_account('k', user_id => 'u1')",
        "rollback_plan": "Re-lock the account as it was.",
        "preview": [
            {"step": "unlock", "before": {"locked": True}, "after": {"locked": False}},
        ],
        "draft_reply": "Hi Ana, your account is unlocked: you can sign in again.",
        "requested_at": now,
        "expires_at": now + timedelta(minutes=45),
    }
    return ApprovalRequest(**(fields | overrides))


@dataclass
class RecordingDecider:
    """A ``Decider`` that records each decision it is asked for: the fields its channel set.

    Before it answers it waits for ``gate`` and ``delay_s``; then it refuses with ``refuse`` or
    raises ``crash`` when set, and otherwise decides as asked (at ``decided_at``, or now).
    """

    calls: list[dict[str, Any]] = field(default_factory=list)
    refuse: str | None = None
    crash: Exception | None = None
    gate: asyncio.Event | None = None
    delay_s: float = 0.0
    decided_at: datetime | None = None

    async def decide(self, attempt: DecisionAttempt) -> DecisionOutcome:
        """Record the attempt, then answer as configured."""
        call = {name: value for name, value in attempt if name in attempt.model_fields_set}
        self.calls.append(call)
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(self.delay_s)
        if self.refuse is not None:
            raise DecisionRefusedError(self.refuse)
        if self.crash is not None:
            raise self.crash
        approved = call["verdict"] is Verdict.APPROVE
        return DecisionOutcome(
            approval_id=call["approval_id"],
            status=ApprovalStatus.APPROVED if approved else ApprovalStatus.REJECTED,
            decided_by=call["approver_email"],
            decided_at=self.decided_at or datetime.now(UTC),
        )


async def posted_approval(pool: asyncpg.Pool[Any], slack: SlackApprovals) -> ApprovalRequest:
    """A pending plan approval of a stored ticket, already posted to Slack (long done)."""
    ticket = intake()
    await TicketStore(pool).persist_ticket(
        intake=ticket, workflow_id=f"ticket-{ticket.ticket_id}", idempotency_key="persist"
    )
    request = await pending_approval(pool, ticket.ticket_id)
    ref = await slack.post_request(request)
    await ApprovalStore(pool).set_slack_message(request.approval_id, channel=ref.channel, ts=ref.ts)
    return request


async def pending_approval(
    pool: asyncpg.Pool[Any], ticket_id: uuid.UUID, **overrides: Any
) -> ApprovalRequest:
    """``approval_request`` for a stored ticket, recorded as pending: requested now, an hour
    to decide, for an admin (unless ``overrides`` say otherwise)."""
    now = datetime.now(UTC)
    live = {
        "required_role": ApproverRole.ADMIN,
        "requested_at": now,
        "expires_at": now + timedelta(hours=1),
    }
    request = approval_request(ticket_id=ticket_id, **(live | overrides))
    await ApprovalStore(pool).record(
        record=ApprovalRecord(request=request, status=ApprovalStatus.PENDING),
        idempotency_key=f"request:{request.approval_id}",
    )
    return request


async def markers_and_upserts(handle: WorkflowHandle[Any, Any]) -> tuple[int, list[str]]:
    """The history's markers, and the search attribute each upsert wrote (in order)."""
    events = (await handle.fetch_history()).events
    markers = sum(1 for e in events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED)
    upserts = [
        e.upsert_workflow_search_attributes_event_attributes.search_attributes
        for e in events
        if e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    ]
    upserted = [key for attributes in upserts for key in attributes.indexed_fields]
    return markers, upserted


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float = 30.0, interval: float = 0.2
) -> T:
    """Poll until ``probe`` returns something truthy; fail after ``timeout`` seconds."""

    async def truthy() -> T | None:
        value = await probe()
        return value if value else None

    found = await until_found(truthy, within=timeout, every=interval)
    if found is None:
        raise AssertionError(f"condition not met within {timeout}s")
    return found


def login_outage(*, opened_at: datetime, first_ticket: AttachTicket | None = None) -> IncidentInput:
    """A P1 login incident as its workflow gets it (the default escalation policy)."""
    return IncidentInput(
        incident_id=uuid.uuid4(),
        key="auth_login:login api",
        priority=Priority.P1,
        category=Category.AUTH_LOGIN,
        title="Login API returns 500",
        first_ticket=first_ticket
        or AttachTicket(
            ticket_id=uuid.uuid4(), workflow_id="ticket-x", priority=Priority.P1, summary="500s"
        ),
        policy=default_escalation_policy(),
        opened_at=opened_at,
    )
