"""Waiting for what a workflow writes a moment after it answered (its activity stores the row):
a person or client who acts on the answer at once must not be told it is unknown. The CLI's
wait for triage, the tests' ``eventually`` and the benches' ``until`` poll with it too."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["until_found"]

T = TypeVar("T")


async def until_found(
    probe: Callable[[], Awaitable[T | None]], *, within: float, every: float = 0.05
) -> T | None:
    """``probe()``'s first answer that is not None, asked now and every ``every`` seconds for
    ``within`` seconds; None if it never came."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while (found := await probe()) is None:
        if loop.time() >= deadline:
            return None
        await asyncio.sleep(every)
    return found
