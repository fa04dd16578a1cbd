"""`kruxt kpi`: DESIGN.md's KPIs computed from the recorded events."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from kruxt.adapters.postgres import kpi
from kruxt.adapters.postgres.kpi_report import kpi_report
from kruxt.starter.cli import main as kruxt


async def _seed(pool: asyncpg.Pool[Any]) -> None:
    async with pool.acquire() as conn:
        events: list[tuple[str, str | None, float | None, dict[str, Any]]] = [
            ("ticket_opened", None, None, {}),
            ("ticket_opened", None, None, {}),
            ("ticket_opened", None, None, {}),
            ("first_response", "P1", 60.0, {}),
            ("first_response", "P1", 600.0, {}),
            ("first_response", "P4", 30.0, {}),
            ("resolved", "P1", 3600.0, {}),
            ("triage_reviewed", "P1", None, {"accepted": True}),
            ("triage_reviewed", "P2", None, {"accepted": True}),
            ("triage_reviewed", "P2", None, {"accepted": True}),
            ("triage_reviewed", "P3", None, {"accepted": False}),
            ("sla_met", "P1", 60.0, {"clock": "first_response"}),
            ("sla_breached", "P1", 120.0, {"clock": "first_response"}),
        ]
        for event, priority, seconds, details in events:
            await kpi.emit(
                conn,
                event=event,
                ticket_id=None,
                idempotency_key=uuid.uuid4().hex,
                priority=priority,
                value_seconds=seconds,
                details=details,
            )


async def test_report_figures(pool: asyncpg.Pool[Any]) -> None:
    await _seed(pool)
    report = await kpi_report(pool, days=7)
    assert (report.tickets_opened, report.tickets_resolved) == (3, 1)
    assert report.acceptance_rate == 0.75
    p1 = next(r for r in report.first_response if r.priority == "P1")
    assert p1.count == 2
    assert p1.median_seconds == 330.0
    assert [(o.clock, o.met, o.breached) for o in report.sla] == [("first_response", 1, 1)]


async def test_cli_prints_the_report(
    pool: asyncpg.Pool[Any],
    db_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await _seed(pool)
    monkeypatch.setenv("DATABASE_URL", db_dsn)
    assert await asyncio.to_thread(kruxt, ["kpi", "--days", "30"]) == 0
    out = capsys.readouterr().out
    assert "AI triage acceptance        75% (3/4; target > 70%)" in out
    assert "first_response  met 1    breached 1" in out
