"""HTTP intake against raw ``start_workflow`` on the same dev server, same run; then the
acknowledgement latency at half the intake's maximum rate.

The API is ``kruxt api`` in a process of its own, as deployed (uvicorn, access log, the
settings from the environment); the load comes from this process with CONCURRENCY requests
in flight, through aiohttp's client: the load generator is not what is measured, and of the
clients at hand it costs the least per request (httpx cost this process 0.9-1.0 ms a request,
as much as the raw side's whole Temporal client call; aiohttp's 0.2-0.3 ms). Raw starts are
the same TicketWorkflow started from this process with a client of the same settings and the
intake's own start options (``bench.stack.start_ticket``), at the same concurrency, in turns
with the HTTP side (raw, HTTP, HTTP, raw): the ratio is what the HTTP layer, authentication
and validation cost. (With the API in this process too, the load generator's own HTTP client
took as much of the one event loop as the API did: about a third each, in a py-spy profile.)
No worker polls the queue, so neither side competes with the tickets it started. The CPU each
ticket cost each process (this one, the API's, the dev server, PostgreSQL) is printed with
the rates.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from bench.pipeline import export_question
from bench.stack import (
    Stack,
    Tally,
    in_turns,
    on_own_stack,
    percentile,
    start_ticket,
    until,
    verdict,
)
from kruxt.adapters import event_loop
from kruxt.adapters.settings import PROJECT_ROOT
from kruxt.adapters.temporal_dev_server import unused_port

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


@asynccontextmanager
async def api_process(stack: Stack, queue: str) -> AsyncIterator[tuple[str, int]]:
    """``kruxt api`` in a process of its own, as deployed (its settings from the environment,
    access log on), intake on ``queue``; its base URL and pid once ``/healthz`` answers 200."""
    port = unused_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "DATABASE_URL": stack.dsn,
        "TEMPORAL_ADDRESS": stack.server.address,
        "KRUXT_TASK_QUEUE": queue,
        "KRUXT_INTAKE_TOKEN": TOKEN,
        "KRUXT_PAYLOAD_KEY": stack.payload_key,
        "KRUXT_AUDIT_KEY": secrets.token_hex(32),
        "KRUXT_API_PORT": str(port),
    }
    # Its log lines (one per request) are not the bench's output.
    quiet = subprocess.DEVNULL
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kruxt", "api", env=env, stdout=quiet, stderr=quiet
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(base) as probe:

            async def healthy() -> bool:
                if proc.returncode is not None:
                    raise RuntimeError(f"kruxt api exited with {proc.returncode}")
                try:
                    async with probe.get("/healthz") as answer:
                        return answer.status == 200
                except aiohttp.ClientConnectionError:
                    return False

            await until(healthy, timeout=60)
        yield base, proc.pid
    finally:
        proc.terminate()
        await proc.wait()


async def measure(stack: Stack, n: int) -> list[str]:
    """Both rates, then the latency at half the HTTP rate; the report lines."""
    queue = f"bench-intake-{uuid.uuid4().hex[:8]}"
    async with (
        api_process(stack, queue) as (base, api_pid),
        aiohttp.ClientSession(
            base,
            headers={"Authorization": f"Bearer {TOKEN}"},
            # One kept-alive connection per lane, as the httpx pool had.
            connector=aiohttp.TCPConnector(limit=CONCURRENCY),
            timeout=aiohttp.ClientTimeout(total=30),
        ) as http,
    ):

        async def post() -> None:
            async with http.post("/v1/tickets", json=ticket_body()) as answer:
                # Read to the end, so the connection goes back to the pool kept alive.
                text = await answer.text()
                if answer.status != 202:
                    raise RuntimeError(f"intake answered {answer.status}: {text[:200]}")

        async def raw() -> None:
            await start_ticket(stack.client, export_question(), queue)

        await closed_loop(CONCURRENCY, post)  # warm-up: connections, first imports
        await closed_loop(CONCURRENCY, raw)
        api = {"API process": api_pid}
        starts, posts = Tally(), Tally()

        async def turn(side: Tally, call: Callable[[], Awaitable[None]], count: int) -> None:
            before = stack.cpu_seconds(api)
            rate = await closed_loop(count, call)
            side.add(count, count / rate, before, stack.cpu_seconds(api))

        await in_turns(
            n, lambda count: turn(starts, raw, count), lambda count: turn(posts, post, count)
        )
        raw_rate, http_rate = starts.rate, posts.rate
        half = http_rate / 2
        latencies = await open_loop(n, half, post)
    ratio = http_rate / raw_rate
    p50 = percentile(latencies, 50) * 1e3
    p99 = percentile(latencies, 99) * 1e3
    return [
        f"intake: HTTP {http_rate:,.0f} tickets/s vs raw start_workflow {raw_rate:,.0f}/s "
        f"({n} each in turns, {CONCURRENCY} in flight) -> ratio {ratio:.2f}; goal >= {RATIO_GOAL} "
        f"{verdict(ratio >= RATIO_GOAL)}",
        f"  CPU per HTTP ticket: {posts.cpu_line()}",
        f"  CPU per raw start: {starts.cpu_line()}",
        f"intake ack at half the max rate ({half:,.0f}/s, {n} requests): p50 {p50:,.0f} ms, "
        f"p99 {p99:,.0f} ms; goal p99 < {P99_GOAL_MS:.0f} ms {verdict(p99 < P99_GOAL_MS)}",
    ]


async def run(n: int = 500) -> list[str]:
    """The intake bench on a stack of its own."""
    return await on_own_stack(measure, n)


if __name__ == "__main__":
    print("\n".join(event_loop.run(run(200))))
