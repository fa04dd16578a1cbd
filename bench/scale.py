"""Open tickets waiting on approval: the worker's resident memory as they pile up.

Locked-account tickets (the demo app's ``u-locked``) each plan a fix and wait for an approver
nobody is; the worker, in a process of its own (``bench.scale_worker``), has a bounded
workflow cache, so past it the waiting tickets live in Temporal's history, not in the
worker. Its RSS is read from /proc at the start and after each tenth of the tickets; the
growth per 1,000 is the slope from the first tenth to the last (past the start-up's imports).
``BENCH_WORKER_LOG``: a file the worker's log is appended to (unset: dropped).

The tickets' SLA clocks are set beyond the run (``sla_minutes``, two days): with the product's
targets (P2: 15 minutes to a first answer, and an acknowledgement is not one) every ticket
would wake at 11 and 15 minutes for its SLA warning and breach, each a replay from history
past the cache, and at the bench's pace (about 5 new tickets a second) those wake-ups alone
fill one worker (see the README's Performance section). ``sla_minutes=0`` keeps the
product's targets, to watch that.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.stack import Stack, in_app_ticket, on_own_stack, start_tickets, until_tickets, verdict
from kruxt.adapters import event_loop
from kruxt.adapters.settings import PROJECT_ROOT
from kruxt.models.enums import Priority
from kruxt.models.sla import SlaTargets
from kruxt.models.tickets import TicketIntake
from kruxt.workers.watchdog import WEDGED_EXIT_CODE

RSS_GOAL_MB = 400.0
QUIET_SLA_MINUTES = 2 * 24 * 60


def sla_targets(minutes: int) -> SlaTargets | None:
    """Every clock at ``minutes`` for every priority; 0: None (the product's targets)."""
    if not minutes:
        return None
    every = dict.fromkeys(Priority, minutes)
    return SlaTargets(first_response_minutes=every, resolution_minutes=every)


def locked_ticket() -> TicketIntake:
    """A member locked out of the demo app's ``u-locked``: a fix planned, approval asked."""
    return in_app_ticket(
        "u-locked",
        "Account locked",
        "I cannot log in, the app says my account is locked after too many attempts.",
        account_id="u-locked",
    )


def rss_mb(pid: int) -> float:
    """The process's resident set, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


@dataclass
class ScaleWorker:
    """The worker process a bench runs tickets on: its task queue, its pid (the current one),
    and how many times it wedged and was restarted."""

    queue: str
    pid: int
    restarts: int = 0


@asynccontextmanager
async def scale_worker(stack: Stack, cache: int) -> AsyncIterator[ScaleWorker]:
    """``bench.scale_worker`` in a process of its own, its cache at ``cache``, until the
    block ends."""
    queue = f"bench-scale-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "BENCH_DSN": stack.dsn,
        "BENCH_TEMPORAL": stack.server.address,
        "BENCH_QUEUE": queue,
        "BENCH_CACHE": str(cache),
        "KRUXT_PAYLOAD_KEY": stack.payload_key,
        "KRUXT_AUDIT_KEY": secrets.token_hex(32),
    }
    # Its log has a line per approval nobody can be told of: kept only when asked for.
    log_path = os.environ.get("BENCH_WORKER_LOG")
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115, ASYNC230

    async def spawn() -> asyncio.subprocess.Process:
        started = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.scale_worker", env=env, stdout=subprocess.PIPE, stderr=log
        )
        assert started.stdout is not None
        if await started.stdout.readline() != b"ready\n":
            raise RuntimeError(f"the worker did not start (exit {started.returncode})")
        return started

    proc = await spawn()
    worker = ScaleWorker(queue, proc.pid)

    async def keep_alive() -> None:
        """A worker that wedged exits (WEDGED_EXIT_CODE): start another, as a supervisor
        of ``kruxt worker`` would."""
        nonlocal proc
        while await proc.wait() == WEDGED_EXIT_CODE:
            worker.restarts += 1
            print(f"  scale: worker wedged, restarted ({worker.restarts})", file=sys.stderr)
            proc = await spawn()
            worker.pid = proc.pid

    keeping = asyncio.create_task(keep_alive())
    try:
        yield worker
    finally:
        keeping.cancel()
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout=60)
        except TimeoutError:
            proc.kill()  # a worker stuck in a burst may not get to its shutdown
            await proc.wait()
        if not isinstance(log, int):
            log.close()


async def measure(stack: Stack, n: int, cache: int, sla_minutes: int) -> str:
    """Open n tickets in tenths, reading the worker's RSS after each; the report line."""
    sla = sla_targets(sla_minutes)
    async with scale_worker(stack, cache) as worker:
        samples = [(0, rss_mb(worker.pid))]
        step = max(1, n // 10)
        opened, next_sample = 0, min(n, step)
        while opened < n:
            # At most half the cache in flight at once: a burst of tickets being triaged and
            # planned beyond the cache makes every workflow task a replay (bench.burst);
            # this measures the memory of tickets waiting, not that.
            batch = min(next_sample - opened, max(1, cache // 2))
            await start_tickets(stack, batch, locked_ticket, worker.queue, sla=sla)
            opened += batch
            await until_tickets(stack, "awaiting_approval", opened, timeout=1800)
            if opened == next_sample:
                samples.append((opened, rss_mb(worker.pid)))
                next_sample = min(n, next_sample + step)
                # As it goes (stderr): a run cut short still tells how far it got.
                print(f"  scale: {opened:,} open, RSS {samples[-1][1]:,.0f} MB", file=sys.stderr)
    (n0, first), (n1, last) = samples[1], samples[-1]
    restarts = f"; wedged worker restarted {worker.restarts} times" if worker.restarts else ""
    per_1000 = (last - first) / max(1, n1 - n0) * 1000
    curve = ", ".join(f"{k:,}: {mb:,.0f}" for k, mb in samples)
    clocks = f"SLA clocks at {sla_minutes:,} min" if sla_minutes else "the product's SLA clocks"
    return (
        f"scale: {n:,} tickets waiting on approval ({clocks}), cache {cache:,} workflows -> "
        "worker RSS "
        f"{last:,.0f} MB (start {samples[0][1]:,.0f} MB), +{per_1000:,.1f} MB per 1,000 "
        f"tickets; goal < {RSS_GOAL_MB:.0f} MB {verdict(last < RSS_GOAL_MB)}{restarts}\n"
        f"  RSS MB by tickets open: {curve}"
    )


async def run(n: int = 10_000, cache: int = 250, sla_minutes: int = QUIET_SLA_MINUTES) -> str:
    """The scale bench on a stack of its own."""
    return await on_own_stack(measure, n, cache, sla_minutes)


if __name__ == "__main__":
    print(event_loop.run(run(200, 100)))
