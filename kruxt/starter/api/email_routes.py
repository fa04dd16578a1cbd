"""Approval links from e-mail: ``GET`` shows the request, only ``POST`` decides.

Mail scanners and link previews open every link in a mail, so opening one must change
nothing: ``GET /approvals/email/{token}`` verifies the token and shows the request with a
confirm button; ``POST`` to the same URL consumes the token (once) and sends the decision.
The token is the whole identity: the approver it names decides, with the verdict it names.
A reject link also offers "triage wrong": the category and severity it should have had,
recorded as the decision's correction (as Slack's "Triage wrong" does). A request decided
elsewhere shows who decided it and when, and no button.

Pages are small HTML strings, everything escaped, no JavaScript, under a strict CSP.
"""

from __future__ import annotations

import base64
import hashlib
import html
import logging
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from kruxt.adapters.email_texts import action_title, format_utc, preview_lines
from kruxt.adapters.email_tokens import (
    ApprovalTokens,
    TokenClaims,
    TokenExpired,
    TokenInvalid,
)
from kruxt.adapters.postgres.email_tokens import EmailTokenStore
from kruxt.models.approvals import (
    ApprovalKind,
    ApprovalRequest,
    ApprovalStanding,
    ApprovalStatus,
    DecisionChannel,
    TriageCorrection,
    Verdict,
)
from kruxt.models.enums import Category, Priority
from kruxt.starter.approvals import Decider, DecisionAttempt, DecisionRefusedError

__all__ = ["EmailContext", "email_router"]

log = logging.getLogger(__name__)

MAX_REASON_CHARS = 2000


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class EmailContext:
    """What the e-mail approval routes need, built by the entrypoint (or a test)."""

    tokens: ApprovalTokens
    store: EmailTokenStore
    load_request: Callable[[uuid.UUID], Awaitable[ApprovalRequest | None]]
    decider: Decider
    now: Callable[[], datetime] = field(default=_utcnow)
    # Where the request stands: one decided elsewhere (Slack, the CLI) shows no button.
    load_standing: Callable[[uuid.UUID], Awaitable[ApprovalStanding | None]] | None = None


# --- pages ---------------------------------------------------------------------------------

_CSS = (
    "body{font-family:-apple-system,Segoe UI,Roboto,sans-serif;max-width:640px;margin:0 auto;"
    "padding:16px;color:#1a1a1a;line-height:1.45}"
    "h1{font-size:1.4em}h2{font-size:1.05em;margin:1.4em 0 .3em}"
    ".pre{white-space:pre-wrap;font-family:ui-monospace,Menlo,Consolas,monospace;"
    "font-size:.85em;background:#f6f8fa;padding:8px;border-radius:6px;overflow-wrap:anywhere}"
    ".lead{font-size:1.1em;white-space:pre-wrap}.muted{color:#555;font-size:.9em}"
    "textarea{width:100%;box-sizing:border-box;min-height:5em;font:inherit}"
    "button{width:100%;padding:16px;font-size:1.15em;font-weight:bold;border:0;"
    "border-radius:8px;color:#fff;margin-top:12px}"
    ".approve{background:#1a7f37}.reject{background:#b42318}"
    "label{display:block;margin-top:10px}select{width:100%;font:inherit;padding:6px}"
)
_CSS_HASH = base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()
_HEADERS = {
    # No scripts, no remote anything; the one stylesheet is pinned by its hash; forms post
    # back here only; no framing (a confirm button must not be clickjacked).
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # The token is in the URL: never send it on, never cache the page, never index it.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
}

_e = html.escape


def _page(status: int, title: str, body: str, *, site: str = "KRUXT approvals") -> HTMLResponse:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(title)} · {_e(site)}</title><style>{_CSS}</style></head>"
        f"<body>{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=_HEADERS)


def _message(status: int, title: str, text: str, *, site: str = "KRUXT approvals") -> HTMLResponse:
    return _page(status, title, f"<h1>{_e(title)}</h1><p>{_e(text)}</p>", site=site)


def _invalid() -> HTMLResponse:
    return _message(
        400,
        "This link is not valid",
        "The link is incomplete or was changed. Open it again from the mail, or decide in "
        "Slack or with `kruxt approvals decide`.",
    )


def _expired(claims: TokenClaims) -> HTMLResponse:
    return _message(
        410,
        "This link has expired",
        f"It could be used until {format_utc(claims.expires_at)}. Nothing was decided.",
    )


def _replayed() -> HTMLResponse:
    return _message(
        409,
        "This link was already used",
        "Each approval link works once. Nothing more was decided.",
    )


