"""The KPI views of sql/016 and ``kruxt kpi --format table|json|html``, on a seeded week whose
every figure is computed by hand below."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from kruxt.adapters.postgres.kpi_report import KpiStore
from kruxt.models.enums import Priority
from kruxt.models.kpi import KpiReport
from kruxt.models.sla import DEFAULT_FIRST_RESPONSE_MINUTES, DEFAULT_RESOLUTION_MINUTES
from kruxt.starter.cli import main as kruxt
from kruxt.starter.kpi_html import CHART_TITLES, render_html, render_section

START = datetime(2026, 11, 16, tzinfo=UTC)  # a Monday
ISSUE_URL = "https://github.com/kruxt/app/issues/7"


class Week:
    """Seeds one week of facts starting at ``start``, plus a few just outside it."""

    def __init__(self, conn: asyncpg.Connection[Any], start: datetime) -> None:
        self.conn, self.start = conn, start
        self.tickets = [uuid.uuid4() for _ in range(8)]

    def at(self, hours: float) -> datetime:
        return self.start + timedelta(hours=hours)

    async def event(
        self,
        event: str,
        hours: float,
        *,
        ticket: int | None = None,
        priority: str | None = None,
        seconds: float | None = None,
        **details: Any,
    ) -> None:
        await self.conn.execute(
            "INSERT INTO support_kpi_events (ticket_id, event, priority, value_seconds, details,"
            " idempotency_key, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            None if ticket is None else self.tickets[ticket],
            event,
            priority,
            seconds,
            details,
            uuid.uuid4().hex,
            self.at(hours),
        )

    async def seed(self) -> None:
        for n, t in enumerate(self.tickets):
            await self.conn.execute(
                "INSERT INTO support_tickets (id, channel, external_id, workflow_id,"
                " requester_id, requester_email, subject) VALUES ($1, 'email', $2, $2, 'r',"
                " 'r@example.com', 's')",
                t,
                f"kpi-{n}-{t.hex[:6]}",
            )
        await self._events()
        await self._playbooks()
        await self._defects()

    async def _events(self) -> None:
        e = self.event
        for n in range(8):  # 8 tickets opened in the week
            await e("ticket_opened", 1 + n, ticket=n, channel="email")
        await e("ticket_opened", -1)  # before the week
        # First response P1 300/600/1200/2400 s: p50 900, p90 1200 + 0.7 * 1200 = 2040.
        for s in (300, 600, 1200, 2400):
            await e("first_response", 2, priority="P1", seconds=s)
        for s in (3600, 7200):  # P3: p50 5400, p90 3600 + 0.9 * 3600 = 6840
            await e("first_response", 3, priority="P3", seconds=s)
        await e("first_response", -1, priority="P1", seconds=99999)  # before
        await e("first_response", 7 * 24, priority="P1", seconds=99999)  # at the end: after
        # Resolution P1 7200/21600 s: p50 14400 (the target: met), p90 20160; P2 36000 s.
        await e("resolved", 10, priority="P1", seconds=7200)
        await e("resolved", 11, priority="P1", seconds=21600)
        await e("resolved", 12, priority="P2", seconds=36000)
        # SLA clocks: first response 3 met of 4, resolution 2 of 3.
        for met in (True, True, True, False):
            await e("sla_met" if met else "sla_breached", 4, priority="P1", clock="first_response")
        await e("sla_met", 5, priority="P1", clock="resolution")
        await e("sla_breached", 5, priority="P1", clock="resolution")
        await e("sla_met", 5, priority="P2", clock="resolution")
        # Triage: 7 of 10 accepted, exactly 70%: not more than 70%, so missed.
        for n in range(10):
            await e("triage_reviewed", 6, priority="P3", accepted=n < 7)
        # Handoffs: tickets 1 and 4 (4 after the week: it still counts for its ticket).
        await e("status_changed", 20, ticket=1, to="awaiting_human")
        await e("status_changed", 8 * 24, ticket=4, to="awaiting_human")
        await e("status_changed", 20, ticket=2, to="in_progress")  # not a handoff
        # Solved: 0 confirmed, 2 assumed, 3 assumed then reopened, 1 confirmed but handed off,
        # 5 by staff (a reopen before its solve does not count), 6 confirmed, 7 assumed.
        await e("ticket_reopened", 30, ticket=5, reopened_count=1)
        for n, how in enumerate(["confirmed", None, "assumed", "assumed", None, "staff"]):
            if how is not None:
                await e("ticket_solved", 40 + n, ticket=n, how=how)
        await e("ticket_solved", 41, ticket=1, how="confirmed")
        await e("ticket_solved", 46, ticket=6, how="confirmed")
        await e("ticket_solved", 47, ticket=7, how="assumed")
        await e("ticket_reopened", 60, ticket=3, reopened_count=1)
        await e("ticket_solved", -2, ticket=0, how="confirmed")  # before the week

    async def _playbooks(self) -> None:
        async def approval(status: str, hours: float, *, kind: str = "plan") -> None:
            decided = None if status in ("expired", "pending") else self.at(hours)
            await self.conn.execute(
                "INSERT INTO support_approvals (id, ticket_id, kind, plan_id, playbook,"
                " required_role, status, request, requested_at, expires_at, decided_at)"
                " VALUES ($1, $2, $3, $4, 'refund', 'admin', $5, '{}', $6, $7, $8)",
                uuid.uuid4(),
                self.tickets[0],
                kind,
                uuid.uuid4(),
                status,
                self.at(hours - 1),
                self.at(hours),
                decided,
            )

        for status, hours in [("approved", 10), ("approved", 20), ("rejected", 30)]:
            await approval(status, hours)
        await approval("expired", 40)
        await approval("pending", 50)
        await approval("approved", 60, kind="rollback")  # a rollback's approval: not a plan
        await approval("approved", -5)  # before the week
        for status in ("compensated", "rolled_back", "succeeded"):
            await self.conn.execute(
                "INSERT INTO support_playbook_runs (id, ticket_id, plan_id, playbook, status, plan,"
                " updated_at) VALUES ($1, $2, $3, 'refund', $4, '{}', $5)",
                uuid.uuid4(),
                self.tickets[0],
                uuid.uuid4(),
                status,
                self.at(70),
            )

    async def _defects(self) -> None:
        for fingerprint, number in (("sync", None), ("billing", 7)):
            await self.conn.execute(
                "INSERT INTO support_defect_issues (fingerprint, scheme, category, root_cause,"
                " component, severity, issue_number, issue_url, issue_state, first_seen,"
                " last_seen) VALUES ($1, 'v1', $1, $2, 'app', 'P3', $3, $4, $5, $6, $6)",
                fingerprint,
                f"{fingerprint} breaks",
                number,
                ISSUE_URL if number else None,
                "open" if number else None,
                self.at(0),
            )
        occurrences = [("sync", "ticket", 1), ("sync", "ticket", 2), ("sync", "incident", 3)]
        occurrences += [("sync", "ticket", -3), ("billing", "ticket", 4)]
        for fingerprint, source, hours in occurrences:
            await self.conn.execute(
                "INSERT INTO support_defect_occurrences (fingerprint, source, source_id, summary,"
                " resolved_by, at) VALUES ($1, $2, $3, 's', 'maya', $4)",
                fingerprint,
                source,
                uuid.uuid4(),
                self.at(hours),
            )


async def _seed(pool: asyncpg.Pool[Any], start: datetime) -> None:
    async with pool.acquire() as conn:
        await Week(conn, start).seed()  # type: ignore[arg-type]


def _values(report: KpiReport) -> dict[str, tuple[float | None, bool | None]]:
    return {f.key: (None if f.value is None else round(f.value, 4), f.met) for f in report.figures}


EXPECTED: dict[str, tuple[float | None, bool | None]] = {
    "tickets_opened": (8, None),
    "tickets_resolved": (3, None),
    "first_response_p50.P1": (900, True),
    "first_response_p90.P1": (2040, False),
    "first_response_p50.P3": (5400, True),
    "first_response_p90.P3": (6840, True),
    "resolution_p50.P1": (14400, True),
    "resolution_p90.P1": (20160, False),
    "resolution_p50.P2": (36000, True),
    "resolution_p90.P2": (36000, True),
    "sla_met.first_response": (0.75, None),
    "sla_met.resolution": (round(2 / 3, 4), None),
    "triage_acceptance": (0.7, False),
    "reopen_rate": (round(1 / 7, 4), False),
    "automatic_resolution": (round(4 / 7, 4), None),
    "automatic_resolution.confirmed": (round(2 / 7, 4), None),
    "automatic_resolution.assumed": (round(2 / 7, 4), None),
    "handoff_rate": (0.25, None),
    "playbooks.approved": (2, None),
    "playbooks.rejected": (1, None),
    "playbooks.expired": (1, None),
    "playbooks.compensated": (2, None),
}


async def test_every_figure_against_hand_computed_values(pool: asyncpg.Pool[Any]) -> None:
    """The runtime role's pool reads the views; every figure and its mark as computed above."""
    await _seed(pool, START)
    report = await KpiStore(pool).report(START, START + timedelta(days=7))
    assert _values(report) == EXPECTED
    p1 = report.figure("first_response_p90.P1")
    assert (p1.target, p1.comparison, p1.counts) == (900, "<=", {"tickets": 4, "within_target": 2})
    assert report.figure("automatic_resolution").counts == {
        "confirmed": 2,
        "assumed": 2,
        "deducted": 1,
        "solved": 7,
    }
    assert report.figure("triage_acceptance").counts == {"accepted": 7, "reviewed": 10}
    assert [(s.clock, s.priority, s.met, s.breached) for s in report.sla] == [
        ("first_response", "P1", 3, 1),
        ("resolution", "P1", 1, 1),
        ("resolution", "P2", 1, 0),
    ]
    assert [
        (r.fingerprint, r.tickets, r.occurrences, r.issue_number) for r in report.recurring
    ] == [
        ("sync", 2, 3, None),
        ("billing", 1, 1, 7),
    ]
    assert [f.key for f in report.missed] == [
        "first_response_p90.P1",
        "resolution_p90.P1",
        "triage_acceptance",
        "reopen_rate",
    ]


