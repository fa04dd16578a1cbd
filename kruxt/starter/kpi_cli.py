"""``kruxt kpi [--since 7d | --days N] [--format table|json|html] [--out FILE]``: every KPI
with its target and a met / missed mark, as a terminal table, JSON (a ``KpiReport``) or one
self-contained HTML page with charts (``kruxt/starter/kpi_html.py``)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from kruxt.adapters.postgres.kpi_report import KpiStore
from kruxt.models.kpi import Figure, KpiReport, Unit
from kruxt.starter.render import terminal_safe

__all__ = ["counts_text", "duration", "format_value", "mark", "render_table", "run_kpi"]

_MARKS = {True: "met", False: "MISSED", None: ""}


def period_of(args: argparse.Namespace) -> timedelta:
    """The period ``--days N`` (the older spelling) or ``--since PERIOD`` names.

    Raises:
        ValueError: ``--days`` below 1.
    """
    if args.days is not None:
        if args.days < 1:
            raise ValueError("--days must be at least 1")
        return timedelta(days=args.days)
    since: timedelta = args.since
    return since


def duration(seconds: float) -> str:
    """``45s``, ``5m30s``, ``15m``, ``3h05m``, ``4h``, ``2d4h`` or ``3d``."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m" + (f"{s % 60:02d}s" if s % 60 else "")
    if s < 86400:
        return f"{s // 3600}h" + (f"{s % 3600 // 60:02d}m" if s % 3600 // 60 else "")
    return f"{s // 86400}d" + (f"{s % 86400 // 3600}h" if s % 86400 // 3600 else "")


def format_value(value: float | None, unit: Unit) -> str:
    """A figure's value (or target) as a reader writes it."""
    if value is None:
        return "-"
    match unit:
        case Unit.SECONDS:
            return duration(value)
        case Unit.RATIO:
            return f"{value:.0%}"
        case Unit.COUNT:
            return str(round(value))


def mark(figure: Figure) -> str:
    """``met``, ``MISSED``, ``no data`` (a target but nothing to hold it against) or nothing."""
    if figure.met is None and figure.target is not None:
        return "no data"
    return _MARKS[figure.met]


def counts_text(f: Figure) -> str:
    """The numbers behind a figure: ``3/4`` for a share, ``n=4, 2 within target`` for a time."""
    c = f.counts
    if f.unit is Unit.RATIO and len(c) == 2:
        part, whole = c.values()
        return f"{part}/{whole}"
    if f.unit is Unit.SECONDS and "tickets" in c:
        return f"n={c['tickets']}, {c.get('within_target', 0)} within target"
    if f.unit is Unit.COUNT:
        return ""
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in c.items())


def _figure_line(f: Figure) -> str:
    inside = [counts_text(f)] if f.counts and counts_text(f) else []
    if f.comparison is not None:
        inside.append(f"target {f.comparison.value} {format_value(f.target, f.unit)}")
    text = format_value(f.value, f.unit) + (f" ({'; '.join(inside)})" if inside else "")
    return f"  {mark(f):7} {f.name:28}{text}"


def render_table(report: KpiReport) -> str:
    """The report as a terminal page: one line per figure, then the breakdowns."""
    period = f"{report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC"
    days = report.days
    lines = [f"Support KPIs, {period}" + (f" (last {days:g} days)" if days == int(days) else "")]
    lines += [_figure_line(f) for f in report.figures]
    lines.append("  SLA clocks:")
    lines += [
        f"    {clock:15} met {met:<4} breached {breached}"
        + "".join(
            f"  {s.priority} {s.met}/{s.met + s.breached}" for s in report.sla if s.clock == clock
        )
        for clock, (met, breached) in report.sla_by_clock().items()
    ] or ["    none"]
    lines.append("  recurring root causes (product defects):")
    lines += [
        f"    {r.tickets} ticket(s), {r.occurrences} resolution(s)  "
        f"{r.category}: {terminal_safe(r.root_cause)[:80]}  "
        + (f"#{r.issue_number} {r.issue_url}" if r.issue_number else "no issue yet")
        for r in report.recurring_causes
    ] or ["    none"]
    missed = report.missed
    lines.append(
        f"  {len(missed)} target(s) missed: " + ", ".join(f.name for f in missed)
        if missed
        else "  every target with data met"
    )
    return "\n".join(lines)


async def run_kpi(args: argparse.Namespace, pool: asyncpg.Pool[Any]) -> str:
    """The report ``args`` ask for, rendered in their format."""
    until = datetime.now(UTC)
    report = await KpiStore(pool).report(until - period_of(args), until)
    match args.format:
        case "json":
            return report.model_dump_json(indent=2)
        case "html":
            from kruxt.starter.kpi_html import render_html  # matplotlib: only here

            return render_html(report)
    return render_table(report)
