"""`kruxt dev` creates the weekly review's schedule, and says so; a restart keeps it."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.test_dev_stack import _stop, kruxt_dev

pytestmark = pytest.mark.e2e

CREATED = "schedule kruxt-weekly-review-kruxt-support created: the weekly review, Mondays 08:00 UTC"
UPDATED = "schedule kruxt-weekly-review-kruxt-support updated"


async def test_kruxt_dev_creates_the_weekly_review_schedule_once(tmp_path: Path) -> None:
    home = tmp_path / "kx"
    async with kruxt_dev(home) as stack:
        assert CREATED in "".join(stack.output)
        await _stop(stack, signal.SIGINT, home)
    async with kruxt_dev(home) as again:
        assert UPDATED in "".join(again.output)
        await _stop(again, signal.SIGTERM, home)
