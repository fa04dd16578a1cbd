"""The Temporal dev server restarted (its data kept) while tickets wait on approvals.

The server is this test's own (``temporal server start-dev --db-filename``): stopped with
SIGTERM and started again on the same file and port. The worker, the API and the client that
decides approvals are the ones that were connected before; they reconnect by themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.client import Client

from kruxt.adapters.app_db import KruxtApp
from kruxt.adapters.temporal_client import connect
from kruxt.adapters.temporal_dev_server import TemporalDevServer
from kruxt.models.enums import TicketStatus
from kruxt.models.playbooks import RunStatus
from kruxt.models.tickets import TicketOutcome
from kruxt.starter.api.app import create_app
from kruxt.workers.composition import Outside, build_worker
from tests.conftest import run_payload_codec
from tests.scenarios import APPROVERS
from tests.support import (
    API_TOKEN,
    api_deps,
    approve_first,
    connection,
    resolve,
    serve_app,
    ticket_body,
    until_status,
)
from tests.test_faults_postgres import ledger

pytestmark = pytest.mark.e2e

# One ticket per playbook the demo app can fix: (account, subject, body) -> the app's change.
TICKETS = {
    "unlock_account": (
        "u-locked",
        "Account locked",
        "I cannot log in, the app says my account is locked after too many attempts.",
    ),
    "mark_reauth_required": (
        "u-garmin",
        "Garmin stopped syncing",
        "My Garmin workouts no longer sync.",
    ),
    "reset_sync_cursor": (
        "u-apple-stale",
        "Apple Health stopped syncing",
        "My Apple Health workouts stopped syncing a week ago.",
    ),
}


@pytest.fixture
async def own_temporal(tmp_path: Path) -> AsyncIterator[TemporalDevServer]:
    """A dev server of this test's own, its state in a file."""
    server = TemporalDevServer(port=0, ui_port=None, db_file=tmp_path / "temporal.db")
    await server.launch()
    try:
        yield server
    finally:
        server.stop()


async def restart(server: TemporalDevServer, http: httpx.AsyncClient) -> None:
    """Stop the server (SIGTERM) and start it again on the same port and file; while it is
    down the API says so (503), and refuses new tickets rather than lose them."""
    # In a thread: the worker and the API keep running on this event loop meanwhile.
    await asyncio.to_thread(server.stop)
    assert server.process is not None and server.process.poll() is not None
    health = await http.get("/healthz")
    assert health.status_code == 503 and "temporal" in health.text
    assert (await http.post("/v1/tickets", json=ticket_body())).status_code == 503
    server.start()
    await server.wait_ready()


# Slow (about 25 s with its own server): `make test-slow`, which CI runs after `make test`.
@pytest.mark.slow
async def test_temporal_restarted_while_tickets_wait_on_approval(
    own_temporal: TemporalDevServer,
    db_dsn: str,
    pool: asyncpg.Pool[Any],
    app: KruxtApp,
    task_queue: str,
) -> None:
    """Three tickets wait on approvals; the server restarts; the same client approves them,
    the same worker runs the fixes and the tickets finish: each fix applied once, each
    ticket and approval once, one run of each workflow."""
    client: Client = await connect(own_temporal.address, payload_codec=run_payload_codec())
    outside = Outside(app=app, approvers=APPROVERS)
    server, serving, base = await serve_app(create_app(api_deps(client, pool, task_queue)))
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    try:
        async with (
            build_worker(client, task_queue=task_queue, pool=pool, outside=outside),
            httpx.AsyncClient(base_url=base, headers=auth, timeout=30) as http,
        ):
            ids = []
            for account, subject, body in TICKETS.values():
                answer = await http.post(
                    "/v1/tickets",
                    json=ticket_body(account_id=account, subject=subject, body=body),
                )
                assert answer.status_code == 202
                ids.append(answer.json()["workflow_id"])
            handles = [client.get_workflow_handle(i, result_type=TicketOutcome) for i in ids]
            for handle in handles:
                await until_status(handle, TicketStatus.AWAITING_APPROVAL, timeout=60)

            await restart(own_temporal, http)

            assert (await http.get("/healthz")).status_code == 200
            for handle in handles:
                state = await until_status(handle, TicketStatus.AWAITING_APPROVAL, timeout=60)
                await approve_first(handle, state)
            for handle in handles:
                done = await until_status(handle, TicketStatus.AWAITING_CUSTOMER, timeout=60)
                assert [r.status for r in done.runs] == [RunStatus.SUCCEEDED]
            outcomes = await asyncio.gather(*(resolve(h) for h in handles))
            # A new ticket after the restart: the API's client reconnected too.
            late = await http.post("/v1/tickets", json=ticket_body())
            assert late.status_code == 202
            late_ticket = client.get_workflow_handle(late.json()["workflow_id"])
            await until_status(late_ticket, TicketStatus.AWAITING_CUSTOMER, timeout=60)
    finally:
        server.should_exit = True
        await serving

    assert [o.status for o in outcomes] == [TicketStatus.RESOLVED] * 3
    assert sorted(await ledger(db_dsn)) == sorted(TICKETS)
    for workflow_id in ids:
        runs = [w async for w in client.list_workflows(f'WorkflowId = "{workflow_id}"')]
        assert len(runs) == 1
    async with connection(db_dsn) as db:
        tickets = await db.fetchval("SELECT count(*) FROM support_tickets")
        decided = await db.fetch(
            "SELECT ticket_id, status FROM support_approvals ORDER BY ticket_id"
        )
        customers = await db.fetchval(
            "SELECT count(*) FROM support_ticket_messages WHERE kind = 'customer'"
        )
    assert tickets == 4  # the three and the late one
    assert customers == 4
    assert sorted(r["status"] for r in decided) == ["approved"] * 3
    assert len({r["ticket_id"] for r in decided}) == 3