def _closed_text(request: ApprovalRequest, standing: ApprovalStanding | None) -> str | None:
    """Why the request can no longer be decided, or None while it is open."""
    if standing is None or standing.status is ApprovalStatus.PENDING:
        return None
    if standing.status is ApprovalStatus.EXPIRED:
        # Expired at its deadline, or closed early because the ticket was resolved first.
        why = standing.reason or f"it expired at {format_utc(request.expires_at)}"
        return f"This request was closed without a decision ({why}). Nothing was changed."
    when = f" at {format_utc(standing.decided_at)}" if standing.decided_at else ""
    return f"This request was already {standing.status.value} by {standing.decided_by}{when}."


def _triage_fields() -> str:
    """The reject form's "triage wrong" part: what the category and severity should be."""

    def select(name: str, values: list[str]) -> str:
        options = "".join(f'<option value="{_e(v)}">{_e(v)}</option>' for v in values)
        return (
            f'<label for="{name}">Right {name}</label><select id="{name}" name="{name}">'
            f'<option value="">(as triaged)</option>{options}</select>'
        )

    return (
        '<h2>Triage wrong?</h2><p class="muted">Pick what it should have been: the correction '
        "is recorded with the rejection and feeds the triage's evaluation.</p>"
        + select("category", [c.value for c in Category])
        + select("severity", [p.value for p in Priority])
    )


def _request_page(
    request: ApprovalRequest, claims: TokenClaims, *, closed: str | None
) -> HTMLResponse:
    approve = claims.verdict is Verdict.APPROVE
    verb = "approve" if approve else "reject"
    preview = "\n".join(preview_lines(request.preview)) or "(no dry-run preview)"
    sections = [
        ("Technical explanation", request.technical_explanation),
        ("Dry-run preview", preview),
        ("Rollback plan", request.rollback_plan),
    ]
    if request.draft_reply:
        sections.append(("Drafted reply to the customer", request.draft_reply))
    details = "".join(
        f'<h2>{_e(title)}</h2><div class="pre">{_e(text)}</div>' for title, text in sections
    )
    if closed is not None:
        form = ""
    else:
        reason = (
            ""
            if approve
            else '<label for="reason">Reason (optional, shared with the team)</label>'
            f'<textarea id="reason" name="reason" maxlength="{MAX_REASON_CHARS}"></textarea>'
            + (_triage_fields() if request.kind is ApprovalKind.PLAN else "")
        )
        form = (
            f'<form method="post">{reason}'
            f'<button type="submit" class="{verb}">Confirm {verb}</button></form>'
        )
    # Decided (or closed) already: said first, and the page no longer asks the question.
    head = (
        f"<h1>{_e(verb.capitalize())}: {_e(action_title(request))}?</h1>"
        if closed is None
        else f"<h1>No longer open: {_e(action_title(request))}</h1><p><strong>{_e(closed)}"
        "</strong> Nothing more can be decided with this link.</p>"
    )
    deadline = f"<br>Decide by {_e(format_utc(request.expires_at))}" if closed is None else ""
    body = (
        f"{head}"
        f'<p class="lead">{_e(request.plain_explanation)}</p>'
        f"<p><strong>Ticket {_e(str(request.ticket_id)[:8])}:</strong> {_e(request.summary)}<br>"
        f"Severity {_e(request.severity.value)} · triage confidence "
        f"{request.confidence:.0%} · playbook {_e(request.playbook)}{deadline}</p>"
        f'<p class="muted">You are deciding as <strong>{_e(claims.approver_email)}</strong>.</p>'
        # The form comes last: read, then confirm.
        f"{details}{form}"
    )
    return _page(409 if closed else 200, f"{verb.capitalize()} request", body)


# --- routes --------------------------------------------------------------------------------


def _used_from(http: Request) -> str:
    host = http.client.host if http.client else "unknown"
    agent = http.headers.get("user-agent", "")
    return f"{host} {agent}".strip()


async def _form(http: Request) -> dict[str, str]:
    """The fields of a form post (urlencoded; nothing else is read from it), each stripped."""
    if not http.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    raw = (await http.body()).decode("utf-8", "replace")
    fields = urllib.parse.parse_qs(raw, max_num_fields=10)
    return {name: values[0].strip() for name, values in fields.items()}


class _BadCorrection(ValueError):
    """The "triage wrong" fields name no category or severity we know."""


def _rejection(form: dict[str, str]) -> tuple[str, TriageCorrection | None]:
    """A reject form's reason and its "triage wrong" correction (None when nothing picked).

    Raises:
        _BadCorrection: a field names no known category or severity.
    """
    reason = form.get("reason", "")[:MAX_REASON_CHARS]
    category, severity = form.get("category", ""), form.get("severity", "")
    if not (category or severity):
        return reason, None
    try:
        correction = TriageCorrection(
            category=Category(category) if category else None,
            severity=Priority(severity) if severity else None,
        )
    except ValueError:
        raise _BadCorrection from None
    fixed = correction.model_dump(mode="json", exclude_none=True)
    said = reason or ", ".join(
        f"{name} should be {fixed[name]}" for name in ("category", "severity") if name in fixed
    )
    # The plan was built from a wrong triage: it is rejected, the correction recorded.
    return f"triage wrong: {said}", correction


