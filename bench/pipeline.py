"""The auto-answer pipeline's throughput against the floor workflow, same server, same run.

Both run on one embedded stack (PostgreSQL, the Temporal dev server) with workers of the same
settings (``worker_tuner``'s slots, workflow cache, sandbox). The tickets are data-export
questions the rules triager answers from the knowledge base; the floor runs as many no-op
activities as one ticket scheduled before it waited (counted from a warm-up ticket's history),
then waits for a signal as the ticket waits for its customer. They run in turns, half of each
at a time (floor, tickets, tickets, floor: ``bench.stack.in_turns``). Throughput
is taken from the histories: workflows over the spans from the first start to the last event.
The bench learns a floor turn is done from its activity's count in this process and a ticket
turn from one count in PostgreSQL every 50 ms, so waiting costs either side next to nothing.
The CPU each workflow cost this process (worker and starter), the dev server and PostgreSQL is
printed with it: it says where a ticket's extra time goes.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.worker import Worker

from bench.floor import FloorWorkflow, Noop
from bench.stack import (
    Stack,
    Tally,
    bounded,
    in_app_ticket,
    in_turns,
    on_own_stack,
    start_ticket,
    start_tickets,
    until,
    until_tickets,
    verdict,
)
from kruxt.adapters import event_loop
from kruxt.models.tickets import TicketIntake
from kruxt.workers.bytecode import cache_workflow_bytecode
from kruxt.workers.composition import Outside, build_worker, worker_tuner, workflow_runner

GOAL = 0.8
SLOTS = 50  # activity slots of both workers
CACHE = 1000  # workflow cache of both workers
# Time for the last activities after the status the poll waits for (SLA notes, search attributes).
SETTLE_S = 2.0


def export_question() -> TicketIntake:
    """A data-export question the rules triager answers from the knowledge base."""
    return in_app_ticket(
        "u-bench",
        "Data export status",
        "I requested a data export of my KRUXT account last week. What is the status?",
    )


async def span_seconds(handles: list[WorkflowHandle[Any, Any]]) -> float:
    """Seconds from the first workflow's start to the last one's last event."""
    firsts, lasts = [], []
    for handle in handles:
        events = (await handle.fetch_history()).events
        firsts.append(events[0].event_time.ToDatetime())
        lasts.append(events[-1].event_time.ToDatetime())
    return (max(lasts) - min(firsts)).total_seconds()


async def scheduled_activities(handle: WorkflowHandle[Any, Any]) -> int:
    """How many activities the workflow scheduled so far."""
    events = (await handle.fetch_history()).events
    return sum(1 for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)


async def measure(stack: Stack, n: int) -> str:
    """Warm up, then the floor and the pipeline in turns (floor, tickets, tickets, floor),
    n workflows each in all; the report line."""
    queue = f"bench-{uuid.uuid4().hex[:8]}"

    def worker() -> Worker:
        return build_worker(
            stack.client,
            task_queue=queue,
            pool=stack.pool,
            outside=Outside(app=stack.app),
            max_concurrent_activities=SLOTS,
            max_cached_workflows=CACHE,
        )

    async with worker():
        warm = await start_ticket(stack.client, export_question(), queue)
        await until_tickets(stack, "awaiting_customer", 1, timeout=60)
        await asyncio.sleep(SETTLE_S)
        steps = await scheduled_activities(warm)

    floor_queue = f"{queue}-floor"
    cache_workflow_bytecode([FloorWorkflow])  # as build_worker does for the ticket's
    floor, pipeline = Tally(), Tally()
    answered = 1  # the warm-up ticket

    async def floor_turn(count: int) -> None:
        async def start_floor() -> WorkflowHandle[Any, Any]:
            return await stack.client.start_workflow(
                FloorWorkflow.run, steps, id=f"floor-{uuid.uuid4().hex}", task_queue=floor_queue
            )

        noop = Noop(steps)

        async def floors_waiting() -> bool:
            return noop.finished >= count

        async with Worker(
            stack.client,
            task_queue=floor_queue,
            workflows=[FloorWorkflow],
            activities=[noop.noop],
            tuner=worker_tuner(SLOTS),
            max_cached_workflows=CACHE,
            workflow_runner=workflow_runner(),
        ):
            before = stack.cpu_seconds()
            floors = await bounded(count, start_floor)
            await until(floors_waiting, timeout=600)
            await asyncio.sleep(SETTLE_S)
            floor.add(count, await span_seconds(floors), before, stack.cpu_seconds())

    async def ticket_turn(count: int) -> None:
        nonlocal answered
        async with worker():
            before = stack.cpu_seconds()
            tickets = await start_tickets(stack, count, export_question, queue)
            answered += count
            await until_tickets(stack, "awaiting_customer", answered, timeout=600)
            await asyncio.sleep(SETTLE_S)
            pipeline.add(count, await span_seconds(tickets), before, stack.cpu_seconds())

    await in_turns(n, floor_turn, ticket_turn)

    ratio = pipeline.rate / floor.rate
    return (
        f"auto-answer pipeline: {pipeline.rate:,.1f} tickets/s vs floor ({steps} no-op "
        f"activities and a wait) {floor.rate:,.1f}/s, {n} each in turns -> ratio {ratio:.2f}; "
        f"goal >= {GOAL} {verdict(ratio >= GOAL)}\n"
        f"  CPU per ticket: {pipeline.cpu_line()}\n"
        f"  CPU per floor workflow: {floor.cpu_line()}"
    )


async def run(n: int = 100) -> str:
    """The pipeline bench on a stack of its own."""
    return await on_own_stack(measure, n)


if __name__ == "__main__":
    print(event_loop.run(run(20)))
