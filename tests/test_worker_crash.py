"""A worker killed mid-ticket: a new worker finishes it, and nothing is written twice."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import asyncpg
import pytest
from temporalio.client import Client

from kruxt.adapters.app_db import SUPPORT_ROLE, KruxtApp, install_app_schema
from kruxt.adapters.postgres.pool import connect, create_pool
from kruxt.adapters.settings import PROJECT_ROOT
from kruxt.adapters.temporal_dev_server import TemporalDevServer
from kruxt.models.approvals import Decision, DecisionChannel, Verdict
from kruxt.models.enums import TicketStatus
from kruxt.models.playbooks import ApproverRole, RunStatus
from kruxt.models.tickets import (
    RoutingPolicy,
    TicketState,
    TicketWorkflowInput,
    workflow_id_for,
)
from kruxt.workers.composition import Outside, build_worker
from kruxt.workflows.ticket import TicketWorkflow
from tests.support import eventually, intake

pytestmark = pytest.mark.e2e


async def test_worker_killed_after_triage_was_recorded_records_it_once(
    dev_server: TemporalDevServer,
    dev_client: Client,
    db_dsn: str,
    pool: asyncpg.Pool[Any],
    task_queue: str,
) -> None:
    """The triage run committed with its audit entry and KPI, the worker died before reporting
    it done: the retry on a new worker finds the run under the same idempotency key and writes
    nothing again."""
    doomed = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.crash_worker",
        "record",
        dev_server.address,
        db_dsn,
        task_queue,
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert doomed.stdout is not None
    assert b"polling" in await asyncio.wait_for(doomed.stdout.readline(), 60)

    ticket = intake(subject="Cannot log in", body="Locked out of my account since this morning.")
    handle = await dev_client.start_workflow(
        TicketWorkflow.run,
        TicketWorkflowInput(intake=ticket, policy=RoutingPolicy()),
        id=workflow_id_for(ticket.ticket_id),
        task_queue=task_queue,
    )
    assert await asyncio.wait_for(doomed.wait(), 60) == -9  # SIGKILL, mid-activity

    triage_writes = """
        SELECT (SELECT count(*) FROM support_automation_runs WHERE agent = 'triage')
                   AS triage_runs,
               (SELECT count(*) FROM support_audit_log WHERE action = 'ticket.triaged')
                   AS triaged_audit,
               (SELECT count(*) FROM support_kpi_events WHERE event = 'triaged') AS triaged_kpi
    """
    async with pool.acquire() as conn:
        # It died after the triage run was committed, before Temporal heard of it.
        killed = await conn.fetchrow(triage_writes)
    assert killed is not None
    assert dict(killed) == {"triage_runs": 1, "triaged_audit": 1, "triaged_kpi": 1}

    async with build_worker(dev_client, task_queue=task_queue, pool=pool):

        async def settled() -> bool:
            state = await handle.query(TicketWorkflow.state)
            return state.status is TicketStatus.AWAITING_HUMAN

        await eventually(settled, timeout=90)

    async with pool.acquire() as conn:
        after = await conn.fetchrow(triage_writes)
        tickets = await conn.fetchval("SELECT count(*) FROM support_tickets")
    assert after is not None
    assert dict(after) == {"triage_runs": 1, "triaged_audit": 1, "triaged_kpi": 1}
    assert tickets == 1


async def test_worker_killed_mid_step_applies_it_once(
    dev_server: TemporalDevServer,
    dev_client: Client,
    db_dsn: str,
    pool: asyncpg.Pool[Any],
    task_queue: str,
) -> None:
    """The step committed in the app, the worker died before reporting it: the retry on a
    new worker finds the change under the same idempotency key and applies nothing again."""
    conn = await connect(db_dsn)
    try:
        await install_app_schema(conn, with_demo_data=True)
    finally:
        await conn.close()
    doomed = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.crash_worker",
        "step",
        dev_server.address,
        db_dsn,
        task_queue,
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert doomed.stdout is not None
    assert b"polling" in await asyncio.wait_for(doomed.stdout.readline(), 60)

    ticket = intake(subject="Locked", body="My account is locked, I cannot log in.")
    ticket = ticket.model_copy(update={"account_id": "u-locked"})
    handle = await dev_client.start_workflow(
        TicketWorkflow.run,
        TicketWorkflowInput(intake=ticket, policy=RoutingPolicy()),
        id=workflow_id_for(ticket.ticket_id),
        task_queue=task_queue,
    )

    async def awaiting_approval() -> TicketState | None:
        state: TicketState = await handle.query(TicketWorkflow.state)
        return state if state.status is TicketStatus.AWAITING_APPROVAL else None

    state = await eventually(awaiting_approval, timeout=60)
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
    assert await asyncio.wait_for(doomed.wait(), 60) == -9  # killed after the step applied

    app_pool = await create_pool(db_dsn, max_size=2, role=SUPPORT_ROLE)
    try:
        async with build_worker(
            dev_client, task_queue=task_queue, pool=pool, outside=Outside(app=KruxtApp(app_pool))
        ):

            async def finished() -> TicketState | None:
                s: TicketState = await handle.query(TicketWorkflow.state)
                return s if s.status is TicketStatus.AWAITING_CUSTOMER else None

            done = await eventually(finished, timeout=120)
    finally:
        await app_pool.close()
    assert done.runs[0].status is RunStatus.SUCCEEDED
    # As the owner: the app schema shares the test database, and the runtime role has no
    # business reading kruxt_admin.
    db = await connect(db_dsn)
    try:
        applied = await db.fetchval(
            "SELECT count(*) FROM kruxt_admin.applied_changes WHERE function = 'unlock_account'"
        )
        step_rows = await db.fetchval("SELECT count(*) FROM support_playbook_run_steps")
        updates = await db.fetchval(
            "SELECT count(*) FROM support_ticket_messages WHERE kind = 'playbook_update'"
        )
    finally:
        await db.close()
    assert (applied, step_rows, updates) == (1, 1, 1)
