"""The weekly review's grade links: ``GET`` shows the sample, only ``POST`` grades it.

Mail scanners open every link in a mail, so ``GET /reviews/grade/{token}`` verifies the
token and shows the sampled reply or triage with the grade it names and a note field;
``POST`` records the grade, once per sample: whichever of its links is posted first wins,
later posts are told who graded it. The pages are the e-mail approval routes' (escaped, no
JavaScript, a strict CSP).

``GET /reviews/report/{token}`` shows a stored week's report: the link in the Slack summary,
signed for that week only, read-only, so it needs no confirm step.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from kruxt.adapters.email_tokens import GradeClaims, GradeTokens, TokenError, TokenInvalid
from kruxt.adapters.postgres.reviews import GradeRefused, ReviewStore
from kruxt.models.review import Grade, ReviewSample
from kruxt.starter.api.email_routes import _e, _message, _page, _utcnow

__all__ = ["GradeContext", "grade_router"]

log = logging.getLogger(__name__)

MAX_NOTE_CHARS = 2000


@dataclass
class GradeContext:
    """What the grade routes need, built by the entrypoint (or a test)."""

    tokens: GradeTokens
    store: ReviewStore
    now: Callable[[], datetime] = field(default=_utcnow)


def _verified(ctx: GradeContext, token: str) -> tuple[GradeClaims, Grade] | HTMLResponse:
    try:
        claims = ctx.tokens.verify(token, now=ctx.now())
        return claims, Grade(claims.grade)
    except TokenInvalid as exc:
        log.info("grade link refused: %s token", exc.reason)
    except TokenError as exc:
        return _message(410, "This link has expired", str(exc))
    except ValueError:
        pass
    return _message(400, "This link is not valid", "Open it from the review mail.")


def _not_gradable(sample: ReviewSample | None) -> HTMLResponse:
    """The page for a sample no longer kept (404), or graded already (409, by whom)."""
    if sample is None:
        return _message(404, "Unknown sample", "This sample is no longer kept.")
    grade = sample.grade.label if sample.grade else "graded"
    return _message(
        409, "Already graded", f"{sample.graded_by or 'Someone'} graded this one: {grade}."
    )


def grade_router(get_ctx: Callable[[Request], GradeContext]) -> APIRouter:
    """The ``/reviews/grade/{token}`` routes."""
    router = APIRouter(tags=["reviews"])
    path = "/reviews/grade/{token}"

    @router.get(path, response_class=HTMLResponse)
    async def show_sample(token: str, http: Request) -> HTMLResponse:
        """The sample and a confirm form. Never grades."""
        ctx = get_ctx(http)
        checked = _verified(ctx, token)
        if isinstance(checked, HTMLResponse):
            return checked
        claims, grade = checked
        sample = await ctx.store.get_sample(claims.sample_id)
        if sample is None or sample.grade is not None:
            return _not_gradable(sample)
        body = (
            f"<h1>Grade: {_e(grade.label)}</h1>"
            f'<p class="muted">{_e(sample.kind.value.replace("_", " "))} · '
            f"{_e(sample.category or '')} · week {_e(sample.week)}</p>"
            f'<div class="pre">{_e(sample.summary)}</div>'
            '<form method="post"><label>Note (optional)'
            '<textarea name="note" maxlength="2000"></textarea></label>'
            f'<button class="approve" type="submit">Record "{_e(grade.label)}"</button></form>'
        )
        return _page(200, "Grade an automatic answer", body)

    @router.post(path, response_class=HTMLResponse)
    async def record_grade(token: str, http: Request) -> HTMLResponse:
        """Record the grade once; a second post is refused."""
        ctx = get_ctx(http)
        checked = _verified(ctx, token)
        if isinstance(checked, HTMLResponse):
            return checked
        claims, grade = checked
        raw = (await http.body()).decode("utf-8", "replace")
        note = urllib.parse.parse_qs(raw, max_num_fields=5).get("note", [""])[0]
        try:
            await ctx.store.record_grade(
                claims.sample_id,
                grade=grade,
                note=note[:MAX_NOTE_CHARS],
                reviewer=claims.reviewer_email,
            )
        except GradeRefused as exc:
            return _not_gradable(exc.sample)
        return _message(200, "Thank you", f"Recorded: {grade.label}.")

    @router.get("/reviews/report/{token}", response_class=HTMLResponse)
    async def show_report(token: str, http: Request) -> HTMLResponse:
        """The stored report of the week the link was signed for."""
        ctx = get_ctx(http)
        try:
            week = ctx.tokens.verify_report(token, now=ctx.now())
        except TokenInvalid as exc:
            log.info("report link refused: %s token", exc.reason)
            return _message(400, "This link is not valid", "Open it from the Slack summary.")
        except TokenError as exc:
            return _message(410, "This link has expired", f"{exc}. Run `kruxt review show`.")
        stored = await ctx.store.get(week)
        if stored is None:
            return _message(404, "No such review", f"No review is stored for {week}.")
        return HTMLResponse(stored[1], headers=_REPORT_HEADERS)

    return router


# The report is one self-contained page: inline styles and SVG, nothing else, ever.
_REPORT_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
}
