"""The event loop every process of the project runs on: uvloop's, where it is installed.

uvloop (libuv) spends less CPU than asyncio's own loop on the socket work the worker and the
API do all day (asyncpg's queries, Temporal's callbacks, HTTP): about a tenth of the worker's
CPU per auto-answered ticket in the pipeline bench. uvicorn picks it by itself; the CLI, the
worker, ``kruxt dev`` and the benches run through :func:`run`, and the tests run on it too
(``tests/conftest.py``), so they test what production runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def policy() -> asyncio.AbstractEventLoopPolicy:
    """uvloop's policy; asyncio's own where uvloop has no build (Windows)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.DefaultEventLoopPolicy()
    chosen: asyncio.AbstractEventLoopPolicy = uvloop.EventLoopPolicy()
    return chosen


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A loop of :func:`policy`."""
    return policy().new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on :func:`new_event_loop`."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