async def test_an_empty_period_has_no_data_and_misses_nothing(pool: asyncpg.Pool[Any]) -> None:
    await _seed(pool, START)
    later = START + timedelta(days=30)
    report = await KpiStore(pool).report(later, later + timedelta(days=7))
    assert report.figure("triage_acceptance").value is None
    assert report.figure("triage_acceptance").met is None
    assert report.missed == []
    assert (report.first_response, report.recurring_causes) == ([], [])


async def test_the_views_targets_are_the_sla_defaults(pool: asyncpg.Pool[Any]) -> None:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT kpi, priority, target_seconds FROM kpi_targets")
        # The runtime role reads the views, and writes nothing through them (this one is
        # automatically updatable: a DELETE would reach support_kpi_events).
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM kpi_sla_clocks")
    targets = {(r["kpi"], r["priority"]): r["target_seconds"] for r in rows}
    assert targets == {
        **{
            ("first_response", p.value): m * 60.0 for p, m in DEFAULT_FIRST_RESPONSE_MINUTES.items()
        },
        **{("resolution", p.value): m * 60.0 for p, m in DEFAULT_RESOLUTION_MINUTES.items()},
    }
    assert {p for _, p in targets} == {p.value for p in Priority}


# -- kruxt kpi ---------------------------------------------------------------------------


