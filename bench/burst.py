"""A burst of tickets against the workflow cache: how long until all are planned.

``--burst N`` locked-account tickets are started at once on the scale bench's worker (a
process of its own, ``bench.scale_worker``) with its cache at ``--cache``; the figure is how
many reached "awaiting approval" and when, within ``--burst-for`` seconds. With the SDK's
first-come workflow slots (the default) a burst larger than the cache makes nearly every
workflow task a full replay; the sticky-first slots of ``kruxt.workers.slots``
(``BENCH_STICKY_FIRST=1``) keep it near the time the same burst takes with
``--burst-cache 1000``.
"""

from __future__ import annotations

import asyncio

from bench.scale import locked_ticket, scale_worker
from bench.stack import Stack, on_own_stack, start_tickets


async def measure(stack: Stack, n: int, cache: int, limit: float) -> str:
    """Start n tickets at once; the report line once all are planned or ``limit`` s passed."""
    async with scale_worker(stack, cache) as worker:
        loop = asyncio.get_running_loop()
        began = loop.time()
        await start_tickets(stack, n, locked_ticket, worker.queue)
        planned = 0
        while planned < n and loop.time() - began < limit:
            await asyncio.sleep(1)
            planned = await stack.pool.fetchval(
                "SELECT count(*) FROM support_tickets WHERE status = 'awaiting_approval'"
            )
        took = loop.time() - began
    return (
        f"burst: {n:,} tickets at once, cache {cache:,} workflows -> {planned:,} planned "
        f"and waiting on approval after {took:,.0f} s"
        + ("" if planned == n else f" (gave up at {limit:,.0f} s)")
    )


async def run(n: int = 300, cache: int = 100, limit: float = 180.0) -> str:
    """The burst bench on a stack of its own."""
    return await on_own_stack(measure, n, cache, limit)
