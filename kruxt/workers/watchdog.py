"""A worker that has stopped taking workflow tasks while they queue up is found and stopped.

Under a long burst (``bench.scale``: thousands of tickets against a bounded cache) a worker was
seen to stop polling its workflow queue for good: no poller on the server, nothing running in
Python, one ticket's task timed out and thousands queued behind it, while activities still
ran. A new worker process on the same queue takes the queue over (Temporal keeps every
ticket's state), so ``kruxt worker`` watches for that and exits (code 3) with the reason in
its log, for its supervisor to start a fresh one. A new worker inside the same process was
tried first: it wedged within seconds, as if the stuck state were the process's.

Wedged means both, for ``stall_after``, as the server sees it: the worker's identity has not
polled the workflow queue, and the oldest workflow task of the queue has waited that long. An
idle worker has no backlog; a busy one keeps polling.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

log = logging.getLogger(__name__)

# The exit code of a worker process whose worker wedged: restart it.
WEDGED_EXIT_CODE = 3


@dataclass(frozen=True)
class WatchdogSettings:
    """How long a backlog may wait on a worker starting nothing, and how often to look."""

    stall_after: timedelta = timedelta(minutes=2)
    check_every: timedelta = timedelta(seconds=30)
    # How long a wedged worker gets to shut down before its process gives up on it.
    shutdown_grace: timedelta = timedelta(seconds=30)


@dataclass(frozen=True)
class QueueView:
    """The server's view of a workflow task queue: its oldest task's wait, and when each
    poller identity last polled it."""

    backlog_age: timedelta
    last_polls: dict[str, datetime]

    def polled_within(self, identity: str, window: timedelta) -> bool:
        """Whether ``identity`` polled the queue in the last ``window``."""
        last = self.last_polls.get(identity)
        return last is not None and datetime.now(UTC) - last < window


async def workflow_queue(client: Client, task_queue: str) -> QueueView:
    """What the server says of ``task_queue``'s workflow tasks (its statistics are cached
    for a few seconds)."""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            report_stats=True,
        )
    )
    waited = (
        response.stats.approximate_backlog_age.ToTimedelta()
        if response.stats.approximate_backlog_count
        else timedelta(0)
    )
    polls = {
        p.identity: p.last_access_time.ToDatetime(tzinfo=UTC)
        for p in response.pollers
        if p.HasField("last_access_time")
    }
    return QueueView(backlog_age=waited, last_polls=polls)


async def until_wedged(
    client: Client,
    task_queue: str,
    identity: str,
    settings: WatchdogSettings = WatchdogSettings(),
) -> str:
    """Return, with what was seen, once the worker of ``identity`` is wedged."""
    while True:
        await asyncio.sleep(settings.check_every.total_seconds())
        try:
            view = await workflow_queue(client, task_queue)
        except RPCError as exc:  # Temporal away: not this worker's fault, look again later
            log.warning("watchdog: cannot read task queue %s: %s", task_queue, exc.message)
            continue
        if view.backlog_age >= settings.stall_after and not view.polled_within(
            identity, settings.stall_after
        ):
            last = view.last_polls.get(identity)
            when = f"last at {last:%H:%M:%S} UTC" if last else "not at all"
            return (
                f"worker {identity} polled its workflow queue {when} while the oldest queued "
                f"task has waited {view.backlog_age.total_seconds():.0f} s"
            )


class WorkerWedged(RuntimeError):
    """The worker stopped taking workflow tasks while they queued (see the module doc)."""


async def supervise(
    run_worker: Callable[[str, asyncio.Event], Coroutine[Any, Any, None]],
    client: Client,
    task_queue: str,
    stop: asyncio.Event,
    *,
    settings: WatchdogSettings = WatchdogSettings(),
) -> None:
    """Run the worker until ``stop`` is set; raise WorkerWedged if it wedges.

    ``run_worker(identity, done)`` runs a worker of ``client`` named ``identity`` until
    ``done`` is set. A wedged worker is told to stop and given ``shutdown_grace`` (its
    shutdown waits for the tasks its core holds, which may never end); then WorkerWedged
    ends the process's work. A new worker in the same process wedged within seconds in the
    scale run, so the cure is a new process: the caller exits and its supervisor (the
    container's restart policy, systemd) starts one.
    """
    identity = f"{client.identity}#{uuid.uuid4().hex[:6]}"
    done = asyncio.Event()
    running = asyncio.create_task(run_worker(identity, done))
    watching = asyncio.create_task(until_wedged(client, task_queue, identity, settings))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({running, watching, stopping}, return_when=asyncio.FIRST_COMPLETED)
    for task in (watching, stopping):
        task.cancel()
    done.set()
    if not watching.done() or watching.cancelled():
        await running  # stopped, or failed on its own: supervise ends with it
        return
    reason = watching.result()
    log.error("worker wedged (%s): stopping it", reason)
    finished, _ = await asyncio.wait({running}, timeout=settings.shutdown_grace.total_seconds())
    if not finished:
        running.cancel()
        log.error(
            "the wedged worker did not shut down in %.0f s", settings.shutdown_grace.total_seconds()
        )
    raise WorkerWedged(reason)


async def exit_when_wedged(supervising: Awaitable[None]) -> None:
    """Await ``supervising`` (a ``supervise``); if its worker wedged, end the process with
    WEDGED_EXIT_CODE for its supervisor to start a fresh one.

    Not SystemExit: the wedged SDK worker may hold the interpreter's exit forever (its
    shutdown did, in the scale run); the process's sockets close with it.
    """
    try:
        await supervising
    except WorkerWedged:
        log.error("exiting so that a fresh worker process takes the queue over")
        logging.shutdown()
        os._exit(WEDGED_EXIT_CODE)
