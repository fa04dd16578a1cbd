"""Workers killed (SIGKILL) at random points of sagas: every run still ends correct.

Each saga is a three-step plan of the integration_sync playbook: flag a Garmin connection for
sign-in, reset an Apple Health sync cursor, then a third step the app refuses for good; so the
two applied steps are undone in reverse order. The worker runs in a subprocess (``python -m
tests.test_faults_worker_kills ADDRESS DSN QUEUE KILL``) that dies at its KILL point: the k-th
saga activity it runs, either
before the activity touches the app, after the app committed, or just after it reported done.
A new worker takes over each time, until the saga ends; then the app's own ledger
(``kruxt_admin.applied_changes``) must hold each change exactly once, each undone once.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError

from kruxt.activities.playbooks.activities import PlaybookActivities
from kruxt.adapters.app_db import KruxtApp
from kruxt.adapters.postgres.playbook_runs import PlaybookRunStore
from kruxt.adapters.temporal_dev_server import TemporalDevServer
from kruxt.models.enums import TicketStatus
from kruxt.models.playbooks import (
    PlannedStep,
    PlanOutcome,
    PlanRequest,
    Precondition,
    RunStatus,
    StepResult,
    StepRun,
    Touches,
)
from kruxt.models.tickets import TicketOutcome
from tests.sagas import StandIns, poll_with_stand_ins, spawn_worker, stand_in_plan
from tests.support import (
    approve_first,
    connection,
    eventually,
    install_demo_app,
    intake,
    until_status,
)
from tests.support import start_ticket as start_workflow

pytestmark = pytest.mark.e2e

# Where a worker dies inside the k-th saga activity it runs.
PHASES = ("before", "after", "returned")
NEVER = "never"
# The app's ledger of one saga: two changes applied, each undone once.
ONE_SAGA = [
    "mark_reauth_required",
    "reset_sync_cursor",
    "restore_sync_cursor",  # s2 undone first
    "clear_reauth_required",
]


# -- the worker that dies (runs in a subprocess) ---------------------------------------------


GARMIN = {"user_id": "u-garmin", "provider": "garmin", "connection_id": "conn-garmin-expired"}
APPLE = {
    "user_id": "u-apple-stale",
    "provider": "apple_health",
    "connection_id": "conn-apple-stale",
}


def _step(step_id: str, action: str, target: dict[str, str], compensation: str) -> PlannedStep:
    return PlannedStep(
        step_id=step_id,
        action=action,
        target=target,
        description=f"{action} {target['connection_id']}",
        compensation=compensation,
        touches=[Touches.INTEGRATIONS],
    )


@activity.defn(name="plan_playbook")
async def plan_three_steps(req: PlanRequest) -> PlanOutcome:
    """Two real changes, then a third the app refuses (see ``dying``): a saga to undo."""
    steps = [
        _step("s1", "mark_reauth_required", GARMIN, "clear_reauth_required"),
        _step("s2", "reset_sync_cursor", APPLE, "restore_sync_cursor"),
        _step("s3", "mark_reauth_required", GARMIN, "clear_reauth_required"),
    ]
    preconditions = [
        Precondition(check="token_still_expired", target=GARMIN, description="expired"),
        Precondition(check="connection_still_in_error", target=APPLE, description="err"),
    ]
    explain = "Flag the Garmin sign-in and restart the Apple Health sync."
    return stand_in_plan(
        req, "integration_sync", steps, preconditions, explain=explain, tell="Done."
    )


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def dying(
    real: Callable[[StepRun], Awaitable[StepResult]], name: str, counter: list[int], kill: str
) -> Callable[..., Any]:
    """``real`` under its activity name, killing the process at ``kill`` ("k:phase")."""
    at, _, phase = kill.partition(":")

    @activity.defn(name=name)
    async def step(run: StepRun) -> StepResult:
        counter[0] += 1
        print(f"fault_worker: {name} {run.step.step_id} #{counter[0]} ({kill})", file=sys.stderr)
        doomed = kill != NEVER and counter[0] == int(at)
        if doomed and phase == "before":
            _die()
        if name == "run_step" and run.step.step_id == "s3":
            raise ApplicationError("the app refused s3", type="AppRefused", non_retryable=True)
        result = await real(run)
        if doomed and phase == "after":
            _die()  # committed in the app, never reported
        if doomed:
            # Reported done; the worker vanishes before (or while) the workflow moves on.
            asyncio.get_running_loop().call_later(0.2, _die)
        return result

    return step


async def worker_main(address: str, dsn: str, task_queue: str, kill: str) -> None:
    def fakes(pool: asyncpg.Pool[Any], app: KruxtApp) -> StandIns:
        real = PlaybookActivities(app, PlaybookRunStore(pool))
        counter = [0]  # saga activities run by this process, retries included
        return {
            "plan_playbook": plan_three_steps,
            "run_step": dying(real.run_step, "run_step", counter, kill),
            "compensate_step": dying(real.compensate_step, "compensate_step", counter, kill),
        }

    # No sticky queue: the next worker gets the workflow task at once, not after a dead
    # worker's sticky timeout.
    await poll_with_stand_ins(
        "fault_worker", [address, dsn, task_queue], fakes, pool_size=3, max_cached_workflows=0
    )


# -- the test side ---------------------------------------------------------------------------


async def spawn(dev_server: TemporalDevServer, dsn: str, queue: str, kill: str) -> Any:
    """A worker subprocess polling ``queue``, set to die at ``kill``."""
    return await spawn_worker(
        "tests.test_faults_worker_kills", dev_server.address, dsn, queue, kill
    )


async def run_status(pool: asyncpg.Pool[Any], ticket_id: Any) -> str | None:
    async with pool.acquire() as conn:
        status: str | None = await conn.fetchval(
            "SELECT status FROM support_playbook_runs WHERE ticket_id = $1", ticket_id
        )
        return status


async def app_state(db_dsn: str) -> tuple[Any, ...]:
    """What the saga touches in the app: the two connections."""
    async with connection(db_dsn) as db:
        rows = await db.fetch(
            "SELECT id, status, sync_cursor, reauth_required, token_expires_at, last_error "
            "FROM kruxt_app.integration_connections ORDER BY id"
        )
    return tuple(tuple(r) for r in rows)


async def one_saga(
    client: Client,
    dev_server: TemporalDevServer,
    db_dsn: str,
    pool: asyncpg.Pool[Any],
    queue: str,
    rng: random.Random,
    kills_left: int,
) -> int:
    """One ticket's saga under workers killed at random points; the kills it took."""
    ticket = intake(subject="Garmin stopped syncing", body="My Garmin workouts no longer sync.")
    ticket = ticket.model_copy(update={"account_id": "u-garmin"})
    handle: WorkflowHandle[Any, TicketOutcome] = await start_workflow(
        client, ticket, task_queue=queue
    )
    kills = 0

    def next_kill() -> str:
        if kills >= kills_left:
            return NEVER
        return f"{rng.randint(1, 3)}:{rng.choice(PHASES)}"

    proc = await spawn(dev_server, db_dsn, queue, next_kill())
    try:
        state = await until_status(handle, TicketStatus.AWAITING_APPROVAL, timeout=60)
        await approve_first(handle, state)

        async def saga_over() -> bool:
            status = await run_status(pool, ticket.ticket_id)
            return status not in (None, "running")

        while True:
            died = asyncio.ensure_future(proc.wait())
            over = asyncio.ensure_future(eventually(saga_over, timeout=240))
            done, _ = await asyncio.wait({died, over}, return_when=asyncio.FIRST_COMPLETED)
            if over in done:
                died.cancel()
                over.result()
                break
            over.cancel()
            assert died.result() == -signal.SIGKILL
            kills += 1
            proc = await spawn(dev_server, db_dsn, queue, next_kill())
        # The saga is recorded; a worker that never dies finishes the ticket (the last one
        # may still be due to die, just after the step it reported).
        if proc.returncode is not None:
            kills += 1
        else:
            proc.kill()
        await proc.wait()
        proc = await spawn(dev_server, db_dsn, queue, NEVER)
        after = await until_status(handle, TicketStatus.AWAITING_HUMAN, timeout=120)
        # Done with it (resolving would hold it open for its reopen window, in real time).
        await handle.terminate("fault test done")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert after.runs[0].status is RunStatus.COMPENSATED
    assert after.runs[0].applied == ["s1", "s2"]
    async with pool.acquire() as conn:
        steps = await conn.fetch(
            "SELECT s.step_id, s.status FROM support_playbook_run_steps s "
            "JOIN support_playbook_runs r ON r.id = s.run_id WHERE r.ticket_id = $1 "
            "AND s.status <> 'failed' ORDER BY s.step_id",
            ticket.ticket_id,
        )
    assert [(r["step_id"], r["status"]) for r in steps] == [
        ("s1", "compensated"),
        ("s2", "compensated"),
    ]
    return kills


