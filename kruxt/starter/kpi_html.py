"""The KPI report as one self-contained HTML page: figures against targets, and charts drawn by
matplotlib as SVG and inlined. No scripts, no stylesheets or fonts fetched: the page reads the
same from a file, an e-mail or an air-gapped laptop. The only URLs are the links to the GitHub
issues of recurring causes, which a reader follows, never the page."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from html import escape

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure as Chart
from matplotlib.ticker import MaxNLocator

from kruxt.models.kpi import Figure, KpiReport, LatencyByPriority, Unit
from kruxt.starter.kpi_cli import counts_text, format_value, mark

__all__ = ["CHART_TITLES", "STYLE", "charts", "render_html", "render_section"]

CHART_TITLES = (
    "First response by priority",
    "Resolution by priority",
    "Rates against targets",
    "Playbook runs",
)
_MET, _MISSED, _NEUTRAL, _P50, _P90 = "#2e7d32", "#c62828", "#607d8b", "#90caf9", "#1565c0"
# matplotlib's SVG prologue: an XML declaration and a DOCTYPE naming a DTD on w3.org.
_PROLOGUE = re.compile(r"\A.*?(?=<svg\b)", re.DOTALL)
_NAMESPACES = re.compile(r'\s+xmlns(?::xlink)?="[^"]*"')


def _svg(chart: Chart, prefix: str) -> str:
    """``chart`` as an inline ``<svg>``: no prologue, no namespace URLs, its ids prefixed so
    several charts in one page do not share (and clip each other with) the same ids."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": prefix}):
        chart.savefig(
            buffer,
            format="svg",
            metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        )
    svg = _NAMESPACES.sub("", _PROLOGUE.sub("", buffer.getvalue()), count=2)
    svg = svg.replace("xlink:href=", "href=")  # SVG 2: plain href, no xlink namespace needed
    svg = re.sub(r'\bid="', f'id="{prefix}-', svg)
    svg = svg.replace("url(#", f"url(#{prefix}-").replace('href="#', f'href="#{prefix}-')
    return svg.replace("<svg ", f'<svg role="img" aria-label="{prefix}" ', 1)


def _no_data(ax: Axes) -> None:
    ax.text(0.5, 0.5, "no data in this period", ha="center", va="center", color=_NEUTRAL)
    ax.set_xticks([])
    ax.set_yticks([])


def _latency_chart(ax: Axes, rows: Sequence[LatencyByPriority], scale: float, unit: str) -> None:
    """p50 and p90 bars per priority, the target a black tick across each pair."""
    if not rows:
        _no_data(ax)
        return
    xs = range(len(rows))
    p50 = [r.median_seconds / scale for r in rows]
    ax.bar([x - 0.2 for x in xs], p50, 0.4, color=_P50, label="p50")
    ax.bar(
        [x + 0.2 for x in xs], [r.p90_seconds / scale for r in rows], 0.4, color=_P90, label="p90"
    )
    targets = [
        (x, r.target_seconds / scale) for x, r in zip(xs, rows, strict=True) if r.target_seconds
    ]
    for n, (x, target) in enumerate(targets):
        label = "target" if n == 0 else "_nolegend_"
        ax.hlines(target, x - 0.45, x + 0.45, colors="black", linewidth=2, label=label)
    ax.set_xticks(list(xs), [r.priority for r in rows])
    ax.set_ylabel(unit)
    ax.legend(loc="upper left", fontsize="small", frameon=False)


def _rates_chart(ax: Axes, figures: Sequence[Figure]) -> None:
    """One bar per rate, green when met, red when missed; the target a black tick."""
    rates = [f for f in figures if f.unit is Unit.RATIO and f.value is not None]
    if not rates:
        _no_data(ax)
        return
    ys = range(len(rates))
    colors = [_NEUTRAL if f.met is None else _MET if f.met else _MISSED for f in rates]
    ax.barh(list(ys), [(f.value or 0) * 100 for f in rates], color=colors)
    for y, f in zip(ys, rates, strict=True):
        if f.target is not None:
            ax.vlines(f.target * 100, y - 0.45, y + 0.45, colors="black", linewidth=2)
    ax.set_yticks(list(ys), [f.name for f in rates], fontsize="small")
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("%")


def _playbook_chart(ax: Axes, report: KpiReport) -> None:
    outcomes = report.playbooks.model_dump()
    if not any(outcomes.values()):
        _no_data(ax)
        return
    ax.bar(list(outcomes), list(outcomes.values()), color=[_MET, _MISSED, _NEUTRAL, _P90])
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _chart(title: str, draw: Callable[[Axes], None], *, height: float = 2.6) -> Chart:
    chart = Chart(figsize=(6.4, height), layout="constrained")
    ax = chart.subplots()
    ax.set_title(title, loc="left", fontsize="medium")
    draw(ax)
    return chart


