"""A worker that dies (SIGKILL, no cleanup) at a chosen moment: ``python -m tests.crash_worker
MODE TEMPORAL_ADDRESS DSN TASK_QUEUE``.

Run by tests/test_worker_crash.py as a separate process: the real worker, with one activity
replaced by a fake of the same name (tests/sagas.py).

MODE ``record``: record the triage run for real (committed), then die before reporting it done.
MODE ``step``: apply a playbook step for real, then die before reporting it done.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import asyncpg
from temporalio import activity

from kruxt.activities.playbooks.activities import PlaybookActivities
from kruxt.activities.tickets import TicketActivities
from kruxt.adapters.app_db import KruxtApp
from kruxt.adapters.channels import ChannelRegistry, InAppChannel
from kruxt.adapters.postgres.playbook_runs import PlaybookRunStore
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.models.playbooks import StepResult, StepRun
from kruxt.models.records import RecordTriageInput
from tests.sagas import StandIns, poll_with_stand_ins


def die(moment: str) -> None:
    print(f"crash_worker: dying {moment}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def record_then_die(real: TicketActivities) -> Callable[..., Any]:
    @activity.defn(name="record_triage")
    async def commit_then_die(inp: RecordTriageInput) -> str:
        """The triage run is committed with its audit entry, then the worker vanishes."""
        await real.record_triage(inp)
        die("after recording triage")
        raise AssertionError("unreachable")

    return commit_then_die


def step_then_die(real: PlaybookActivities) -> Callable[..., Any]:
    @activity.defn(name="run_step")
    async def apply_then_die(run: StepRun) -> StepResult:
        """The step's change is committed in the app, then the worker vanishes."""
        await real.run_step(run)
        die(f"after applying {run.step.step_id}")
        raise AssertionError("unreachable")

    return apply_then_die


async def main(mode: str, address: str, dsn: str, task_queue: str) -> None:
    def fakes(pool: asyncpg.Pool[Any], app: KruxtApp) -> StandIns:
        if mode == "record":
            store = TicketStore(pool)
            registry = ChannelRegistry.thread_only(InAppChannel(store))
            return {"record_triage": record_then_die(TicketActivities(store, registry))}
        return {"run_step": step_then_die(PlaybookActivities(app, PlaybookRunStore(pool)))}

    await poll_with_stand_ins("crash_worker", [address, dsn, task_queue], fakes)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
