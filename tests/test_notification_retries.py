"""Approval notifications retried after a partial success send nothing twice: a real worker,
the real SendGrid and Slack clients against the local fakes, the real token table."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from kruxt.activities.notifications import EmailApprovals, NotificationActivities
from kruxt.adapters.app_db import SUPPORT_ROLE, KruxtApp, install_app_schema
from kruxt.adapters.approvers import Approver, ApproverDirectory
from kruxt.adapters.email import SendGridMailer
from kruxt.adapters.email_tokens import ApprovalTokens
from kruxt.adapters.postgres.approvals import ApprovalStore
from kruxt.adapters.postgres.email_tokens import EmailTokenStore
from kruxt.adapters.postgres.pool import connect, create_pool
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.adapters.slack import SlackApprovals
from kruxt.models.approvals import (
    ApprovalKind,
    ApprovalRecord,
    ApprovalRequest,
    ApprovalStatus,
    NotifyApprovers,
)
from kruxt.models.enums import Priority, TicketStatus
from kruxt.models.playbooks import ApproverRole
from kruxt.models.tickets import RoutingPolicy, TicketState, TicketWorkflowInput, workflow_id_for
from kruxt.workers.composition import Outside, build_worker
from kruxt.workflows.ticket import TicketWorkflow
from tests.fakes.sendgrid_server import FakeSendGridServer
from tests.fakes.slack_server import FakeSlackServer
from tests.support import eventually, intake

KEY = "SG.test-key"
# The requester of the ticket is staff too, and spells her address differently there.
APPROVERS = ApproverDirectory(
    [
        Approver(name="Maya", email="maya@kruxt.app", roles=[ApproverRole.ADMIN]),
        Approver(name="Sam", email="sam@kruxt.app", roles=[ApproverRole.ADMIN]),
        Approver(name="Ana", email="ana@example.com", roles=[ApproverRole.ADMIN]),
    ]
)


@pytest.fixture
def sendgrid() -> Iterator[FakeSendGridServer]:
    with FakeSendGridServer(api_key=KEY) as server:
        yield server


@pytest.fixture
def slack_server() -> Iterator[FakeSlackServer]:
    with FakeSlackServer() as server:
        yield server


@pytest.fixture
async def app(db_dsn: str) -> AsyncIterator[KruxtApp]:
    conn = await connect(db_dsn)
    try:
        await install_app_schema(conn, with_demo_data=True)
    finally:
        await conn.close()
    app_pool = await create_pool(db_dsn, max_size=3, role=SUPPORT_ROLE)
    try:
        yield KruxtApp(app_pool)
    finally:
        await app_pool.close()


async def test_a_retry_after_a_partial_send_mails_nobody_twice(
    ts_env: WorkflowEnvironment,
    pool: asyncpg.Pool[Any],
    task_queue: str,
    app: KruxtApp,
    sendgrid: FakeSendGridServer,
    slack_server: FakeSlackServer,
) -> None:
    # Maya's mail goes out, Sam's fails once: the activity fails after a partial success.
    sendgrid.fail(503, after=1)
    outside = Outside(
        app=app,
        approvers=APPROVERS,
        slack=SlackApprovals(
            AsyncWebClient(token=slack_server.token, base_url=slack_server.api_url),
            channel="C0APPROVALS",
        ),
        email=EmailApprovals(
            mailer=SendGridMailer(KEY, "autopilot@kruxt.app", host=sendgrid.base_url),
            tokens=ApprovalTokens(b"a-link-secret-that-is-long-enough-for-hmac"),
            token_store=EmailTokenStore(pool),
            public_url="http://127.0.0.1:8000",
        ),
    )
    ticket = intake(
        subject="Account locked",
        body="I cannot log in, the app says my account is locked after too many attempts.",
        email="Ana@Example.com",
    ).model_copy(update={"account_id": "u-locked"})
    async with build_worker(ts_env.client, task_queue=task_queue, pool=pool, outside=outside):
        handle = await ts_env.client.start_workflow(
            TicketWorkflow.run,
            TicketWorkflowInput(intake=ticket, policy=RoutingPolicy()),
            id=workflow_id_for(ticket.ticket_id),
            task_queue=task_queue,
        )

        async def announced() -> TicketState | None:
            state: TicketState = await handle.query(TicketWorkflow.state)
            ok = state.status is TicketStatus.AWAITING_APPROVAL and len(sendgrid.sent) >= 2
            return state if ok else None

        await eventually(announced, timeout=60)

        async def notified() -> bool:
            async with pool.acquire() as conn:
                sent = await conn.fetchval(
                    "SELECT count(*) FROM support_audit_log WHERE action = 'approval.sent'"
                )
            return bool(sent)

        await eventually(notified, timeout=60)
        await handle.terminate("test over")

    recipients = sorted(
        to["email"] for mail in sendgrid.sent for p in mail["personalizations"] for to in p["to"]
    )
    # One mail each; the requester (same address, other case) gets none.
    assert recipients == ["maya@kruxt.app", "sam@kruxt.app"]
    assert [r.status for r in sendgrid.requests] == [202, 503, 202]
    async with pool.acquire() as conn:
        tokens = await conn.fetch(
            "SELECT approver, verdict FROM support_email_tokens ORDER BY approver, verdict"
        )
    # One set of links per person: the retry minted none for Maya.
    assert [(t["approver"], t["verdict"]) for t in tokens] == [
        ("maya@kruxt.app", "approve"),
        ("maya@kruxt.app", "reject"),
        ("sam@kruxt.app", "approve"),
        ("sam@kruxt.app", "reject"),
    ]
    assert len(slack_server.calls_to("chat.postMessage")) == 1


async def test_a_retried_reminder_is_not_posted_or_mailed_twice(
    pool: asyncpg.Pool[Any], sendgrid: FakeSendGridServer, slack_server: FakeSlackServer
) -> None:
    """The same activity execution run twice (a retry): the second sends only what failed."""
    slack = SlackApprovals(
        AsyncWebClient(token=slack_server.token, base_url=slack_server.api_url),
        channel="C0APPROVALS",
    )
    store = ApprovalStore(pool)
    acts = NotificationActivities(
        approvals=store,
        approvers=APPROVERS,
        slack=slack,
        email=EmailApprovals(
            mailer=SendGridMailer(KEY, "autopilot@kruxt.app", host=sendgrid.base_url),
            tokens=ApprovalTokens(b"a-link-secret-that-is-long-enough-for-hmac"),
            token_store=EmailTokenStore(pool),
            public_url="http://127.0.0.1:8000",
        ),
    )
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
    await store.record(
        record=ApprovalRecord(request=request, status=ApprovalStatus.PENDING), idempotency_key="k"
    )
    ref = await slack.post_request(request)  # the first notification, long done
    await store.set_slack_message(request.approval_id, channel=ref.channel, ts=ref.ts)
    reminder = NotifyApprovers(request=request, level=1, reminder=True)
    env = ActivityEnvironment()  # one activity execution: the same identity on each attempt
    sendgrid.fail(503, after=1)
    with pytest.raises(ApplicationError):
        await env.run(acts.notify_approvers, reminder)
    await env.run(acts.notify_approvers, reminder)

    threaded = [c for c in slack_server.calls_to("chat.postMessage") if c.body.get("thread_ts")]
    assert len(threaded) == 1
    recipients = [
        to["email"] for m in sendgrid.sent for p in m["personalizations"] for to in p["to"]
    ]
    assert sorted(recipients) == ["maya@kruxt.app", "sam@kruxt.app"]
