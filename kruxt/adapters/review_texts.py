"""The weekly review's words: the HTML report, the Slack summary, the reviewer's mail.

One self-contained HTML page (inline CSS, inline SVG bars, no script, nothing remote), so
the same text is the stored report, the mail body and what ``kruxt review show`` prints.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from zoneinfo import ZoneInfo

from kruxt.models.review import CountRow, Grade, ReviewSample, WeekFigures, WeeklyReview

__all__ = ["figure_lines", "report_html", "slack_summary"]

_e = html.escape

_CSS = (
    "body{font-family:-apple-system,Segoe UI,Roboto,sans-serif;max-width:820px;margin:0 auto;"
    "padding:16px;color:#1a1a1a;line-height:1.4}h1{font-size:1.5em}h2{font-size:1.1em;"
    "margin-top:1.6em;border-bottom:1px solid #ddd}table{border-collapse:collapse;width:100%}"
    "td,th{padding:4px 8px;border-bottom:1px solid #eee;text-align:left;font-size:.92em}"
    ".met{color:#1a7f37;font-weight:bold}.missed{color:#b42318;font-weight:bold}"
    ".muted{color:#666}a.g{display:inline-block;margin:2px 6px 2px 0}"
)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _dur(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _mark(ok: bool | None) -> tuple[str, str]:
    if ok is None:
        return "muted", "no data"
    return ("met", "met") if ok else ("missed", "missed")


def figure_lines(
    now: WeekFigures, before: WeekFigures
) -> list[tuple[str, str, str, str, bool | None]]:
    """(figure, this week, last week, target, met?) for every headline figure."""
    acc, reo = now.acceptance_rate, now.reopen_rate
    rows: list[tuple[str, str, str, str, bool | None]] = [
        ("Tickets opened", str(now.tickets_opened), str(before.tickets_opened), "", None),
        ("Tickets resolved", str(now.tickets_resolved), str(before.tickets_resolved), "", None),
        (
            "AI triage acceptance",
            _pct(acc),
            _pct(before.acceptance_rate),
            "> 70%",
            None if acc is None else acc > 0.7,
        ),
        (
            "Reopened tickets",
            _pct(reo),
            _pct(before.reopen_rate),
            "< 10%",
            None if reo is None else reo < 0.1,
        ),
        ("SLA clocks met", _pct(now.sla_met_rate), _pct(before.sla_met_rate), "", None),
        ("Automatic replies", str(now.auto_replies), str(before.auto_replies), "", None),
        ("Handed to a person", str(now.handoffs), str(before.handoffs), "", None),
        ("AI answer quality", _pct(now.answer_quality), _pct(before.answer_quality), "", None),
    ]
    for row in now.first_response:
        rows.append(
            (
                f"First response p90, {row.priority}",
                _dur(row.p90_seconds),
                "",
                "" if row.target_seconds is None else f"< {_dur(row.target_seconds)}",
                row.met,
            )
        )
    return rows


def _bars(rows: Sequence[CountRow]) -> str:
    """A horizontal bar chart as inline SVG."""
    if not rows:
        return '<p class="muted">none</p>'
    top = max(r.count for r in rows) or 1
    height = 22 * len(rows)
    bars = "".join(
        f'<text x="0" y="{22 * i + 15}" font-size="12">{_e(r.name[:40])}</text>'
        f'<rect x="260" y="{22 * i + 4}" width="{300 * r.count / top:.1f}" height="14" '
        f'fill="#4b6bfb"/><text x="{265 + 300 * r.count / top:.1f}" y="{22 * i + 15}" '
        f'font-size="12">{r.count}</text>'
        for i, r in enumerate(rows)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="600" height="{height}" '
        f'role="img">{bars}</svg>'
    )


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    if not rows:
        return '<p class="muted">none</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _when(moment: object) -> str:
    return "" if moment is None else str(moment)[:16].replace("T", " ")


def report_html(
    review: WeeklyReview,
    *,
    samples: Sequence[ReviewSample] = (),
    grade_links: Callable[[ReviewSample], dict[Grade, str]] | None = None,
) -> str:
    """The report as one self-contained page; with ``grade_links``, the reviewer's copy."""
    zone = ZoneInfo(review.time_zone)
    figures = "".join(
        f"<tr><td>{_e(name)}</td><td>{_e(now)}</td><td>{_e(before)}</td><td>{_e(target)}</td>"
        f'<td class="{_mark(ok)[0]}">{_mark(ok)[1] if target else ""}</td></tr>'
        for name, now, before, target, ok in figure_lines(review.this_week, review.last_week)
    )
    parts = [
        f"<h1>Weekly support review {_e(review.week)}</h1>",
        f'<p class="muted">{_e(_when(review.starts_at.astimezone(zone)))} to '
        f"{_e(_when(review.ends_at.astimezone(zone)))} ({_e(review.time_zone)})</p>",
        "<h2>KPIs against targets and last week</h2>",
        "<table><tr><th>figure</th><th>this week</th><th>last week</th><th>target</th>"
        f"<th></th></tr>{figures}</table>",
        "<h2>SLA breaches</h2>",
        _table(
            ["ticket", "priority", "clock", "overdue", "at"],
            [
                [
                    str(b.ticket_id or "")[:8],
                    b.priority or "",
                    b.clock,
                    _dur(b.overdue_seconds),
                    _when(b.at),
                ]
                for b in review.breaches
            ],
        ),
        "<h2>Incidents and their timelines</h2>",
        _table(
            ["priority", "title", "opened", "acknowledged", "resolved", "status"],
            [
                [
                    i.priority,
                    i.title,
                    _when(i.opened_at),
                    f"{_when(i.acknowledged_at)} {i.acknowledged_by or ''}".strip(),
                    f"{_when(i.resolved_at)} {i.resolved_by or ''}".strip(),
                    i.status,
                ]
                for i in review.incidents
            ],
        ),
        "<h2>Playbook outcomes</h2>",
        _bars(review.playbook_runs),
        "<h2>Approvals</h2>",
        _bars(review.approvals),
        "<h2>Top recurring causes</h2>",
        _table(
            ["category", "root cause", "times", "issue"],
            [
                [
                    r.category,
                    r.root_cause,
                    str(r.occurrences),
                    r.issue_url or (f"#{r.issue_number}" if r.issue_number else "not filed"),
                ]
                for r in review.recurring
            ],
        ),
        "<h2>Triage corrected by people</h2>",
        _table(
            ["ticket", "priority", "correction"],
            [
                [str(c.ticket_id or "")[:8], c.priority or "", c.correction]
                for c in review.corrections
            ],
        ),
        "<h2>Agenda: playbook and knowledge updates</h2>",
        "<p>Knowledge articles most used</p>",
        _bars(review.articles_used),
        "<p>Categories most often handed to people</p>",
        _bars(review.handed_off_categories),
        "<p>Articles whose replies were graded wrong</p>",
        _bars(review.articles_graded_wrong),
    ]
    if grade_links is not None and samples:
        parts.append(f"<h2>Grade this week's sample ({len(samples)})</h2>")
        for sample in samples:
            links = " ".join(
                f'<a class="g" href="{_e(url)}">{_e(grade.label)}</a>'
                for grade, url in grade_links(sample).items()
            )
            parts.append(
                f"<p><b>{_e(sample.kind.value.replace('_', ' '))}</b> "
                f'<span class="muted">{_e(sample.category or "")}</span><br>'
                f"{_e(sample.summary)}<br>{links}</p>"
            )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Weekly support review {_e(review.week)}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(parts)}</body></html>"
    )


def slack_summary(review: WeeklyReview, *, url: str | None) -> str:
    """The Slack post: the headline figures, met or missed, and a link to the report
    (``kruxt review show`` when there is no link secret to sign one)."""
    lines = [f"*Weekly support review {review.week}*"]
    for name, now, before, target, ok in figure_lines(review.this_week, review.last_week):
        mark = (
            "" if not target else (" :white_check_mark:" if ok else " :x:" if ok is False else "")
        )
        lines.append(f"• {name}: {now} (last week {before or '-'}){mark}")
    lines.append(
        f"{len(review.breaches)} SLA breaches · {len(review.incidents)} incidents · "
        f"{review.samples} answers to grade"
    )
    lines.append(f"<{url}|Open the report>" if url else f"`kruxt review show --week {review.week}`")
    return "\n".join(lines)