# Slow too (each kill inside a step waits out its 30 s timeout): `make test` keeps its 10-minute
# budget, and test_worker_crash.py covers a kill mid-step there. The short loop: 3 kills, seed 17
# (~90-150 s); the long one (``make test-slow``): 20 kills, a random seed, printed.
@pytest.mark.slow
@pytest.mark.parametrize(
    ("kills", "default_seed"),
    [
        pytest.param(3, 17, marks=pytest.mark.timeout(300), id="three"),
        pytest.param(20, None, marks=pytest.mark.timeout(1500), id="twenty"),
    ],
)
async def test_kills_mid_saga(
    kills: int,
    default_seed: int | None,
    dev_server: TemporalDevServer,
    dev_client: Client,
    db_dsn: str,
    pool: asyncpg.Pool[Any],
    task_queue: str,
) -> None:
    """Sagas one after the other until the workers were killed ``kills`` times; then the
    app's ledger shows every change once, undone once, in reverse order. KRUXT_FAULT_SEED
    replays a seed."""
    if default_seed is None:
        default_seed = random.SystemRandom().randrange(10**6)
    seed = int(os.environ.get("KRUXT_FAULT_SEED", str(default_seed)))
    await install_demo_app(db_dsn)
    before = await app_state(db_dsn)
    rng = random.Random(seed)
    done, sagas = 0, 0
    while done < kills:
        done += await one_saga(dev_client, dev_server, db_dsn, pool, task_queue, rng, kills - done)
        sagas += 1
        assert await app_state(db_dsn) == before  # every saga leaves the app as it found it
    async with connection(db_dsn) as db:
        ledger = await db.fetch(
            "SELECT function, args, compensated_by FROM kruxt_admin.applied_changes "
            "ORDER BY applied_at"
        )
    # Saga by saga: s1 and s2 applied once each, then undone once each, s2 before s1.
    assert [r["function"] for r in ledger] == ONE_SAGA * sagas, f"seed {seed}"
    forward = [r for r in ledger if r["function"] in ONE_SAGA[:2]]
    assert all(r["compensated_by"] is not None for r in forward)
    print(f"{kills} kills over {sagas} sagas (seed {seed})")


if __name__ == "__main__":
    asyncio.run(worker_main(*sys.argv[1:5]))
