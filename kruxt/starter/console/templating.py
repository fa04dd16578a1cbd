"""How the console renders: Jinja2 templates from the package (autoescaped), its static files,
and the headers every console page carries.

Pages are server-rendered; the one script is the vendored htmx, served from the package under
a Content-Security-Policy that allows nothing else (no inline script, no remote origin).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import select_autoescape

from kruxt.adapters.durations import format_duration
from kruxt.adapters.email_texts import format_utc

__all__ = [
    "CHART_CSP",
    "PAGE_HEADERS",
    "REVIEW_CSP",
    "STATIC_DIR",
    "TEMPLATES_DIR",
    "countdown",
    "error_page",
    "render",
    "since",
    "templates",
    "wants_page",
]

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

# Scripts and styles from this origin only; no framing (an approve button must not be
# clickjacked); forms post back here only. The KPI charts are our own inline SVG, whose
# matplotlib styles are attributes: that page alone adds 'unsafe-inline' for styles.
_CSP = (
    "default-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)
CHART_CSP = _CSP.replace("img-src", "style-src 'self' 'unsafe-inline'; img-src")
# The weekly review is the page its mail carries: its own inline styles, nothing else at all.
REVIEW_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
PAGE_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": _CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Pages show tickets and are per person: never kept by a shared cache or the back button.
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


def since(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago: "< 1 min", "12 min", "3 h 05 min", "4 d"."""
    if moment is None:
        return ""
    seconds = max(0.0, ((now or _utcnow()) - moment).total_seconds())
    if seconds < 60:
        return "< 1 min"
    return f"{int(seconds // 86400)} d" if seconds >= 2 * 86400 else format_duration(seconds)


def countdown(due: datetime | None, now: datetime | None = None) -> str:
    """Time left to ``due``: "in 42 min", or "3 h late" once it has passed."""
    if due is None:
        return ""
    left = (due - (now or _utcnow())).total_seconds()
    return f"in {format_duration(left)}" if left >= 0 else f"{format_duration(-left)} late"


def _when(moment: datetime | None) -> str:
    return format_utc(moment) if moment is not None else ""


def _percent(value: float | None) -> str:
    return f"{value:.0%}" if value is not None else ""


def _words(value: object) -> str:
    """An enum value for people: "awaiting_approval" -> "awaiting approval"."""
    return str(getattr(value, "value", value) or "").replace("_", " ")


@functools.cache
def templates() -> Jinja2Templates:
    """The console's templates; autoescaping is on for every ``.html`` (ticket text is never
    trusted), and there is no filter that turns it off for ticket fields."""
    engine = Jinja2Templates(directory=TEMPLATES_DIR)
    env = engine.env
    env.autoescape = select_autoescape(["html"], default_for_string=True, default=True)
    env.trim_blocks = True
    env.lstrip_blocks = True
    env.filters.update(when=_when, since=since, countdown=countdown, percent=_percent, words=_words)
    return engine


def render(
    request: Request,
    name: str,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    **values: Any,
) -> HTMLResponse:
    """The template ``name`` as a response with the console's headers.

    Templates see ``request`` and ``values``; ``base.html`` reads ``user`` (the signed-in
    :class:`~kruxt.starter.console.auth.StaffMember`, or None on the sign-in pages) and
    ``csrf_token`` (sent by htmx with every request, and in every form's hidden field).
    """
    values.setdefault("user", None)
    values.setdefault("csrf_token", None)
    response = templates().TemplateResponse(
        request, name, values, status_code=status_code, headers={**PAGE_HEADERS, **(headers or {})}
    )
    assert isinstance(response, HTMLResponse)
    return response


_TITLES = {404: "Not found", 403: "Not allowed", 409: "Already done", 422: "Cannot do that"}


def wants_page(request: Request) -> bool:
    """True for a browser's own request of a console page (not htmx, not the JSON API), which
    should get an error as a page rather than as JSON."""
    return (
        request.url.path.startswith("/console")
        and not request.headers.get("hx-request")
        and "text/html" in request.headers.get("accept", "")
    )


def error_page(request: Request, status_code: int, detail: object) -> HTMLResponse:
    """An error of a console page as a page: what went wrong and the way back to the queue."""
    text = detail.get("detail") if isinstance(detail, dict) else detail
    return render(
        request,
        "error.html",
        status_code=status_code,
        title=_TITLES.get(status_code, "Something went wrong"),
        detail=str(text or "That did not work."),
    )
