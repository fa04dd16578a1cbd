"""A worker that stops taking workflow tasks while they queue is found and stopped."""

from __future__ import annotations

import asyncio
import sys
import uuid
from asyncio.subprocess import PIPE
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow

# The sandbox re-imports this module for its workflow: third-party modules pass through.
with workflow.unsafe.imports_passed_through():
    import pytest
    from temporalio.client import Client
    from temporalio.worker import SlotPermit, SlotReserveContext, Worker

    from kruxt.workers.composition import worker_tuner
    from kruxt.workers.slots import StickyFirstSlots
    from kruxt.workers.watchdog import (
        WEDGED_EXIT_CODE,
        WatchdogSettings,
        WorkerWedged,
        supervise,
        until_wedged,
        workflow_queue,
    )

QUICK = WatchdogSettings(
    stall_after=timedelta(seconds=1),
    check_every=timedelta(seconds=0.2),
    shutdown_grace=timedelta(seconds=0.5),
)


class WedgedSlots(StickyFirstSlots):
    """Slots that are never granted: the worker polls nothing, as the wedged ones did."""

    async def reserve_slot(self, ctx: SlotReserveContext) -> SlotPermit:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


@activity.defn
async def echo(text: str) -> str:
    return text


@workflow.defn
class Echo:
    @workflow.run
    async def run(self, text: str) -> str:
        return await workflow.execute_activity(
            echo, text, start_to_close_timeout=timedelta(seconds=10)
        )


def worker_on(
    client: Client, queue: str, identity: str, slots: StickyFirstSlots | None = None
) -> Worker:
    return Worker(
        client,
        task_queue=queue,
        identity=identity,
        workflows=[Echo],
        activities=[echo],
        tuner=worker_tuner(5, slots),
        graceful_shutdown_timeout=timedelta(seconds=1),
    )


def wedged_worker(
    client: Client, queue: str, *, hang: bool = False
) -> tuple[Callable[[str, asyncio.Event], Coroutine[Any, Any, None]], list[str]]:
    """A worker that never polls (with ``hang``, nor shuts down), and the names it ran as."""
    names: list[str] = []

    async def run_one(identity: str, done: asyncio.Event) -> None:
        names.append(identity)
        async with worker_on(client, queue, identity, WedgedSlots(10)):
            await done.wait()
            if hang:
                await asyncio.Event().wait()  # a shutdown that never ends

    return run_one, names


async def test_the_queue_is_seen_as_the_server_sees_it(dev_client: Client) -> None:
    """The backlog's age (statistics cached about 5 s: it shows within 15) and who polls."""
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    view = await workflow_queue(dev_client, queue)
    assert view.backlog_age == timedelta(0) and view.last_polls == {}
    await dev_client.start_workflow(Echo.run, "hi", id=f"echo-{queue}", task_queue=queue)
    for _ in range(30):
        view = await workflow_queue(dev_client, queue)
        if view.backlog_age >= timedelta(seconds=1):
            break
        await asyncio.sleep(0.5)
    assert timedelta(seconds=1) <= view.backlog_age < timedelta(seconds=30)
    async with worker_on(dev_client, queue, "poller-1"):
        await asyncio.sleep(1)
        view = await workflow_queue(dev_client, queue)
    assert view.polled_within("poller-1", timedelta(seconds=10))
    assert not view.polled_within("poller-2", timedelta(seconds=10))


async def test_an_idle_worker_is_not_wedged(dev_client: Client) -> None:
    """Its last poll may be old, but nothing waits."""
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    watching = until_wedged(dev_client, queue, "never-polled", QUICK)
    done, _ = await asyncio.wait({asyncio.ensure_future(watching)}, timeout=3)
    assert not done


async def test_a_wedged_worker_is_stopped_and_named(dev_client: Client) -> None:
    """Its process is to exit (``kruxt worker``: code 3) for a fresh one to take over."""
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    run_one, names = wedged_worker(dev_client, queue)
    await dev_client.start_workflow(Echo.run, "waits", id=f"echo-{queue}", task_queue=queue)
    with pytest.raises(WorkerWedged, match="polled its workflow queue not at all") as wedged:
        await asyncio.wait_for(
            supervise(run_one, dev_client, queue, asyncio.Event(), settings=QUICK), timeout=30
        )
    assert len(names) == 1 and f"worker {names[0]} " in str(wedged.value)


async def test_a_wedged_worker_that_never_stops_is_given_up_on(dev_client: Client) -> None:
    """Its shutdown waits on tasks its core holds: after the grace, WorkerWedged all the same."""
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    run_one, _ = wedged_worker(dev_client, queue, hang=True)
    await dev_client.start_workflow(Echo.run, "waits", id=f"echo-{queue}", task_queue=queue)
    with pytest.raises(WorkerWedged):
        await asyncio.wait_for(
            supervise(run_one, dev_client, queue, asyncio.Event(), settings=QUICK), timeout=30
        )


async def test_a_healthy_worker_is_kept(dev_client: Client) -> None:
    queue = f"tq-{uuid.uuid4().hex[:8]}"

    async def run_one(identity: str, done: asyncio.Event) -> None:
        async with worker_on(dev_client, queue, identity):
            await done.wait()

    stop = asyncio.Event()
    supervising = asyncio.create_task(supervise(run_one, dev_client, queue, stop, settings=QUICK))
    for turn in range(3):
        assert (
            await dev_client.execute_workflow(
                Echo.run, f"turn {turn}", id=f"echo-{queue}-{turn}", task_queue=queue
            )
            == f"turn {turn}"
        )
        await asyncio.sleep(1.2)  # idle past stall_after, with nothing queued
    assert not supervising.done()
    stop.set()
    await asyncio.wait_for(supervising, timeout=30)


EXITING = """
import asyncio, sys
from kruxt.workers.watchdog import WorkerWedged, exit_when_wedged

async def supervised() -> None:
    if sys.argv[1] == "wedged":
        raise WorkerWedged("worker kruxt@host#abc123 wedged (test)")

asyncio.run(exit_when_wedged(supervised()))
print("returned")
"""


@pytest.mark.parametrize(("how", "code"), [("wedged", WEDGED_EXIT_CODE), ("stopped", 0)])
async def test_a_wedged_worker_ends_its_process_for_a_fresh_one(how: str, code: int) -> None:
    """``kruxt worker`` exits with WEDGED_EXIT_CODE, for its supervisor to start another;
    a worker stopped on purpose returns as usual."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", EXITING, how, stdout=PIPE, stderr=PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == code, err.decode()
    if how == "wedged":
        assert out == b""
        assert b"exiting so that a fresh worker process takes the queue over" in err
    else:
        assert out == b"returned\n"
