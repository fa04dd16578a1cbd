"""A worker that stops taking workflow tasks while they queue is found and replaced."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow

# The sandbox re-imports this module for its workflow: third-party modules pass through.
with workflow.unsafe.imports_passed_through():
    from prometheus_client import REGISTRY
    from temporalio.client import Client
    from temporalio.worker import SlotPermit, SlotReserveContext, Worker

    from kruxt.adapters.temporal_client import connect as temporal_connect
    from kruxt.adapters.temporal_dev_server import TemporalDevServer
    from kruxt.workers.composition import worker_tuner
    from kruxt.workers.slots import StickyFirstSlots
    from kruxt.workers.watchdog import WatchdogSettings, supervise, until_wedged, workflow_queue
    from tests.conftest import run_payload_codec

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


def reconnect(server: TemporalDevServer) -> Callable[[], Awaitable[Client]]:
    """New clients of the dev server, as ``kruxt worker`` makes them."""
    return lambda: temporal_connect(server.address, payload_codec=run_payload_codec())


def restarts() -> float:
    return REGISTRY.get_sample_value("kruxt_worker_restarts_total") or 0.0


def first_wedged(
    queue: str, *, hang: bool = False
) -> Callable[[Client, str, asyncio.Event], Coroutine[Any, Any, None]]:
    """Workers of which the first never polls (and, with ``hang``, never shuts down)."""
    started: list[str] = []

    async def run_one(client: Client, identity: str, done: asyncio.Event) -> None:
        wedged = not started
        started.append(identity)
        async with worker_on(client, queue, identity, WedgedSlots(10) if wedged else None):
            await done.wait()
            if wedged and hang:
                await asyncio.Event().wait()  # a shutdown that never ends

    return run_one


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


async def test_a_wedged_worker_is_replaced_and_the_ticket_finishes(
    dev_server: TemporalDevServer, dev_client: Client
) -> None:
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    before = restarts()
    stop = asyncio.Event()
    supervising = asyncio.create_task(
        supervise(
            first_wedged(queue),
            dev_client,
            queue,
            stop,
            reconnect=reconnect(dev_server),
            settings=QUICK,
        )
    )
    answer = await asyncio.wait_for(
        dev_client.execute_workflow(Echo.run, "after", id=f"echo-{queue}", task_queue=queue),
        timeout=30,
    )
    stop.set()
    assert answer == "after"
    assert await asyncio.wait_for(supervising, timeout=30) == 1
    assert restarts() == before + 1


async def test_a_wedged_worker_that_never_stops_is_left_behind(
    dev_server: TemporalDevServer, dev_client: Client
) -> None:
    """Its shutdown waits on tasks its core holds: a new worker starts beside it."""
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    stop = asyncio.Event()
    supervising = asyncio.create_task(
        supervise(
            first_wedged(queue, hang=True),
            dev_client,
            queue,
            stop,
            reconnect=reconnect(dev_server),
            settings=QUICK,
        )
    )
    answer = await asyncio.wait_for(
        dev_client.execute_workflow(Echo.run, "beside", id=f"echo-{queue}", task_queue=queue),
        timeout=30,
    )
    stop.set()
    assert answer == "beside"
    assert await asyncio.wait_for(supervising, timeout=30) == 1


async def test_a_healthy_worker_is_kept(dev_server: TemporalDevServer, dev_client: Client) -> None:
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    started: list[str] = []

    async def run_one(client: Client, identity: str, done: asyncio.Event) -> None:
        started.append(identity)
        async with worker_on(client, queue, identity):
            await done.wait()

    stop = asyncio.Event()
    supervising = asyncio.create_task(
        supervise(run_one, dev_client, queue, stop, reconnect=reconnect(dev_server), settings=QUICK)
    )
    for turn in range(3):
        assert (
            await dev_client.execute_workflow(
                Echo.run, f"turn {turn}", id=f"echo-{queue}-{turn}", task_queue=queue
            )
            == f"turn {turn}"
        )
        await asyncio.sleep(1.2)  # idle past stall_after, with nothing queued
    stop.set()
    assert await asyncio.wait_for(supervising, timeout=30) == 0
    assert len(started) == 1
