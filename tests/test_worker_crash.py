"""A worker killed mid-ticket: a new worker finishes it, and nothing is written twice."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import asyncpg
import pytest
from temporalio.client import Client

from kruxt.adapters.settings import PROJECT_ROOT
from kruxt.adapters.temporal_dev_server import TemporalDevServer
from kruxt.models.enums import TicketStatus
from kruxt.models.tickets import RoutingPolicy, TicketWorkflowInput, workflow_id_for
from kruxt.workers.composition import build_worker
from kruxt.workflows.ticket import TicketWorkflow
from tests.support import eventually, intake

pytestmark = pytest.mark.e2e


async def test_worker_killed_before_triage_finished(
    dev_server: TemporalDevServer,
    dev_client: Client,
    db_dsn: str,
    pool: asyncpg.Pool[Any],
    task_queue: str,
) -> None:
    doomed = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.crash_worker",
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

    async with pool.acquire() as conn:
        # It died after the ticket was stored and before triage was recorded.
        assert await conn.fetchval("SELECT count(*) FROM support_tickets") == 1
        assert await conn.fetchval("SELECT count(*) FROM support_automation_runs") == 0

    async with build_worker(dev_client, task_queue=task_queue, pool=pool):

        async def settled() -> bool:
            state = await handle.query(TicketWorkflow.state)
            return state.status is TicketStatus.AWAITING_HUMAN

        await eventually(settled, timeout=90)

    async with pool.acquire() as conn:
        counts = await conn.fetchrow(
            """
            SELECT (SELECT count(*) FROM support_tickets) AS tickets,
                   (SELECT count(*) FROM support_ticket_messages WHERE direction = 'inbound')
                       AS inbound,
                   (SELECT count(*) FROM support_automation_runs WHERE agent = 'triage')
                       AS triage_runs,
                   (SELECT count(*) FROM support_audit_log WHERE action = 'ticket.received')
                       AS received,
                   (SELECT count(*) FROM support_kpi_events WHERE event = 'ticket_opened')
                       AS opened
            """
        )
    assert counts is not None
    assert dict(counts) == {
        "tickets": 1,
        "inbound": 1,
        "triage_runs": 1,
        "received": 1,
        "opened": 1,
    }
