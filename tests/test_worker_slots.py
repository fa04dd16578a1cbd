"""Workflow-task slots, sticky polls first (``kruxt.workers.slots``): the supplier on its own,
then a burst of tickets larger than the worker's cache on the real dev server."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg
import pytest
from pydantic import ValidationError
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.worker import (
    CustomSlotSupplier,
    FixedSizeSlotSupplier,
    SlotInfo,
    SlotPermit,
    SlotReleaseContext,
)

from kruxt.adapters.settings import Settings
from kruxt.models.enums import TicketStatus
from kruxt.workers.composition import Outside, build_worker, workflow_slot_supplier
from kruxt.workers.slots import StickyFirstSlots
from tests.scenarios import APPROVERS
from tests.support import demo_app, eventually, locked_ticket, start_ticket

BURST = 48
CACHE = 8


@dataclass
class _Poll:
    """A ``SlotReserveContext`` as the SDK's core hands it over."""

    is_sticky: bool
    slot_type: Literal["workflow", "activity", "local-activity"] = "workflow"
    task_queue: str = "tq"
    worker_identity: str = "test"
    worker_build_id: str = ""
    worker_deployment_version: WorkerDeploymentVersion | None = None


@dataclass
class _Task:
    """A ``WorkflowSlotInfo``: the task a permit was used for."""

    is_sticky: bool
    workflow_type: str = "TicketWorkflow"


@dataclass
class _Used:
    """A ``SlotMarkUsedContext`` (a protocol in the SDK): the task a permit was used for."""

    slot_info: SlotInfo
    permit: SlotPermit


def _use(slots: StickyFirstSlots, permit: SlotPermit, *, sticky: bool) -> None:
    slots.mark_slot_used(_Used(_Task(sticky), permit))


def _release(slots: StickyFirstSlots, permit: SlotPermit, *, sticky: bool = True) -> None:
    slots.release_slot(SlotReleaseContext(_Task(sticky), permit))


async def _granted_soon(reserving: asyncio.Task[SlotPermit]) -> bool:
    await asyncio.sleep(0.05)
    return reserving.done()


async def test_sticky_polls_go_before_a_waiting_normal_one() -> None:
    slots = StickyFirstSlots(2, max_wait=10)
    busy = await slots.reserve_slot(_Poll(is_sticky=True))
    _use(slots, busy, sticky=True)
    normal = asyncio.create_task(slots.reserve_slot(_Poll(is_sticky=False)))
    assert not await _granted_soon(normal)
    # A sticky poll arriving later is served first, up to the cap.
    second = await asyncio.wait_for(slots.reserve_slot(_Poll(is_sticky=True)), timeout=1)
    _use(slots, second, sticky=True)
    third = asyncio.create_task(slots.reserve_slot(_Poll(is_sticky=True)))
    assert not await _granted_soon(third)
    assert slots.try_reserve_slot(_Poll(is_sticky=True)) is None
    # A freed slot goes to the sticky poll: sticky work is still running.
    _release(slots, busy)
    third_permit = await asyncio.wait_for(third, timeout=1)
    _use(slots, third_permit, sticky=True)
    assert not await _granted_soon(normal)
    # Once no sticky task runs, the normal poll gets its slot.
    _release(slots, second)
    _release(slots, third_permit)
    await asyncio.wait_for(normal, timeout=1)


async def test_released_slots_are_handed_out_again() -> None:
    slots = StickyFirstSlots(3)
    for _ in range(3):
        permits = [slots.try_reserve_slot(_Poll(is_sticky=False)) for _ in range(4)]
        granted = [permit for permit in permits if permit is not None]
        assert len(granted) == 3
        for permit in granted:
            _use(slots, permit, sticky=False)
            _release(slots, permit, sticky=False)
    # A permit reserved but never used (the poll came back empty) is released too.
    for _ in range(3):
        empty = await slots.reserve_slot(_Poll(is_sticky=False))
        slots.release_slot(SlotReleaseContext(None, empty))
    sticky = await slots.reserve_slot(_Poll(is_sticky=True))
    _use(slots, sticky, sticky=True)
    _release(slots, sticky)
    # No sticky task is left counted as running: a normal poll is served at once.
    await asyncio.wait_for(slots.reserve_slot(_Poll(is_sticky=False)), timeout=0.05)


