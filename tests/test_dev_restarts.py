"""`kruxt dev`'s restarts: a child that exits is started again, one that keeps exiting stops
the stack (``kruxt.starter.dev_restarts``, ``DevStack._supervise``)."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kruxt.adapters.settings import Settings
from kruxt.starter.dev import DevStack
from kruxt.starter.dev_restarts import RestartBudget, exit_reason
from kruxt.workers.watchdog import WEDGED_EXIT_CODE
from tests.support import eventually


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_budget_allows_limit_restarts_within_the_window_then_again_after_it() -> None:
    clock = Clock()
    budget = RestartBudget(limit=3, window=60.0, clock=clock)
    for second in (0.0, 10.0, 20.0):
        clock.now = second
        assert budget.allow()
    assert not budget.allow()
    clock.now = 59.9
    assert not budget.allow()
    clock.now = 60.0  # the restart at 0 left the window; those at 10 and 20 have not
    assert budget.allow()
    assert not budget.allow()
    clock.now = 80.0
    assert budget.allow()


def test_refused_restarts_are_not_counted() -> None:
    clock = Clock()
    budget = RestartBudget(limit=1, window=10.0, clock=clock)
    assert budget.allow()
    for second in range(1, 10):
        clock.now = second
        assert not budget.allow()
    clock.now = 10.0
    assert budget.allow()


@pytest.mark.parametrize(
    ("name", "code", "reason"),
    [
        ("worker", -signal.SIGKILL, "killed by SIGKILL"),
        ("api", -signal.SIGTERM, "killed by SIGTERM"),
        ("worker", WEDGED_EXIT_CODE, "exit code 3: its watchdog found it wedged"),
        ("api", WEDGED_EXIT_CODE, "exit code 3"),
        ("worker", 1, "exit code 1"),
        ("worker", -200, "killed by signal 200"),
    ],
)
def test_exit_reasons(name: str, code: int, reason: str) -> None:
    assert exit_reason(name, code) == reason


class ScriptedStack(DevStack):
    """A DevStack whose worker is a Python one-liner: each start takes the next script."""

    def __init__(self, home: Path, scripts: Iterator[str]) -> None:
        super().__init__(Settings(KRUXT_HOME=home))
        self.logs.mkdir(parents=True)
        self.scripts = scripts

    def _command(self, name: str, fds: tuple[int, ...]) -> list[str]:
        return [sys.executable, "-c", next(self.scripts)]


async def test_a_worker_that_keeps_exiting_stops_the_stack_after_its_restarts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = ScriptedStack(tmp_path, iter([f"raise SystemExit({WEDGED_EXIT_CODE})"] * 5))
    stack._spawn("worker", {})
    try:
        failed = await asyncio.wait_for(stack._supervise(asyncio.Event()), 60)
    finally:
        stack._shutdown()
    out = capsys.readouterr().out
    assert failed
    assert out.count("worker: started") == 4, out
    assert out.count("its watchdog found it wedged); starting it again") == 3, out
    assert "again after 3 restarts within 60 s; stopping" in out, out


async def test_a_worker_that_exits_once_is_started_again_and_the_stack_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = ScriptedStack(tmp_path, iter(["raise SystemExit(1)", "import time; time.sleep(60)"]))
    stack._spawn("worker", {})
    first = stack.children["worker"]
    stop = asyncio.Event()
    supervising = asyncio.create_task(stack._supervise(stop))
    try:

        async def restarted() -> bool:
            return stack.children["worker"] is not first

        await eventually(restarted, timeout=30, interval=0.1)
        await asyncio.sleep(1.5)  # a supervision round more: the second one is left running
        assert stack.children["worker"].poll() is None
        stop.set()
        assert await asyncio.wait_for(supervising, 10) is False
    finally:
        stop.set()
        stack._shutdown()
    out = capsys.readouterr().out
    assert "worker exited (exit code 1); starting it again" in out, out
    assert out.count("worker: started") == 2, out