async def _cli(args: list[str]) -> int:
    return await asyncio.to_thread(kruxt, ["kpi", *args])


@pytest.fixture
async def recent_week(
    pool: asyncpg.Pool[Any], db_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seeded week ending now (the CLI reports up to now), for the CLI."""
    await _seed(pool, datetime.now(UTC) - timedelta(days=7) + timedelta(minutes=10))
    monkeypatch.setenv("DATABASE_URL", db_dsn)


@pytest.mark.usefixtures("recent_week")
async def test_the_table_marks_each_figure(capsys: pytest.CaptureFixture[str]) -> None:
    assert await _cli(["--since", "7d"]) == 0
    lines = capsys.readouterr().out.splitlines()

    def line(name: str) -> str:
        [found] = [x[2:] for x in lines if x[10:].startswith(f"{name}  ")]
        return found

    assert line("AI triage acceptance") == (
        "MISSED  AI triage acceptance        70% (7/10; target > 70%)"
    )
    assert line("first response p50, P1") == (
        "met     first response p50, P1      15m (n=4, 2 within target; target <= 15m)"
    )
    assert line("first response p90, P1").startswith("MISSED  first response p90, P1      34m ")
    assert line("resolution p50, P2").endswith("10h (n=1, 1 within target; target <= 1d)")
    assert line("reopened tickets") == "MISSED  reopened tickets            14% (1/7; target < 10%)"
    assert line("first response SLA met") == "        first response SLA met      75% (3/4)"
    assert line("automatic resolution") == (
        "        automatic resolution        57% (confirmed 2, assumed 2, deducted 1, solved 7)"
    )
    assert line("handed to a person") == "        handed to a person          25% (2/8)"
    assert line("playbook runs compensated") == "        playbook runs compensated   2"
    assert lines[-1].startswith("  4 target(s) missed: first response p90, P1, ")


@pytest.mark.usefixtures("recent_week")
async def test_json_round_trips_into_the_report(tmp_path: Path) -> None:
    out = tmp_path / "kpi.json"
    assert await _cli(["--since", "7d", "--format", "json", "--out", str(out)]) == 0
    report = KpiReport.model_validate_json(out.read_text())
    assert _values(report) == EXPECTED
    assert json.loads(out.read_text())["figures"][0]["key"] == "tickets_opened"


async def test_days_stays_an_alias_and_is_checked(
    db_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_dsn)
    assert await _cli(["--days", "3"]) == 0
    assert "(last 3 days)" in capsys.readouterr().out
    assert await _cli(["--days", "0"]) == 2
    with pytest.raises(SystemExit):  # one period, not two
        await _cli(["--days", "3", "--since", "7d"])


def _check_self_contained(page: str, allowed_links: set[str]) -> ET.Element:
    """Well-formed, one <svg> per chart, ids unique, nothing fetched from anywhere."""
    # Our own page, parsed as XML: it is XHTML-compatible, and this proves it well-formed.
    root = ET.fromstring(page.removeprefix("<!DOCTYPE html>\n"))  # noqa: S314
    svgs = root.findall(".//svg")
    assert len(svgs) == len(CHART_TITLES) == 4
    for svg in svgs:
        assert svg.findall(".//path"), "an empty chart"
    ids = [e.attrib["id"] for e in root.iter() if "id" in e.attrib]
    assert len(ids) == len(set(ids))
    for element in root.iter():
        assert element.tag not in ("script", "link", "img", "iframe", "object", "embed")
        assert "src" not in element.attrib
        href = element.attrib.get("href")
        if href is not None and not href.startswith("#"):
            assert (element.tag, href) in {("a", u) for u in allowed_links}
    assert "@import" not in page
    assert set(re.findall(r"url\(([^)]*)\)", page)) <= {f"#{i}" for i in ids}
    assert set(re.findall(r"(?:https?:)?//[\w.-]+[^\s\"'<>]*", page)) <= allowed_links
    return root


@pytest.mark.usefixtures("recent_week")
async def test_the_html_page_is_self_contained_with_its_charts(tmp_path: Path) -> None:
    out = tmp_path / "kpi.html"
    assert await _cli(["--format", "html", "--out", str(out)]) == 0
    page = out.read_text()
    root = _check_self_contained(page, {ISSUE_URL})
    captions = [c.text for c in root.iter("figcaption")]
    assert captions == list(CHART_TITLES)
    cells = ["".join(td.itertext()) for td in root.iter("td")]
    assert cells[
        cells.index("AI triage acceptance") + 1 : cells.index("AI triage acceptance") + 4
    ] == [
        "70%",
        "> 70%",
        "MISSED",
    ]
    assert ISSUE_URL in page  # the recurring cause's issue, a link a reader follows


def test_an_empty_report_still_draws_every_chart() -> None:
    now = datetime(2026, 11, 23, tzinfo=UTC)
    page = render_html(KpiReport(since=now - timedelta(days=7), until=now))
    _check_self_contained(page, set())
    assert "Every target with data in this period was met." in page
    # The fragment another page (the weekly review) embeds: well-formed on its own.
    section = render_section(KpiReport(since=now - timedelta(days=7), until=now))
    assert len(ET.fromstring(section).findall(".//svg")) == 4  # noqa: S314


@pytest.mark.usefixtures("recent_week")
async def test_a_headless_browser_renders_the_page(tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed here (.ci/run installs it in CI)")
    out = tmp_path / "kpi.html"
    assert await _cli(["--format", "html", "--out", str(out)]) == 0
    shot = tmp_path / "kpi.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--screenshot={shot}",
            "--window-size=1200,2400",
            out.as_uri(),
        ],
        check=True,
        timeout=120,
        capture_output=True,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000  # more than a blank page
