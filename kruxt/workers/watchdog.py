"""A worker that has stopped taking workflow tasks while they queue up is found and replaced.

Under a long burst (``bench.scale``: thousands of tickets against a bounded cache) the SDK's
worker was seen to stop polling its workflow queue for good: no poller on the server, nothing
running in Python, one ticket's task timed out and thousands queued behind it, while
activities still ran. A new worker on the same queue takes the queue over (Temporal keeps
every ticket's state), so ``kruxt worker`` watches for that and replaces its worker in
process; the logs and ``kruxt_worker_restarts_total`` say when it did.

Wedged means both, for ``stall_after``: the worker started no workflow task (its slot
supplier saw none used), and the oldest workflow task of its queue has waited that long.
An idle worker has no backlog; a busy one keeps starting tasks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from kruxt.adapters import metrics
from kruxt.workers.slots import WORKFLOW_SLOTS, StickyFirstSlots

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WatchdogSettings:
    """How long a backlog may wait on a worker starting nothing, and how often to look."""

    stall_after: timedelta = timedelta(minutes=2)
    check_every: timedelta = timedelta(seconds=30)
    # How long a wedged worker gets to shut down before a new one starts beside it.
    shutdown_grace: timedelta = timedelta(seconds=30)


async def workflow_backlog_age(client: Client, task_queue: str) -> timedelta:
    """How long the oldest workflow task of ``task_queue`` has waited (0: none waits)."""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            report_stats=True,
        )
    )
    if response.stats.approximate_backlog_count == 0:
        return timedelta(0)
    return response.stats.approximate_backlog_age.ToTimedelta()


async def until_wedged(
    client: Client,
    task_queue: str,
    slots: StickyFirstSlots,
    settings: WatchdogSettings = WatchdogSettings(),
) -> str:
    """Return, with what was seen, once the worker owning ``slots`` is wedged."""
    stall = settings.stall_after.total_seconds()
    while True:
        await asyncio.sleep(settings.check_every.total_seconds())
        idle = slots.seconds_since_used()
        if idle < stall:
            continue
        try:
            waited = await workflow_backlog_age(client, task_queue)
        except RPCError as exc:  # Temporal away: not this worker's fault, look again later
            log.warning("watchdog: cannot read task queue %s: %s", task_queue, exc.message)
            continue
        if waited.total_seconds() >= stall:
            return (
                f"no workflow task started for {idle:.0f} s while the oldest queued one "
                f"has waited {waited.total_seconds():.0f} s"
            )


async def supervise(
    run_worker: Callable[[Client, StickyFirstSlots, asyncio.Event], Coroutine[Any, Any, None]],
    client: Client,
    task_queue: str,
    stop: asyncio.Event,
    *,
    reconnect: Callable[[], Awaitable[Client]],
    slots: Callable[[], StickyFirstSlots] = lambda: StickyFirstSlots(WORKFLOW_SLOTS),
    settings: WatchdogSettings = WatchdogSettings(),
) -> int:
    """Run workers one after another until ``stop`` is set; how many were replaced.

    ``run_worker(client, slots, done)`` runs a worker of ``client`` on ``slots`` until
    ``done`` is set. A worker found wedged is told to stop and a new one, on new slots and a
    client of ``reconnect``'s, takes its place; beside it if it has not stopped within
    ``shutdown_grace`` (the SDK refuses a second worker of a queue on one client).
    """
    replaced = 0
    abandoned: list[asyncio.Task[None]] = []
    while not stop.is_set():
        supplier = slots()
        done = asyncio.Event()
        running = asyncio.create_task(run_worker(client, supplier, done))
        watching = asyncio.create_task(until_wedged(client, task_queue, supplier, settings))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({running, watching, stopping}, return_when=asyncio.FIRST_COMPLETED)
        for task in (watching, stopping):
            task.cancel()
        done.set()
        if not watching.done() or watching.cancelled():
            await running  # stopped, or failed on its own: supervise ends with it
            continue
        replaced += 1
        metrics.worker_replaced()
        log.error("worker wedged (%s): replacing it", watching.result())
        # Its shutdown waits for the tasks its core holds, which may never end (seen in the
        # scale bench): past the grace it is left behind, with its memory, and a new worker
        # starts beside it.
        finished, _ = await asyncio.wait({running}, timeout=settings.shutdown_grace.total_seconds())
        if not finished:
            log.error(
                "the wedged worker did not shut down in %.0f s: leaving it behind",
                settings.shutdown_grace.total_seconds(),
            )
            abandoned.append(running)
        client = await reconnect()
    for left in abandoned:
        left.cancel()
    return replaced
