"""How fast ``kruxt`` starts: ``--help``, ``ticket show`` and ``ticket list`` against
``python -c pass``, all measured in this run (the goal: under 0.4 s each).

The reads run whole against an embedded PostgreSQL holding one ticket, migrated by ``kruxt
migrate`` itself; Temporal's address is a port nothing listens on, as when the stack is down,
so ``ticket show`` shows the stored ticket without its workflow's live state. Byte-code is
cached (in the run's own directory) as in any installed copy: compiling every module on each
start would be timed otherwise where PYTHONDONTWRITEBYTECODE is set.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from kruxt.adapters import event_loop
from kruxt.adapters.embedded_postgres import EmbeddedPostgres
from kruxt.adapters.postgres.pool import connect

ROUNDS = 5
TICKET = uuid.UUID("c8ac88ba-0000-4000-8000-000000000001")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _fastest_seconds(*argv: str, env: dict[str, str]) -> float:
    """The fastest of ROUNDS runs: start-up is a fixed cost, and slower runs only add what
    else the machine was doing."""
    subprocess.run([sys.executable, *argv], env=env, capture_output=True, check=False)  # warm
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, *argv], env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise RuntimeError(f"{argv} failed: {done.stderr.decode()}")
    return min(times)


async def _one_ticket(dsn: str) -> None:
    conn = await connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO support_tickets (id, channel, external_id, workflow_id, requester_id, "
            "requester_email, subject, priority) VALUES ($1, 'cli', 'bench', $2, 'ana', "
            "'ana@example.com', 'Locked out', 'P2')",
            TICKET,
            f"ticket-{TICKET}",
        )
    finally:
        await conn.close()


async def run() -> str:
    """Time the four start-ups; return the report line."""
    root = Path(tempfile.mkdtemp(prefix="kx-bench-"))
    server = EmbeddedPostgres(root / "pg")
    try:
        dsn = server.start()
        env = {
            **os.environ,
            "DATABASE_URL": dsn,
            "TEMPORAL_ADDRESS": f"127.0.0.1:{_free_port()}",
            "KRUXT_HOME": str(root / "home"),  # no .kruxt/dev.env of a running stack
            "PYTHONPYCACHEPREFIX": str(root / "pycache"),
        }
        for name in ("KRUXT_MIGRATE_DATABASE_URL", "APP_DATABASE_URL", "PYTHONDONTWRITEBYTECODE"):
            env.pop(name, None)
        migrate = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "kruxt",
            "migrate",
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _, failure = await migrate.communicate()
        if migrate.returncode:
            raise RuntimeError(f"kruxt migrate failed: {failure.decode()}")
        await _one_ticket(dsn)
        bare = _fastest_seconds("-c", "pass", env=env)
        help_ = _fastest_seconds("-m", "kruxt", "--help", env=env)
        show = _fastest_seconds("-m", "kruxt", "ticket", "show", "C8AC88BA", env=env)
        listed = _fastest_seconds("-m", "kruxt", "ticket", "list", env=env)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    return (
        f"cli start: --help {help_ * 1e3:,.0f} ms ({help_ / bare:,.1f}x `python -c pass`), "
        f"ticket show {show * 1e3:,.0f} ms ({show / bare:,.1f}x), "
        f"ticket list {listed * 1e3:,.0f} ms ({listed / bare:,.1f}x); goal < 400 ms"
    )


if __name__ == "__main__":
    print(event_loop.run(run()))
