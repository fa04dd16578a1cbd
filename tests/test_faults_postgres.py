"""PostgreSQL restarted mid-saga and mid-intake: the activities retry, nothing is lost or doubled.

The tests own their PostgreSQL (an embedded server of this module's, not the session's), so
they can stop and start it. To restart it at a known point, the test holds a lock the next
write needs (a row of the app, or a table of the support schema); once a worker's transaction
waits on it, that session is ended, the server is stopped (a fast shutdown: every session
ends, open transactions roll back) and started again on the same data. The worker and the API
are the real ones, in this process, on pools that reconnect; only their activities' retries
bring the work back.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio import activity
from temporalio.client import Client

from kruxt.activities.playbooks.activities import PlaybookActivities
from kruxt.adapters.app_db import KruxtApp
from kruxt.adapters.embedded_postgres import EmbeddedPostgres, with_database
from kruxt.adapters.postgres.playbook_runs import PlaybookRunStore
from kruxt.models.enums import TicketStatus
from kruxt.models.playbooks import RunStatus, StepResult, StepRun
from kruxt.starter.api.app import create_app
from kruxt.workers.composition import activity_executor, build_worker
from tests.conftest import migrate, runtime
from tests.sagas import StandIns, worker_with_stand_ins
from tests.support import (
    API_TOKEN,
    api_deps,
    approve_first,
    connection,
    demo_app,
    eventually,
    intake,
    pool_on,
    serve_app,
    start_ticket,
    ticket_body,
    until_status,
)
from tests.test_faults_worker_kills import NEVER, ONE_SAGA, app_state, dying, plan_three_steps

pytestmark = pytest.mark.e2e

GARMIN_ROW = "SELECT 1 FROM kruxt_app.integration_connections WHERE id = 'conn-garmin-expired' "
# Locks a test takes so that the next write waits inside PostgreSQL, mid-transaction.
LOCK_GARMIN = GARMIN_ROW + "FOR UPDATE"  # the app's change of step s1 (and of its undo)
LOCK_STEP_RECORDS = "LOCK TABLE support_playbook_run_steps IN EXCLUSIVE MODE"
LOCK_TICKETS = "LOCK TABLE support_tickets IN EXCLUSIVE MODE"


class RestartablePostgres:
    """An embedded PostgreSQL this module owns: stopped and started on the same data."""

    def __init__(self, root: Path) -> None:
        self._server = EmbeddedPostgres(root / "pg")
        self.admin_dsn = self._server.start()

    async def stop(self) -> None:
        """Stop it (``pg_ctl stop``, fast: sessions end, open transactions roll back)."""
        # In a thread: the worker and the API keep running on this event loop meanwhile.
        await asyncio.to_thread(self._server.stop)

    async def start(self) -> None:
        """Start it again on the same data, at the same address."""
        assert await asyncio.to_thread(self._server.start) == self.admin_dsn

    async def restart(self) -> None:
        """Stop and start."""
        await self.stop()
        await self.start()

    def close(self) -> None:
        """Stop it for good."""
        self._server.stop()


@pytest.fixture(scope="module")
def own_pg() -> Iterator[RestartablePostgres]:
    # A short path: the server's Unix socket lives in it.
    root = Path(tempfile.mkdtemp(prefix="kx-pgr-"))
    server = RestartablePostgres(root)
    try:
        yield server
    finally:
        server.close()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Stack:
    """A migrated database with the demo app on ``own_pg``: its owner DSN and runtime pool."""

    dsn: str
    pool: asyncpg.Pool[Any]
    app: KruxtApp


@pytest.fixture
async def stack(own_pg: RestartablePostgres) -> AsyncIterator[Stack]:
    # Never dropped (the connection that would drop it does not outlive a restart): the
    # server goes with the module.
    name = f"kruxt_pgr_{uuid.uuid4().hex[:12]}"
    async with connection(own_pg.admin_dsn) as admin:
        await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = with_database(own_pg.admin_dsn, name)
    await migrate(dsn)
    async with demo_app(dsn) as app, pool_on(runtime(dsn), max_size=10) as pool:
        yield Stack(dsn, pool, app)


@asynccontextmanager
async def holding(dsn: str, lock: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    """A connection (the owner's) holding ``lock`` in an open transaction; it dies with the
    server, which is how the lock ends."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("BEGIN")
        await conn.execute(lock)
        yield conn
    finally:
        conn.terminate()


WAITING = "FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"


async def until_a_write_waits(conn: asyncpg.Connection[Any]) -> None:
    """Until a session of the test's database waits on a lock (the one ``conn`` holds)."""

    async def waiting() -> bool:
        n: int = await conn.fetchval(f"SELECT count(*) {WAITING}")
        return n > 0

    await eventually(waiting, timeout=60, interval=0.05)


async def restart_under(pg: RestartablePostgres, conn: asyncpg.Connection[Any]) -> None:
    """Restart PostgreSQL under the writes waiting on ``conn``'s lock.

    Their sessions are ended first: a fast shutdown ends the lock's holder too, and a waiting
    write could commit in between, before its own session ends.
    """
    await conn.execute(f"SELECT pg_terminate_backend(pid) {WAITING}")
    await pg.restart()


async def ledger(dsn: str) -> list[str]:
    """The app's own ledger of changes, oldest first: the functions called."""
    async with connection(dsn) as db:
        rows = await db.fetch(
            "SELECT function FROM kruxt_admin.applied_changes ORDER BY applied_at"
        )
    return [r["function"] for r in rows]


# -- mid-saga ---------------------------------------------------------------------------------


@dataclass
class Gate:
    """Where a saga activity's first attempt waits for the test, before it does anything."""

    reached: asyncio.Event = field(default_factory=asyncio.Event)
    opened: asyncio.Event = field(default_factory=asyncio.Event)


def gated(
    real: Callable[[StepRun], Any], name: str, gates: dict[str, Gate]
) -> Callable[[StepRun], Any]:
    """``real`` under its activity name; its first attempt at a step with a gate (keyed
    "<name> <step id>") waits there until the test opens it."""

    @activity.defn(name=name)
    async def step(run: StepRun) -> StepResult:
        gate = gates.get(f"{name} {run.step.step_id}")
        if gate is not None and activity.info().attempt == 1:
            gate.reached.set()
            await gate.opened.wait()
        result: StepResult = await real(run)
        return result

    return step


def saga_stand_ins(pool: asyncpg.Pool[Any], app: KruxtApp, gates: dict[str, Gate]) -> StandIns:
    """The kill loop's three-step plan (s3 refused by the app, so s2 and s1 are undone), with
    the real step activities behind the gates."""
    real = PlaybookActivities(app, PlaybookRunStore(pool))
    return {
        "plan_playbook": plan_three_steps,
        "run_step": gated(dying(real.run_step, "run_step", [0], NEVER), "run_step", gates),
        "compensate_step": gated(
            dying(real.compensate_step, "compensate_step", [0], NEVER), "compensate_step", gates
        ),
    }


async def restart_at(
    pg: RestartablePostgres, dsn: str, gate: Gate, lock: str, *, check: Any = None
) -> None:
    """Once the activity reaches ``gate``: hold ``lock``, let it go on until its write waits
    on the lock, mid-transaction; then restart PostgreSQL under it."""
    await asyncio.wait_for(gate.reached.wait(), timeout=120)
    async with holding(dsn, lock) as conn:
        gate.opened.set()
        await until_a_write_waits(conn)
        if check is not None:
            await check(conn)
        await restart_under(pg, conn)


async def test_postgres_restarted_three_times_mid_saga(
    own_pg: RestartablePostgres, stack: Stack, dev_client: Client, task_queue: str
) -> None:
    """A saga (s1, s2 applied; s3 refused; s2 then s1 undone) with PostgreSQL restarted while
    s1's change waits inside the app's transaction, while s2's record waits after the app
    committed s2, and while s1's undo waits inside the app: each change applied once, undone
    once, and the saga recorded as it went."""
    before = await app_state(stack.dsn)
    gates = {key: Gate() for key in ("run_step s1", "run_step s2", "compensate_step s1")}
    ticket = intake(subject="Garmin stopped syncing", body="My Garmin workouts no longer sync.")
    ticket = ticket.model_copy(update={"account_id": "u-garmin"})

    async def s2_committed(conn: asyncpg.Connection[Any]) -> None:
        # The app's change is in; only the support record of it waits.
        cursor_resets = await conn.fetchval(
            "SELECT count(*) FROM kruxt_admin.applied_changes WHERE function = 'reset_sync_cursor'"
        )
        assert cursor_resets == 1

    with activity_executor(8) as executor:
        worker = worker_with_stand_ins(
            dev_client,
            task_queue=task_queue,
            pool=stack.pool,
            app=stack.app,
            stand_ins=saga_stand_ins(stack.pool, stack.app, gates),
            executor=executor,
        )
        async with worker:
            handle = await start_ticket(dev_client, ticket, task_queue=task_queue)
            state = await until_status(handle, TicketStatus.AWAITING_APPROVAL, timeout=60)
            await approve_first(handle, state)
            await restart_at(own_pg, stack.dsn, gates["run_step s1"], LOCK_GARMIN)
            await restart_at(
                own_pg, stack.dsn, gates["run_step s2"], LOCK_STEP_RECORDS, check=s2_committed
            )
            await restart_at(own_pg, stack.dsn, gates["compensate_step s1"], LOCK_GARMIN)
            after = await until_status(handle, TicketStatus.AWAITING_HUMAN, timeout=120)
            await handle.terminate("fault test done")

    assert after.runs[0].status is RunStatus.COMPENSATED
    assert after.runs[0].applied == ["s1", "s2"]
    assert await ledger(stack.dsn) == ONE_SAGA
    assert await app_state(stack.dsn) == before
    async with stack.pool.acquire() as conn:
        steps = await conn.fetch(
            "SELECT step_id, status, replayed FROM support_playbook_run_steps "
            "WHERE status <> 'failed' ORDER BY step_id"
        )
        audited = await conn.fetch(
            "SELECT action, details->>'step_id' AS step, count(*) AS n FROM support_audit_log "
            "WHERE action LIKE 'playbook.step_%' GROUP BY 1, 2"
        )
    # s2's record came from the retry, which found the app's change already made.
    assert [(r["step_id"], r["status"], r["replayed"]) for r in steps] == [
        ("s1", "compensated", False),
        ("s2", "compensated", True),
    ]
    # Each step's event audited once, whatever the attempts: s1, s2 applied; all three undone
    # (s3's undo: nothing to undo).
    assert sorted((r["action"], r["step"], r["n"]) for r in audited) == [
        ("playbook.step_applied", "s1", 1),
        ("playbook.step_applied", "s2", 1),
        ("playbook.step_compensated", "s1", 1),
        ("playbook.step_compensated", "s2", 1),
        ("playbook.step_compensated", "s3", 1),
    ]


# -- mid-intake -------------------------------------------------------------------------------


async def test_postgres_restarted_mid_intake(
    own_pg: RestartablePostgres, stack: Stack, dev_client: Client, task_queue: str
) -> None:
    """Tickets posted while their first writes wait on PostgreSQL, and more while it is down:
    every one is accepted (the API needs only Temporal), stored once with its one message,
    triaged once and answered once, once PostgreSQL is back."""
    app = create_app(api_deps(dev_client, stack.pool, task_queue))
    server, serving, base = await serve_app(app)
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    bodies = [ticket_body() for _ in range(8)]
    try:
        async with (
            build_worker(dev_client, task_queue=task_queue, pool=stack.pool),
            httpx.AsyncClient(base_url=base, headers=auth, timeout=30) as http,
        ):

            async def post(body: dict[str, Any]) -> None:
                assert (await http.post("/v1/tickets", json=body)).status_code == 202

            async with holding(stack.dsn, LOCK_TICKETS) as conn:
                await asyncio.gather(*(post(b) for b in bodies[:4]))
                await until_a_write_waits(conn)
                await conn.execute(f"SELECT pg_terminate_backend(pid) {WAITING}")
                await own_pg.stop()
            try:
                assert (await http.get("/healthz")).status_code == 503
                # Posted again while down (a client's retry): the same tickets, nothing new.
                await asyncio.gather(*(post(b) for b in [*bodies[4:], *bodies[:2]]))
            finally:
                await own_pg.start()
            assert (await http.get("/healthz")).status_code == 200

            async def all_answered() -> bool:
                n: int = await stack.pool.fetchval(
                    "SELECT count(*) FROM support_tickets WHERE status = 'awaiting_customer'"
                )
                return n == len(bodies)

            await eventually(all_answered, timeout=120)
    finally:
        server.should_exit = True
        await serving

    async with stack.pool.acquire() as db:
        tickets = await db.fetchval("SELECT count(*) FROM support_tickets")
        kinds = await db.fetch(
            "SELECT kind, count(*) AS n FROM support_ticket_messages GROUP BY kind ORDER BY kind"
        )
        triaged = await db.fetchval(
            "SELECT count(*) FROM support_automation_runs WHERE agent = 'triage'"
        )
    assert tickets == len(bodies)
    assert {r["kind"]: r["n"] for r in kinds} == {"auto_reply": 8, "customer": 8}
    assert triaged == len(bodies)
