"""A worker killed mid-ticket: a new worker finishes it, and nothing is written twice."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from temporalio.client import Client

from kruxt.adapters.app_db import KruxtApp
from kruxt.adapters.postgres.pool import connect
from kruxt.adapters.temporal_dev_server import TemporalDevServer
from kruxt.models.enums import TicketStatus
from kruxt.models.playbooks import RunStatus
from kruxt.workers.composition import Outside, build_worker
from tests.sagas import spawn_worker
from tests.support import approve_first, intake, start_ticket, until_status

pytestmark = pytest.mark.e2e


async def doomed_worker(
    mode: str, dev_server: TemporalDevServer, db_dsn: str, task_queue: str
) -> asyncio.subprocess.Process:
    """``tests.crash_worker`` in a subprocess, polling the queue; it kills itself (see there)."""
    return await spawn_worker("tests.crash_worker", mode, dev_server.address, db_dsn, task_queue)


async def test_worker_killed_after_triage_was_recorded_records_it_once(
    dev_server: TemporalDevServer,
    dev_client: Client,
    db_dsn: str,
    pool: asyncpg.Pool[Any],
    task_queue: str,
    app: KruxtApp,  # the doomed worker reaches the app as its support role, which this installs
) -> None:
    """The triage run committed with its audit entry and KPI, the worker died before reporting
    it done: the retry on a new worker finds the run under the same idempotency key and writes
    nothing again."""
    doomed = await doomed_worker("record", dev_server, db_dsn, task_queue)
    ticket = intake(subject="Cannot log in", body="Locked out of my account since this morning.")
    handle = await start_ticket(dev_client, ticket, task_queue=task_queue)
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
        await until_status(handle, TicketStatus.AWAITING_HUMAN, timeout=90)

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
    app: KruxtApp,
) -> None:
    """The step committed in the app, the worker died before reporting it: the retry on a
    new worker finds the change under the same idempotency key and applies nothing again."""
    doomed = await doomed_worker("step", dev_server, db_dsn, task_queue)
    ticket = intake(subject="Locked", body="My account is locked, I cannot log in.")
    ticket = ticket.model_copy(update={"account_id": "u-locked"})
    handle = await start_ticket(dev_client, ticket, task_queue=task_queue)
    state = await until_status(handle, TicketStatus.AWAITING_APPROVAL, timeout=60)
    await approve_first(handle, state)
    assert await asyncio.wait_for(doomed.wait(), 60) == -9  # killed after the step applied

    outside = Outside(app=app)
    async with build_worker(dev_client, task_queue=task_queue, pool=pool, outside=outside):
        done = await until_status(handle, TicketStatus.AWAITING_CUSTOMER, timeout=120)
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
