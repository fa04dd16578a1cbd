"""`kruxt kpi`: DESIGN.md's KPIs computed from the recorded events."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
import pytest
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from kruxt.adapters.app_db import SUPPORT_ROLE, KruxtApp, install_app_schema
from kruxt.adapters.approvers import Approver, ApproverDirectory
from kruxt.adapters.postgres import kpi
from kruxt.adapters.postgres.approvals import ApprovalStore
from kruxt.adapters.postgres.kpi_report import kpi_report
from kruxt.adapters.postgres.pool import connect, create_pool
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.adapters.slack import (
    ACTION_APPROVE,
    ACTION_TRIAGE_WRONG,
    CATEGORY_ACTION,
    CATEGORY_BLOCK,
    NOTE_ACTION,
    NOTE_BLOCK,
    SEVERITY_ACTION,
    SEVERITY_BLOCK,
    SlackApprovals,
)
from kruxt.models.approvals import ApprovalStatus
from kruxt.models.enums import TicketStatus
from kruxt.models.playbooks import ApproverRole
from kruxt.models.tickets import (
    RoutingPolicy,
    TicketIntake,
    TicketState,
    TicketWorkflowInput,
    workflow_id_for,
)
from kruxt.starter.api.app import ApiDeps, create_app
from kruxt.starter.api.slack_routes import SlackContext
from kruxt.starter.approvals import ApprovalService
from kruxt.starter.cli import main as kruxt
from kruxt.starter.intake import IntakeService
from kruxt.workers.composition import Outside, build_worker
from kruxt.workflows.ticket import TicketWorkflow
from tests.fakes.slack_server import FakeSlackServer
from tests.support import eventually, intake


async def _seed(pool: asyncpg.Pool[Any]) -> None:
    async with pool.acquire() as conn:
        events: list[tuple[str, str | None, float | None, dict[str, Any]]] = [
            ("ticket_opened", None, None, {}),
            ("ticket_opened", None, None, {}),
            ("ticket_opened", None, None, {}),
            ("first_response", "P1", 60.0, {}),
            ("first_response", "P1", 600.0, {}),
            ("first_response", "P4", 30.0, {}),
            ("resolved", "P1", 3600.0, {}),
            ("triage_reviewed", "P1", None, {"accepted": True}),
            ("triage_reviewed", "P2", None, {"accepted": True}),
            ("triage_reviewed", "P2", None, {"accepted": True}),
            ("triage_reviewed", "P3", None, {"accepted": False}),
            ("sla_met", "P1", 60.0, {"clock": "first_response"}),
            ("sla_breached", "P1", 120.0, {"clock": "first_response"}),
        ]
        for event, priority, seconds, details in events:
            await kpi.emit(
                conn,
                event=event,
                ticket_id=None,
                idempotency_key=uuid.uuid4().hex,
                priority=priority,
                value_seconds=seconds,
                details=details,
            )


async def test_report_figures(pool: asyncpg.Pool[Any]) -> None:
    await _seed(pool)
    report = await kpi_report(pool, days=7)
    assert (report.tickets_opened, report.tickets_resolved) == (3, 1)
    assert report.acceptance_rate == 0.75
    p1 = next(r for r in report.first_response if r.priority == "P1")
    assert p1.count == 2
    assert p1.median_seconds == 330.0
    assert [(o.clock, o.met, o.breached) for o in report.sla] == [("first_response", 1, 1)]


async def test_cli_prints_the_report(
    pool: asyncpg.Pool[Any],
    db_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await _seed(pool)
    monkeypatch.setenv("DATABASE_URL", db_dsn)
    assert await asyncio.to_thread(kruxt, ["kpi", "--days", "30"]) == 0
    out = capsys.readouterr().out
    assert "AI triage acceptance        75% (3/4; target > 70%)" in out
    assert "first_response  met 1    breached 1" in out


# -- the real path: a Slack decision to support_kpi_events --------------------------------

SIGNING_SECRET = "slack-signing-secret-for-tests"
CHANNEL = "C0APPROVALS"
MAYA = Approver(
    name="Maya", email="maya@kruxt.app", slack_user_id="U0MAYA", roles=[ApproverRole.ADMIN]
)


def _signed(payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The form body Slack posts, signed as Slack signs it (v0, HMAC-SHA256)."""
    body = urlencode({"payload": json.dumps(payload)}).encode()
    timestamp = str(int(time.time()))
    digest = hmac.new(
        SIGNING_SECRET.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256
    ).hexdigest()
    return body, {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


async def test_slack_decisions_land_as_triage_reviewed_kpi_events(
    ts_env: WorkflowEnvironment,
    db_dsn: str,
    pool: asyncpg.Pool[Any],
    task_queue: str,
) -> None:
    """ "Triage wrong" in Slack: accepted=false with the correction; an approval: accepted=true.

    The real API Slack routes, ApprovalService, TicketWorkflow and ApprovalStore, and the
    real slack_sdk client against the fake Slack: nothing is inserted by hand.
    """
    conn = await connect(db_dsn)
    try:
        await install_app_schema(conn, with_demo_data=True)
    finally:
        await conn.close()
    approvers = ApproverDirectory([MAYA])
    store = ApprovalStore(pool)
    service = ApprovalService(ts_env.client, approvers=approvers, store=store)
    with FakeSlackServer() as slack_server:
        slack = SlackApprovals(
            AsyncWebClient(token=slack_server.token, base_url=slack_server.api_url),
            channel=CHANNEL,
        )
        ctx = SlackContext(
            signing_secret=SIGNING_SECRET,
            approvers=approvers,
            decider=service,
            slack=slack,
            audit_refusal=service.audit_slack_stranger,
            view_budget_s=30.0,
        )
        api = create_app(
            ApiDeps(
                intake=IntakeService(ts_env.client, task_queue=task_queue, policy=RoutingPolicy()),
                tickets=TicketStore(pool),
                intake_token="t",
                health_checks={},
                slack=ctx,
            )
        )
        app_pool = await create_pool(db_dsn, max_size=3, role=SUPPORT_ROLE)
        outside = Outside(app=KruxtApp(app_pool), approvers=approvers, slack=slack)
        try:
            async with (
                build_worker(ts_env.client, task_queue=task_queue, pool=pool, outside=outside),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=api), base_url="http://api"
                ) as http,
            ):

                async def click(action: str, ticket: TicketIntake) -> str:
                    handle = await _start(ts_env, task_queue, ticket)
                    state = await _until(handle, TicketStatus.AWAITING_APPROVAL)
                    approval_id = str(state.approvals[0].request.approval_id)
                    body, headers = _signed(
                        {
                            "type": "block_actions",
                            "user": {"id": "U0MAYA"},
                            "trigger_id": "1.2.3",
                            "response_url": slack_server.response_url(action),
                            "actions": [{"action_id": action, "value": approval_id}],
                        }
                    )
                    r = await http.post("/slack/interactions", content=body, headers=headers)
                    assert r.status_code == 200
                    return approval_id

                # 1. "Triage wrong": the modal Slack was asked to open, submitted filled in.
                wrong = _ticket()
                await click(ACTION_TRIAGE_WRONG, wrong)
                [opened] = slack_server.calls_to("views.open")
                view = {
                    **opened.body["view"],
                    "state": {
                        "values": {
                            SEVERITY_BLOCK: {SEVERITY_ACTION: {"selected_option": {"value": "P1"}}},
                            CATEGORY_BLOCK: {
                                CATEGORY_ACTION: {"selected_option": {"value": "billing_invoice"}}
                            },
                            NOTE_BLOCK: {NOTE_ACTION: {"value": "an invoice question"}},
                        }
                    },
                }
                body, headers = _signed(
                    {"type": "view_submission", "user": {"id": "U0MAYA"}, "view": view}
                )
                r = await http.post("/slack/interactions", content=body, headers=headers)
                assert r.status_code == 200 and r.content == b""  # the modal closes
                rejected = await _until(
                    ts_env.client.get_workflow_handle(workflow_id_for(wrong.ticket_id)),
                    TicketStatus.AWAITING_HUMAN,
                )
                assert rejected.approvals[0].status is ApprovalStatus.REJECTED

                # 2. An approval as asked: the triage stood.
                right = _ticket()
                await click(ACTION_APPROVE, right)
                await _until(
                    ts_env.client.get_workflow_handle(workflow_id_for(right.ticket_id)),
                    TicketStatus.AWAITING_CUSTOMER,
                )
                await ctx.drain()
        finally:
            await app_pool.close()

    async with pool.acquire() as db:
        rows = await db.fetch(
            "SELECT ticket_id, priority, details FROM support_kpi_events "
            "WHERE event = 'triage_reviewed' ORDER BY id"
        )
    reviewed = {r["ticket_id"]: r for r in rows}
    assert set(reviewed) == {wrong.ticket_id, right.ticket_id}
    assert reviewed[wrong.ticket_id]["details"] == {
        "accepted": False,
        "correction": {"severity": "P1", "category": "billing_invoice"},
    }
    assert reviewed[right.ticket_id]["details"] == {"accepted": True, "correction": None}
    # The triage's own severity is what was reviewed.
    assert rejected.triage is not None
    assert reviewed[wrong.ticket_id]["priority"] == rejected.triage.severity.value
    report = await kpi_report(pool, days=1)
    assert (report.triage_accepted, report.triage_reviewed) == (1, 2)


def _ticket() -> TicketIntake:
    ticket = intake(
        subject="Account locked",
        body="I cannot log in, the app says my account is locked after too many attempts.",
    )
    return ticket.model_copy(update={"account_id": "u-locked"})


async def _start(
    ts_env: WorkflowEnvironment, task_queue: str, ticket: TicketIntake
) -> WorkflowHandle[Any, Any]:
    return await ts_env.client.start_workflow(
        TicketWorkflow.run,
        TicketWorkflowInput(intake=ticket, policy=RoutingPolicy()),
        id=workflow_id_for(ticket.ticket_id),
        task_queue=task_queue,
    )


async def _until(handle: WorkflowHandle[Any, Any], status: TicketStatus) -> TicketState:
    async def probe() -> TicketState | None:
        state: TicketState = await handle.query(TicketWorkflow.state)
        return state if state.status is status else None

    return await eventually(probe, timeout=60)
