"""Small helpers for tests (not fixtures)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.client import Client, WorkflowHandle

from kruxt.activities.notifications import EmailApprovals
from kruxt.adapters.app_db import SUPPORT_ROLE, KruxtApp, install_app_schema
from kruxt.adapters.email import SendGridMailer
from kruxt.adapters.email_tokens import ApprovalTokens
from kruxt.adapters.postgres.approvals import ApprovalStore
from kruxt.adapters.postgres.email_tokens import EmailTokenStore
from kruxt.adapters.postgres.pool import connect, create_pool
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.adapters.slack import SlackApprovals
from kruxt.adapters.temporal_dev_server import TemporalDevServer
from kruxt.models.approvals import ApprovalKind, ApprovalRecord, ApprovalRequest, ApprovalStatus
from kruxt.models.enums import Channel, Priority
from kruxt.models.playbooks import ApproverRole
from kruxt.models.tickets import (
    Requester,
    RoutingPolicy,
    TicketIntake,
    TicketOutcome,
    TicketWorkflowInput,
    ticket_id_for,
    workflow_id_for,
)
from kruxt.workflows.ticket import TicketWorkflow
from tests.fakes.sendgrid_server import FakeSendGridServer
from tests.fakes.slack_server import FakeSlackServer

T = TypeVar("T")

# The SendGrid key the `sendgrid` fixture (tests/conftest.py) accepts.
SENDGRID_TEST_KEY = "SG.test-key"


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
async def demo_app(db_dsn: str, *, max_size: int = 3) -> AsyncIterator[KruxtApp]:
    """The demo KRUXT app (``u-locked`` and friends) in ``db_dsn``, through the support role.

    Installs the app's schema with its demo data, then yields the app on a pool of the
    support role, as the autopilot reaches it.
    """
    conn = await connect(db_dsn)
    try:
        await install_app_schema(conn, with_demo_data=True)
    finally:
        await conn.close()
    app_pool = await create_pool(db_dsn, max_size=max_size, role=SUPPORT_ROLE)
    try:
        yield KruxtApp(app_pool)
    finally:
        await app_pool.close()


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


def locked_ticket(**kw: Any) -> TicketIntake:
    """A ticket from a member whose demo account (``u-locked``) is locked: auth_login plans."""
    ticket = intake(
        subject="Account locked",
        body="I cannot log in, the app says my account is locked after too many attempts.",
        **kw,
    )
    return ticket.model_copy(update={"account_id": "u-locked"})


async def start_ticket(
    client: Client, ticket: TicketIntake, *, task_queue: str
) -> WorkflowHandle[Any, TicketOutcome]:
    """Start the ticket's workflow as the intake does, under the default routing policy."""
    return await client.start_workflow(
        TicketWorkflow.run,
        TicketWorkflowInput(intake=ticket, policy=RoutingPolicy()),
        id=workflow_id_for(ticket.ticket_id),
        task_queue=task_queue,
    )


def slack_approvals(server: FakeSlackServer, *, channel: str = "C0APPROVALS") -> SlackApprovals:
    """Approval messages through the real slack_sdk client, to the local fake."""
    return SlackApprovals(
        AsyncWebClient(token=server.token, base_url=server.api_url), channel=channel
    )


def email_approvals(server: FakeSendGridServer, pool: asyncpg.Pool[Any]) -> EmailApprovals:
    """Approval mails through the real SendGrid client to the local fake; links in the DB."""
    return EmailApprovals(
        mailer=SendGridMailer(server.api_key, "autopilot@kruxt.app", host=server.base_url),
        tokens=ApprovalTokens(b"a-link-secret-that-is-long-enough-for-hmac"),
        token_store=EmailTokenStore(pool),
        public_url="http://127.0.0.1:8000",
    )


async def posted_approval(pool: asyncpg.Pool[Any], slack: SlackApprovals) -> ApprovalRequest:
    """A pending plan approval of a stored ticket, already posted to Slack (long done)."""
    ticket = intake()
    await TicketStore(pool).persist_ticket(
        intake=ticket, workflow_id=f"ticket-{ticket.ticket_id}", idempotency_key="persist"
    )
    now = datetime.now(UTC)
    request = ApprovalRequest(
        approval_id=uuid.uuid4(),
        ticket_id=ticket.ticket_id,
        kind=ApprovalKind.PLAN,
        plan_id=uuid.uuid4(),
        playbook="auth_login",
        required_role=ApproverRole.ADMIN,
        requester_email="ana@example.com",
        summary="Ana cannot log in",
        severity=Priority.P2,
        confidence=0.9,
        plain_explanation="Unlock Ana's account.",
        technical_explanation="kruxt_admin.unlock_account",
        rollback_plan="Re-lock it.",
        requested_at=now,
        expires_at=now + timedelta(hours=1),
    )
    store = ApprovalStore(pool)
    await store.record(
        record=ApprovalRecord(request=request, status=ApprovalStatus.PENDING), idempotency_key="k"
    )
    ref = await slack.post_request(request)
    await store.set_slack_message(request.approval_id, channel=ref.channel, ts=ref.ts)
    return request


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float = 30.0, interval: float = 0.2
) -> T:
    """Poll until ``probe`` returns something truthy; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)