def email_router(get_ctx: Callable[[Request], EmailContext]) -> APIRouter:
    """The ``/approvals/email/{token}`` routes; ``get_ctx`` finds their dependencies."""
    router = APIRouter(tags=["approvals"])

    @router.get("/approvals/email/{token}", response_class=HTMLResponse)
    async def show_email_approval(token: str, http: Request) -> HTMLResponse:
        """Show the request and a confirm form. Never decides, never uses the link up."""
        ctx = get_ctx(http)
        try:
            claims = ctx.tokens.verify(token, now=ctx.now())
        except TokenInvalid:
            return _invalid()
        except TokenExpired as exc:
            return _expired(exc.claims)
        request = await ctx.load_request(claims.approval_id)
        if request is None:
            return _message(
                404, "Unknown approval request", "This request no longer exists. Nothing to do."
            )
        standing = await ctx.load_standing(claims.approval_id) if ctx.load_standing else None
        closed = _closed_text(request, standing)
        record = await ctx.store.get(claims.jti)
        if closed is None and record is not None and record.used_at is not None:
            closed = "This link was already used."
        return _request_page(request, claims, closed=closed)

    @router.post("/approvals/email/{token}", response_class=HTMLResponse)
    async def decide_email_approval(token: str, http: Request) -> HTMLResponse:
        """Use the link (once) and send its decision as the approver it names."""
        ctx = get_ctx(http)
        try:
            claims = ctx.tokens.verify(token, now=ctx.now())
        except TokenInvalid as exc:
            # Not ours: nothing is written for it (a flood of junk must not fill the audit log).
            log.warning("email approval refused: %s token", exc.reason)
            return _invalid()
        except TokenExpired as exc:
            await ctx.store.record_refused(exc.claims, reason="expired", used_from=_used_from(http))
            return _expired(exc.claims)
        used_from = _used_from(http)
        request = await ctx.load_request(claims.approval_id)
        reason, correction = "", None
        if claims.verdict is Verdict.REJECT:
            form = await _form(http)
            if request is None or request.kind is not ApprovalKind.PLAN:
                form = {"reason": form.get("reason", "")}  # only a plan has a triage to correct
            try:
                reason, correction = _rejection(form)
            except _BadCorrection:
                return _message(400, "Not decided", "Unknown category or severity.")
        standing = await ctx.load_standing(claims.approval_id) if ctx.load_standing else None
        closed = _closed_text(request, standing) if request is not None else None
        if closed is not None:
            # Decided elsewhere: this link decides nothing, and stays as it was.
            await ctx.store.record_refused(claims, reason=closed, used_from=used_from)
            return _message(409, "Not decided", closed)
        if not await ctx.store.consume(claims, used_from=used_from):
            return _replayed()
        try:
            attempt = DecisionAttempt(
                approval_id=claims.approval_id,
                approver_email=claims.approver_email,
                verdict=claims.verdict,
                channel=DecisionChannel.EMAIL,
                reason=reason,
            )
            if correction is not None:
                attempt.correction = correction
            outcome = await ctx.decider.decide(attempt)
        except DecisionRefusedError as exc:
            await ctx.store.record_refused(claims, reason=str(exc), used_from=used_from)
            return _message(409, "Not decided", str(exc))
        except Exception as exc:  # the link is used up either way: say what to do instead
            log.exception("email approval %s could not be delivered", claims.approval_id)
            await ctx.store.record_refused(
                claims, reason=f"not delivered: {type(exc).__name__}", used_from=used_from
            )
            return _message(
                503,
                "The decision could not be confirmed",
                "It may not have been recorded, and this link cannot be used again. Please "
                "check the ticket, decide in Slack or with `kruxt approvals decide`, or ask for "
                "a new link.",
            )
        wanted = (
            ApprovalStatus.APPROVED
            if claims.verdict is Verdict.APPROVE
            else ApprovalStatus.REJECTED
        )
        if outcome.status is not wanted or outcome.decided_by.lower() != claims.approver_email:
            # The decision that stands is someone else's.
            text = (
                f"This request was already {outcome.status.value} by {outcome.decided_by} "
                f"at {format_utc(outcome.decided_at)}."
            )
            await ctx.store.record_refused(claims, reason=text, used_from=used_from)
            return _message(409, "Not decided", text)
        title = (
            "Approved. Thank you" if claims.verdict is Verdict.APPROVE else "Rejected. Thank you"
        )
        corrected = " The triage correction is recorded too." if correction else ""
        return _message(
            200,
            title,
            f"Recorded for {outcome.decided_by} at {format_utc(outcome.decided_at)}.{corrected}",
        )

    return router
