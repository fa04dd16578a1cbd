"""`kruxt kpi`: DESIGN.md's KPIs computed from the recorded events."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from kruxt.adapters.app_db import KruxtApp
from kruxt.adapters.approvers import Approver, ApproverDirectory
from kruxt.adapters.postgres import kpi
from kruxt.adapters.postgres.kpi_report import kpi_report
from kruxt.adapters.slack import (
    ACTION_APPROVE,
    ACTION_TRIAGE_WRONG,
    CATEGORY_ACTION,
    CATEGORY_BLOCK,
    NOTE_ACTION,
    NOTE_BLOCK,
    SEVERITY_ACTION,
    SEVERITY_BLOCK,
)
from kruxt.models.approvals import ApprovalStatus
from kruxt.models.enums import TicketStatus
from kruxt.models.playbooks import ApproverRole
from kruxt.models.tickets import (
    TicketIntake,
    workflow_id_for,
)
from kruxt.starter.cli import main as kruxt
from kruxt.workers.composition import Outside, build_worker
from tests.fakes.slack_server import FakeSlackServer
from tests.support import (
    SLACK_SIGNING_SECRET,
    api_with_slack,
    asgi_client,
    locked_ticket,
    slack_approvals,
    slack_context,
    slack_interaction,
    start_ticket,
    until_status,
)


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

CHANNEL = "C0APPROVALS"
MAYA = Approver(
    name="Maya", email="maya@kruxt.app", slack_user_id="U0MAYA", roles=[ApproverRole.ADMIN]
)


async def test_slack_decisions_land_as_triage_reviewed_kpi_events(
    ts_env: WorkflowEnvironment,
    db_dsn: str,
    pool: asyncpg.Pool[Any],
    task_queue: str,
    slack_server: FakeSlackServer,
    app: KruxtApp,
) -> None:
    """ "Triage wrong" in Slack: accepted=false with the correction; an approval: accepted=true.

    The real API Slack routes, ApprovalService, TicketWorkflow and ApprovalStore, and the
    real slack_sdk client against the fake Slack: nothing is inserted by hand.
    """
    approvers = ApproverDirectory([MAYA])
    slack = slack_approvals(slack_server, channel=CHANNEL)
    ctx = slack_context(ts_env.client, pool, approvers=approvers, slack=slack, view_budget_s=30.0)
    api = api_with_slack(ts_env.client, pool, task_queue=task_queue, slack=ctx)
    outside = Outside(app=app, approvers=approvers, slack=slack)
    async with (
        build_worker(ts_env.client, task_queue=task_queue, pool=pool, outside=outside),
        asgi_client(api) as http,
    ):

        async def click(action: str, ticket: TicketIntake) -> str:
            handle = await start_ticket(ts_env.client, ticket, task_queue=task_queue)
            state = await until_status(handle, TicketStatus.AWAITING_APPROVAL, timeout=60)
            approval_id = str(state.approvals[0].request.approval_id)
            body, headers = slack_interaction(
                {
                    "type": "block_actions",
                    "user": {"id": "U0MAYA"},
                    "trigger_id": "1.2.3",
                    "response_url": slack_server.response_url(action),
                    "actions": [{"action_id": action, "value": approval_id}],
                },
                secret=SLACK_SIGNING_SECRET,
            )
            r = await http.post("/slack/interactions", content=body, headers=headers)
            assert r.status_code == 200
            return approval_id

        # 1. "Triage wrong": the modal Slack was asked to open, submitted filled in.
        wrong = locked_ticket()
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
        submission = {"type": "view_submission", "user": {"id": "U0MAYA"}, "view": view}
        body, headers = slack_interaction(submission, secret=SLACK_SIGNING_SECRET)
        r = await http.post("/slack/interactions", content=body, headers=headers)
        assert r.status_code == 200 and r.content == b""  # the modal closes
        rejected = await until_status(
            ts_env.client.get_workflow_handle(workflow_id_for(wrong.ticket_id)),
            TicketStatus.AWAITING_HUMAN,
            timeout=60,
        )
        assert rejected.approvals[0].status is ApprovalStatus.REJECTED

        # 2. An approval as asked: the triage stood.
        right = locked_ticket()
        await click(ACTION_APPROVE, right)
        await until_status(
            ts_env.client.get_workflow_handle(workflow_id_for(right.ticket_id)),
            TicketStatus.AWAITING_CUSTOMER,
            timeout=60,
        )
        await ctx.drain()

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
