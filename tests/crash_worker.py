"""A worker that dies (SIGKILL, no cleanup) at a chosen moment: ``python -m tests.crash_worker
MODE TEMPORAL_ADDRESS DSN TASK_QUEUE``.

Run by tests/test_worker_crash.py as a separate process: the real worker, with one activity
replaced by a fake of the same name (the way Temporal's own samples replace one).

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

from temporalio import activity
from temporalio.worker import Worker

from kruxt.activities.playbooks.activities import PlaybookActivities
from kruxt.activities.tickets import TicketActivities
from kruxt.adapters.app_db import SUPPORT_ROLE, KruxtApp
from kruxt.adapters.channels import ChannelRegistry, InAppChannel
from kruxt.adapters.payload_codec import EncryptionCodec
from kruxt.adapters.postgres.playbook_runs import PlaybookRunStore
from kruxt.adapters.postgres.pool import create_pool
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.adapters.temporal_client import connect
from kruxt.models.playbooks import StepResult, StepRun
from kruxt.models.records import RecordTriageInput
from kruxt.workers.composition import Outside, activity_executor, build_activities, workflow_runner
from kruxt.workflows.ticket import TicketWorkflow
from tests.scenarios import APPROVERS


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
    # The test's client encrypts with the run's key (tests/conftest.py), inherited here.
    codec = EncryptionCodec.from_settings_text(os.environ["KRUXT_PAYLOAD_KEY"])
    client = await connect(address, payload_codec=codec)
    pool = await create_pool(dsn, max_size=2)
    store = TicketStore(pool)
    app = KruxtApp(await create_pool(dsn, max_size=2, role=SUPPORT_ROLE))
    fakes: dict[str, Callable[..., Any]] = {
        "record": record_then_die(
            TicketActivities(store, ChannelRegistry.thread_only(InAppChannel(store)))
        ),
        "step": step_then_die(PlaybookActivities(app, PlaybookRunStore(pool))),
    }
    fake = fakes[mode]
    name = "record_triage" if mode == "record" else "run_step"
    activities = [
        a
        for a in build_activities(pool=pool, outside=Outside(app=app, approvers=APPROVERS))
        if getattr(a, "__name__", "") != name
    ]
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[TicketWorkflow],
        activities=[*activities, fake],
        activity_executor=activity_executor(8),
        workflow_runner=workflow_runner(),
    )
    print("crash_worker: polling", flush=True)
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
