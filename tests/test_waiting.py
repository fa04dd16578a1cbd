"""``kruxt.starter.waiting.until_found``: the first answer, or None once the time is up."""

from __future__ import annotations

import asyncio

from kruxt.starter.waiting import until_found


async def test_the_first_answer_is_returned_and_asked_no_more() -> None:
    asked = 0

    async def third_time() -> str | None:
        nonlocal asked
        asked += 1
        return "row" if asked == 3 else None

    assert await until_found(third_time, within=5, every=0.01) == "row"
    assert asked == 3


async def test_none_once_the_time_is_up() -> None:
    asked = 0

    async def never() -> str | None:
        nonlocal asked
        asked += 1
        return None

    loop = asyncio.get_running_loop()
    began = loop.time()
    assert await until_found(never, within=0.2, every=0.05) is None
    assert loop.time() - began >= 0.2
    assert 2 <= asked <= 10


async def test_an_answer_already_there_costs_one_question() -> None:
    async def there() -> int:
        return 0  # falsy, but found

    assert await until_found(there, within=0) == 0
