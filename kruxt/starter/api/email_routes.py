"""Approval links from e-mail: ``GET`` shows the request, only ``POST`` decides.

Mail scanners and link previews open every link in a mail, so opening one must change
nothing: ``GET /approvals/email/{token}`` verifies the token and shows the request with a
confirm button; ``POST`` to the same URL consumes the token (once) and sends the decision.
The token is the whole identity: the approver it names decides, with the verdict it names.

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
    ApprovalRequest,
    ApprovalStatus,
    DecisionChannel,
    Verdict,
)
from kruxt.starter.approvals import Decider, DecisionRefusedError

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


def _page(status: int, title: str, body: str) -> HTMLResponse:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(title)} · KRUXT approvals</title><style>{_CSS}</style></head>"
        f"<body>{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=_HEADERS)


def _message(status: int, title: str, text: str) -> HTMLResponse:
    return _page(status, title, f"<h1>{_e(title)}</h1><p>{_e(text)}</p>")


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


def _request_page(request: ApprovalRequest, claims: TokenClaims, *, used: bool) -> HTMLResponse:
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
    if used:
        form = (
            "<p><strong>This link was already used.</strong> "
            "Nothing more can be decided with it.</p>"
        )
    else:
        reason = (
            ""
            if approve
            else '<label for="reason">Reason (optional, shared with the team)</label>'
            f'<textarea id="reason" name="reason" maxlength="{MAX_REASON_CHARS}"></textarea>'
        )
        form = (
            f'<form method="post">{reason}'
            f'<button type="submit" class="{verb}">Confirm {verb}</button></form>'
        )
    body = (
        f"<h1>{_e(verb.capitalize())}: {_e(action_title(request))}?</h1>"
        f'<p class="lead">{_e(request.plain_explanation)}</p>'
        f"<p><strong>Ticket {_e(str(request.ticket_id)[:8])}:</strong> {_e(request.summary)}<br>"
        f"Severity {_e(request.severity.value)} · triage confidence "
        f"{request.confidence:.0%} · playbook {_e(request.playbook)}<br>"
        f"Decide by {_e(format_utc(request.expires_at))}</p>"
        f'<p class="muted">You are deciding as <strong>{_e(claims.approver_email)}</strong>.</p>'
        # The form comes last: read, then confirm.
        f"{details}{form}"
    )
    return _page(409 if used else 200, f"{verb.capitalize()} request", body)


# --- routes --------------------------------------------------------------------------------


def _used_from(http: Request) -> str:
    host = http.client.host if http.client else "unknown"
    agent = http.headers.get("user-agent", "")
    return f"{host} {agent}".strip()


async def _reason(http: Request) -> str:
    """The optional ``reason`` of a form post (urlencoded; nothing else is read from it)."""
    if not http.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return ""
    raw = (await http.body()).decode("utf-8", "replace")
    values = urllib.parse.parse_qs(raw, max_num_fields=10).get("reason", [""])
    return values[0].strip()[:MAX_REASON_CHARS]


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
        record = await ctx.store.get(claims.jti)
        return _request_page(
            request, claims, used=record is not None and record.used_at is not None
        )

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
        reason = await _reason(http) if claims.verdict is Verdict.REJECT else ""
        used_from = _used_from(http)
        if not await ctx.store.consume(claims, used_from=used_from):
            return _replayed()
        try:
            outcome = await ctx.decider.decide(
                approval_id=claims.approval_id,
                approver_email=claims.approver_email,
                verdict=claims.verdict,
                channel=DecisionChannel.EMAIL,
                reason=reason,
            )
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
            text = f"The request is already {outcome.status.value} (by {outcome.decided_by})."
            await ctx.store.record_refused(claims, reason=text, used_from=used_from)
            return _message(409, "Not decided", text)
        title = (
            "Approved. Thank you" if claims.verdict is Verdict.APPROVE else "Rejected. Thank you"
        )
        return _message(
            200,
            title,
            f"Recorded for {outcome.decided_by} at {format_utc(outcome.decided_at)}.",
        )

    return router
