"""The auto-answer pipeline's throughput against the floor workflow, same server, same run.

Both run on one embedded stack (PostgreSQL, the Temporal dev server) with workers of the same
settings (``worker_tuner``'s slots, workflow cache, sandbox). The tickets are data-export
questions the rules triager answers from the knowledge base; the floor runs as many no-op
activities as one ticket scheduled before it waited (counted from a warm-up ticket's history),
then waits for a signal as the ticket waits for its customer. Throughput is taken from the
histories: workflows over the span from the first start to the last event, so polling adds
nothing to it. The CPU each workflow cost this process (worker and starter), the dev server
and PostgreSQL is printed with it: it says where a ticket's extra time goes.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.worker import Worker

from bench.floor import FloorWorkflow, noop
from bench.stack import (
    Stack,
    bounded,
    cpu_per_workflow,
    in_app_ticket,
    on_own_stack,
    start_ticket,
    start_tickets,
    until,
    until_tickets,
    verdict,
)
from kruxt.models.tickets import TicketIntake
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


async def span_rate(handles: list[WorkflowHandle[Any, Any]]) -> float:
    """Workflows per second over the span from the first start to the last event."""
    firsts, lasts = [], []
    for handle in handles:
        events = (await handle.fetch_history()).events
        firsts.append(events[0].event_time.ToDatetime())
        lasts.append(events[-1].event_time.ToDatetime())
    return len(handles) / (max(lasts) - min(firsts)).total_seconds()


async def scheduled_activities(handle: WorkflowHandle[Any, Any]) -> int:
    """How many activities the workflow scheduled so far."""
    events = (await handle.fetch_history()).events
    return sum(1 for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)


async def measure(stack: Stack, n: int) -> str:
    """Warm up, then run the floor and the pipeline, n workflows each; the report line."""
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
    floor = Worker(
        stack.client,
        task_queue=floor_queue,
        workflows=[FloorWorkflow],
        activities=[noop],
        tuner=worker_tuner(SLOTS),
        max_cached_workflows=CACHE,
        workflow_runner=workflow_runner(),
    )
    async with floor:

        async def start_floor() -> WorkflowHandle[Any, Any]:
            return await stack.client.start_workflow(
                FloorWorkflow.run, steps, id=f"floor-{uuid.uuid4().hex}", task_queue=floor_queue
            )

        floor_cpu = stack.cpu_seconds()
        floors = await bounded(n, start_floor)

        async def floors_waiting() -> bool:
            done = await asyncio.gather(*(scheduled_activities(h) for h in floors[-5:]))
            return all(d >= steps for d in done)

        await until(floors_waiting, timeout=600)
        await asyncio.sleep(SETTLE_S)
        floor_cpu_line = cpu_per_workflow(floor_cpu, stack.cpu_seconds(), n)
        floor_rate = await span_rate(floors)

    async with worker():
        ticket_cpu = stack.cpu_seconds()
        tickets = await start_tickets(stack, n, export_question, queue)
        await until_tickets(stack, "awaiting_customer", n + 1, timeout=600)
        await asyncio.sleep(SETTLE_S)
        ticket_cpu_line = cpu_per_workflow(ticket_cpu, stack.cpu_seconds(), n)
        ticket_rate = await span_rate(tickets)

    ratio = ticket_rate / floor_rate
    return (
        f"auto-answer pipeline: {ticket_rate:,.1f} tickets/s vs floor ({steps} no-op activities "
        f"and a wait) {floor_rate:,.1f}/s, {n} each -> ratio {ratio:.2f}; goal >= {GOAL} "
        f"{verdict(ratio >= GOAL)}\n"
        f"  CPU per ticket: {ticket_cpu_line}\n"
        f"  CPU per floor workflow: {floor_cpu_line}"
    )


async def run(n: int = 100) -> str:
    """The pipeline bench on a stack of its own."""
    return await on_own_stack(measure, n)


if __name__ == "__main__":
    print(asyncio.run(run(20)))
