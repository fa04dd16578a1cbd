"""A worker that dies (SIGKILL, no cleanup) at a chosen moment: ``python -m tests.crash_worker
MODE TEMPORAL_ADDRESS DSN TASK_QUEUE``.

Run by tests/test_worker_crash.py as a separate process: the real worker, with one activity
replaced by a fake of the same name (the way Temporal's own samples replace one).

MODE ``triage``: die when triage starts (the ticket is stored, nothing triaged).
MODE ``step``: apply a playbook step for real, then die before reporting it done.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.worker import Worker

from kruxt.activities.playbooks.activities import PlaybookActivities
from kruxt.adapters.app_db import SUPPORT_ROLE, KruxtApp
from kruxt.adapters.postgres.playbook_runs import PlaybookRunStore
from kruxt.adapters.postgres.pool import create_pool
from kruxt.adapters.temporal_client import connect
from kruxt.models.playbooks import StepResult, StepRun
from kruxt.models.triage import TriageInput, TriageOutcome
from kruxt.workers.composition import Outside, build_activities, workflow_runner
from kruxt.workflows.ticket import TicketWorkflow


def die(moment: str) -> None:
    print(f"crash_worker: dying {moment}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


@activity.defn(name="triage_with_rules")
async def die_while_triaging(inp: TriageInput) -> TriageOutcome:
    """Stand-in for the triager: the process is killed as if the machine went away."""
    die("while triaging")
    raise AssertionError("unreachable")


def step_then_die(real: PlaybookActivities) -> Callable[..., Any]:
    @activity.defn(name="run_step")
    async def apply_then_die(run: StepRun) -> StepResult:
        """The step's change is committed in the app, then the worker vanishes."""
        await real.run_step(run)
        die(f"after applying {run.step.step_id}")
        raise AssertionError("unreachable")

    return apply_then_die


async def main(mode: str, address: str, dsn: str, task_queue: str) -> None:
    client = await connect(address)
    pool = await create_pool(dsn, max_size=2)
    app = KruxtApp(await create_pool(dsn, max_size=2, role=SUPPORT_ROLE))
    fakes: dict[str, Callable[..., Any]] = {
        "triage": die_while_triaging,
        "step": step_then_die(PlaybookActivities(app, PlaybookRunStore(pool))),
    }
    fake = fakes[mode]
    name = "triage_with_rules" if mode == "triage" else "run_step"
    activities = [
        a
        for a in build_activities(pool=pool, outside=Outside(app=app))
        if getattr(a, "__name__", "") != name
    ]
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[TicketWorkflow],
        activities=[*activities, fake],
        workflow_runner=workflow_runner(),
    )
    print("crash_worker: polling", flush=True)
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