def charts(report: KpiReport) -> list[str]:
    """The report's charts, in ``CHART_TITLES`` order, each an inline ``<svg>``."""
    rates = sum(1 for f in report.figures if f.unit is Unit.RATIO and f.value is not None)
    drawn = [
        _chart(
            CHART_TITLES[0],
            lambda ax: _latency_chart(ax, report.first_response, 60, "minutes"),
        ),
        _chart(CHART_TITLES[1], lambda ax: _latency_chart(ax, report.resolution, 3600, "hours")),
        _chart(
            CHART_TITLES[2],
            lambda ax: _rates_chart(ax, report.figures),
            height=max(2.6, 0.35 * rates + 1),
        ),
        _chart(CHART_TITLES[3], lambda ax: _playbook_chart(ax, report)),
    ]
    return [_svg(c, f"chart{i}") for i, c in enumerate(drawn, 1)]


def _figure_row(f: Figure) -> str:
    target = f"{f.comparison.value} {format_value(f.target, f.unit)}" if f.comparison else ""
    counts = counts_text(f)
    status = mark(f)
    css = {"met": "met", "MISSED": "missed"}.get(status, "none")
    return (
        f"<tr><td>{escape(f.name)}</td><td class='num'>{format_value(f.value, f.unit)}</td>"
        f"<td>{escape(target)}</td><td class='{css}'>{escape(status or '-')}</td>"
        f"<td class='small'>{escape(counts)}{' · ' if counts and f.detail else ''}"
        f"{escape(f.detail)}</td></tr>"
    )


def _recurring(report: KpiReport) -> str:
    if not report.recurring_causes:
        return "<p>No product defect recurred in this period.</p>"
    rows = "".join(
        f"<tr><td class='num'>{r.tickets}</td><td class='num'>{r.occurrences}</td>"
        f"<td>{escape(r.category)}</td><td>{escape(r.root_cause)}</td><td>"
        + (
            f"<a href='{escape(r.issue_url)}'>#{r.issue_number}</a> ({escape(r.state or '')})"
            if r.issue_number and r.issue_url
            else "not filed yet"
        )
        + "</td></tr>"
        for r in report.recurring_causes
    )
    return (
        "<table><tr><th>tickets</th><th>resolutions</th><th>category</th><th>root cause</th>"
        f"<th>issue</th></tr>{rows}</table>"
    )


# The page's CSS; a page that embeds render_section adds it to its own <style>.
STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222 }
table { border-collapse: collapse; margin: 1em 0 }
td, th { border-bottom: 1px solid #ddd; padding: 0.25em 0.75em; text-align: left }
td:nth-child(-n+4) { white-space: nowrap }
.num { text-align: right } .small { font-size: 0.85em; color: #555 }
.met { color: #2e7d32; font-weight: bold } .missed { color: #c62828; font-weight: bold }
figure { margin: 1.5em 0 } svg { max-width: 100%; height: auto }
"""


def render_section(report: KpiReport) -> str:
    """The report as an HTML fragment (figures, charts, recurring causes) to embed in a page,
    e.g. the weekly review's; well-formed and self-contained like the page."""
    missed = report.missed
    summary = (
        f"{len(missed)} target(s) missed: {', '.join(f.name for f in missed)}"
        if missed
        else "Every target with data in this period was met."
    )
    figures = "".join(_figure_row(f) for f in report.figures)
    drawn = "".join(
        f"<figure>{svg}<figcaption>{escape(title)}</figcaption></figure>"
        for title, svg in zip(CHART_TITLES, charts(report), strict=True)
    )
    return (
        f"<section class='kpis'><p><strong>{escape(summary)}</strong></p>"
        "<table><tr><th>KPI</th><th>value</th><th>target</th><th></th><th>counts</th></tr>"
        f"{figures}</table>{drawn}<h2>Recurring root causes</h2>{_recurring(report)}</section>"
    )


def render_html(report: KpiReport) -> str:
    """The whole page: well-formed (XHTML-compatible) and self-contained."""
    period = f"{report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC"
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'/>"
        f"<title>Support KPIs, {escape(period)}</title><style>{STYLE}</style></head><body>"
        f"<h1>Support KPIs</h1><p>{escape(period)}</p>{render_section(report)}</body></html>\n"
    )
