"""The event loop the processes run on (``kruxt.adapters.event_loop``): uvloop's."""

from __future__ import annotations

import asyncio

from kruxt.adapters import event_loop


async def _loop_module() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__module__


def test_run_runs_on_uvloop_and_answers() -> None:
    assert event_loop.run(_loop_module()).startswith("uvloop")


async def test_the_tests_run_on_it_too() -> None:
    loop = event_loop.new_event_loop()
    loop.close()
    assert await _loop_module() == type(loop).__module__
