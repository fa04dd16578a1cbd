"""HTTP intake against raw ``start_workflow`` on the same dev server, same run; then the
acknowledgement latency at half the intake's maximum rate.

The API is served by uvicorn on a local port (access log off, as a bench's output); the load
comes from this process with CONCURRENCY requests in flight. Raw starts are the same
TicketWorkflow started with the client the API uses, at the same concurrency: the ratio is
what the HTTP layer, validation and the intake's bookkeeping cost. No worker polls the
queue, so neither side competes with the tickets it started.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import uvicorn

from bench.pipeline import export_question
from bench.stack import Stack, on_own_stack, percentile, start_ticket, until, verdict
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.models.tickets import RoutingPolicy
from kruxt.starter.api.app import ApiDeps, create_app
from kruxt.starter.intake import IntakeService

RATIO_GOAL = 0.9
P99_GOAL_MS = 100.0
CONCURRENCY = 20
TOKEN = "bench-intake-token"


def ticket_body() -> dict[str, Any]:
    """A new in-app ticket, a fresh external id each time."""
    return {
        "external_id": f"app-{uuid.uuid4().hex[:12]}",
        "requester": {"id": "u-42", "email": "ana@example.com", "name": "Ana Lima"},
        "subject": "Where is my data export?",
        "body": "I requested a data export of my account last week, what is the status?",
    }


async def closed_loop(n: int, call: Callable[[], Awaitable[None]]) -> float:
    """Calls per second for ``n`` calls, CONCURRENCY in flight."""
    left = iter(range(n))

    async def lane() -> None:
        for _ in left:
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(CONCURRENCY)))
    return n / (time.perf_counter() - started)


async def open_loop(n: int, rate: float, call: Callable[[], Awaitable[None]]) -> list[float]:
    """Start ``n`` calls at ``rate`` per second whatever the answers; each one's latency (s)."""
    latencies: list[float] = []

    async def timed() -> None:
        started = time.perf_counter()
        await call()
        latencies.append(time.perf_counter() - started)

    t0 = time.perf_counter()
    tasks = []
    for i in range(n):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(timed()))
    await asyncio.gather(*tasks)
    return latencies


async def measure(stack: Stack, n: int) -> list[str]:
    """Both rates, then the latency at half the HTTP rate; the report lines."""
    queue = f"bench-intake-{uuid.uuid4().hex[:8]}"
    deps = ApiDeps(
        intake=IntakeService(stack.client, task_queue=queue, policy=RoutingPolicy()),
        tickets=TicketStore(stack.pool),
        intake_token=TOKEN,
        health_checks={},
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(deps), log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    limits = httpx.Limits(max_connections=CONCURRENCY * 4, max_keepalive_connections=CONCURRENCY)
    http = httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        limits=limits,
        timeout=30,
    )
    try:

        async def started() -> bool:
            return server.started

        await until(started, timeout=30)

        async def post() -> None:
            r = await http.post("/v1/tickets", json=ticket_body())
            if r.status_code != 202:
                raise RuntimeError(f"intake answered {r.status_code}: {r.text[:200]}")

        async def raw() -> None:
            await start_ticket(stack.client, export_question(), queue)

        await closed_loop(CONCURRENCY, post)  # warm-up: connections, first imports
        await closed_loop(CONCURRENCY, raw)
        raw_rate = await closed_loop(n, raw)
        http_rate = await closed_loop(n, post)
        half = http_rate / 2
        latencies = await open_loop(n, half, post)
    finally:
        await http.aclose()
        server.should_exit = True
        await serving
    ratio = http_rate / raw_rate
    p50 = percentile(latencies, 50) * 1e3
    p99 = percentile(latencies, 99) * 1e3
    return [
        f"intake: HTTP {http_rate:,.0f} tickets/s vs raw start_workflow {raw_rate:,.0f}/s "
        f"({n} each, {CONCURRENCY} in flight) -> ratio {ratio:.2f}; goal >= {RATIO_GOAL} "
        f"{verdict(ratio >= RATIO_GOAL)}",
        f"intake ack at half the max rate ({half:,.0f}/s, {n} requests): p50 {p50:,.0f} ms, "
        f"p99 {p99:,.0f} ms; goal p99 < {P99_GOAL_MS:.0f} ms {verdict(p99 < P99_GOAL_MS)}",
    ]


async def run(n: int = 500) -> list[str]:
    """The intake bench on a stack of its own."""
    return await on_own_stack(measure, n)


if __name__ == "__main__":
    print("\n".join(asyncio.run(run(200))))
