"""How fast ``kruxt`` starts: ``--help`` and ``ticket show`` against ``python -c pass``, all
measured in this run (the goal: under 0.4 s each).

``ticket show`` is pointed at a port nothing listens on, so what is timed is the start-up
(imports, settings, the first connection attempt), not a database's answer.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time

ROUNDS = 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _median_seconds(*argv: str, env: dict[str, str]) -> float:
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        subprocess.run([sys.executable, *argv], env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run() -> str:
    """Time the three start-ups; return the report line."""
    env = {
        **os.environ,
        "DATABASE_URL": f"postgresql://kruxt@127.0.0.1:{_free_port()}/kruxt",
        "KRUXT_HOME": os.devnull,  # no .kruxt/dev.env of a running stack
    }
    bare = _median_seconds("-c", "pass", env=env)
    help_ = _median_seconds("-m", "kruxt", "--help", env=env)
    show = _median_seconds("-m", "kruxt", "ticket", "show", "C8AC88BA", env=env)
    return (
        f"cli start: --help {help_ * 1e3:,.0f} ms ({help_ / bare:,.1f}x `python -c pass`), "
        f"ticket show {show * 1e3:,.0f} ms ({show / bare:,.1f}x); goal < 400 ms"
    )


if __name__ == "__main__":
    print(run())