def test_kruxt_workflow_slots_chooses_the_supplier() -> None:
    """``KRUXT_WORKFLOW_SLOTS`` picks the worker's workflow slots; a wrong name is refused
    when the settings load, not when the worker starts."""
    assert Settings().workflow_slots == "sdk"
    assert isinstance(workflow_slot_supplier(Settings().workflow_slots), FixedSizeSlotSupplier)
    chosen = Settings(KRUXT_WORKFLOW_SLOTS="sticky-first").workflow_slots
    assert isinstance(workflow_slot_supplier(chosen), StickyFirstSlots)
    with pytest.raises(ValidationError, match="KRUXT_WORKFLOW_SLOTS"):
        Settings(KRUXT_WORKFLOW_SLOTS="sticky")
    with pytest.raises(ValueError, match="no such workflow slot supplier"):
        workflow_slot_supplier("fifo")


async def test_a_normal_poll_waits_at_most_max_wait_under_constant_sticky_work() -> None:
    slots = StickyFirstSlots(10, max_wait=0.3)
    stop = asyncio.Event()

    async def sticky_work() -> None:
        # Two sticky tasks overlapping: at no moment is the worker free of sticky work.
        held = [await slots.reserve_slot(_Poll(is_sticky=True)) for _ in range(2)]
        for permit in held:
            _use(slots, permit, sticky=True)
        while not stop.is_set():
            await asyncio.sleep(0.01)
            fresh = await slots.reserve_slot(_Poll(is_sticky=True))
            _use(slots, fresh, sticky=True)
            _release(slots, held.pop(0))
            held.append(fresh)

    worker = asyncio.create_task(sticky_work())
    began = time.monotonic()
    await asyncio.wait_for(slots.reserve_slot(_Poll(is_sticky=False)), timeout=2)
    waited = time.monotonic() - began
    stop.set()
    await worker
    assert 0.25 <= waited < 1.0, waited


async def _burst(
    client: Client,
    db_dsn: str,
    pool: asyncpg.Pool[Any],
    queue: str,
    slots: CustomSlotSupplier | FixedSizeSlotSupplier | None,
) -> tuple[float, int]:
    """Start BURST locked-account tickets at once on a worker caching CACHE workflows: the
    seconds until all wait on approval, and the workflow tasks that timed out on the way."""
    async with demo_app(db_dsn) as app:
        outside = Outside(app=app, approvers=APPROVERS)
        worker = build_worker(
            client,
            task_queue=queue,
            pool=pool,
            outside=outside,
            max_cached_workflows=CACHE,
            workflow_slots=slots,
        )
        async with worker:
            began = time.monotonic()
            handles = await asyncio.gather(
                *(start_ticket(client, locked_ticket(), task_queue=queue) for _ in range(BURST))
            )

            async def all_waiting() -> bool:
                count: int = await pool.fetchval(
                    "SELECT count(*) FROM support_tickets WHERE status = $1",
                    TicketStatus.AWAITING_APPROVAL.value,
                )
                return count == BURST

            # Bounds the run only (what is checked is the timeouts): on a slow, shared machine
            # running other tests beside it, 48 tickets through a cache of 8 took over 60 s.
            await eventually(all_waiting, timeout=180, interval=0.5)
            took = time.monotonic() - began
    timed_out = 0
    for handle in handles:
        async for event in handle.fetch_history_events():
            timed_out += event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT
    return took, timed_out


async def test_a_burst_larger_than_the_cache_gets_planned_without_task_timeouts(
    dev_client: Client, db_dsn: str, pool: asyncpg.Pool[Any], task_queue: str
) -> None:
    # The default slots of build_worker: the SDK's, first come first served.
    took, timed_out = await _burst(dev_client, db_dsn, pool, task_queue, None)
    print(f"burst of {BURST}, cache {CACHE}: planned in {took:.1f} s, {timed_out} timed out")
    assert timed_out == 0
