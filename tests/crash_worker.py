"""A worker that dies (SIGKILL, no cleanup) the moment it starts triaging a ticket.

Run by tests/test_worker_crash.py as a separate process: the real worker, with the triage
activity replaced by a fake of the same name, the way Temporal's own samples replace one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from temporalio import activity

from kruxt.adapters.postgres.pool import create_pool
from kruxt.adapters.temporal_client import connect
from kruxt.models.triage import TriageInput, TriageOutcome
from kruxt.workers.composition import build_activities, workflow_runner
from kruxt.workflows.ticket import TicketWorkflow


@activity.defn(name="triage_with_rules")
async def die_while_triaging(inp: TriageInput) -> TriageOutcome:
    """Stand-in for the triager: the process is killed as if the machine went away."""
    print("crash_worker: dying while triaging", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


async def main(address: str, dsn: str, task_queue: str) -> None:
    from temporalio.worker import Worker

    client = await connect(address)
    pool = await create_pool(dsn, max_size=2)
    activities = [
        a for a in build_activities(pool=pool) if getattr(a, "__name__", "") != "triage_with_rules"
    ]
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[TicketWorkflow],
        activities=[*activities, die_while_triaging],
        workflow_runner=workflow_runner(),
    )
    print("crash_worker: polling", flush=True)
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
