"""Incident "Acknowledge" links from page e-mails: ``GET`` shows, only ``POST`` acknowledges.

Mail scanners and link previews open every link in a mail, so opening one changes nothing:
``GET /incidents/ack/{token}`` verifies the token and shows the incident with a confirm
button; ``POST`` to the same URL acknowledges it as the person the token names. Links are
not single use: the incident workflow refuses a second acknowledgement and says by whom.

Pages are the e-mail approval routes' pages: everything escaped, no JavaScript, strict CSP.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from kruxt.adapters.email_texts import format_utc
from kruxt.adapters.email_tokens import IncidentAckExpired, IncidentAckTokens, TokenInvalid
from kruxt.models.approvals import DecisionChannel
from kruxt.starter.api.email_routes import _e, _message, _page
from kruxt.starter.incidents import Acknowledger, IncidentRefusedError, UnknownIncidentError

__all__ = ["IncidentAckContext", "incident_router"]

log = logging.getLogger(__name__)

CLI_HINT = "press Acknowledge in Slack or run `kruxt incident ack`"


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class IncidentAckContext:
    """What the acknowledgement routes need, built by the entrypoint (or a test)."""

    tokens: IncidentAckTokens
    acknowledger: Acknowledger
    # The incident's title as the page shows it; None when there is no such incident.
    load_title: Callable[[uuid.UUID], Awaitable[str | None]]
    now: Callable[[], datetime] = field(default=_utcnow)
    # Who acknowledged the incident and when; None while nobody has (or when unknown).
    load_acknowledgement: Callable[[uuid.UUID], Awaitable[tuple[str, datetime] | None]] | None = (
        None
    )


async def _acknowledged(ctx: IncidentAckContext, incident_id: uuid.UUID) -> str | None:
    """The "already acknowledged by … at …" line once someone has, wherever they did it."""
    if ctx.load_acknowledgement is None:
        return None
    ack = await ctx.load_acknowledgement(incident_id)
    if ack is None:
        return None
    return f"This incident was already acknowledged by {ack[0]} at {format_utc(ack[1])}."


def _invalid() -> HTMLResponse:
    return _message(
        400,
        "This link is not valid",
        f"The link is incomplete or was changed. Open it again from the mail, or {CLI_HINT}.",
    )


def _expired(exc: IncidentAckExpired) -> HTMLResponse:
    return _message(
        410,
        "This link has expired",
        f"It could be used until {format_utc(exc.claims.expires_at)}. Nothing was "
        f"acknowledged; {CLI_HINT}.",
    )


def incident_router(get_ctx: Callable[[Request], IncidentAckContext]) -> APIRouter:
    """The ``/incidents/ack/{token}`` routes; ``get_ctx`` finds their dependencies."""
    router = APIRouter(tags=["incidents"])

    @router.get("/incidents/ack/{token}", response_class=HTMLResponse)
    async def show_incident_ack(token: str, http: Request) -> HTMLResponse:
        """Show the incident and a confirm form. Never acknowledges."""
        ctx = get_ctx(http)
        try:
            claims = ctx.tokens.verify(token, now=ctx.now())
        except TokenInvalid:
            return _invalid()
        except IncidentAckExpired as exc:
            return _expired(exc)
        title = await ctx.load_title(claims.incident_id)
        if title is None:
            return _message(404, "Unknown incident", "This incident does not exist.")
        # Acknowledged elsewhere (Slack, the CLI, another link): no button to press in vain.
        done = await _acknowledged(ctx, claims.incident_id)
        if done is not None:
            return _message(200, "Already acknowledged", f"{title}: {done} Nothing more to do.")
        body = (
            f"<h1>Acknowledge: {_e(title.rstrip('.'))}?</h1>"
            "<p>Acknowledging tells the team you are on it, and stops the paging.</p>"
            f'<p class="muted">Incident {_e(str(claims.incident_id))}. You are acknowledging '
            f"as <strong>{_e(claims.person_email)}</strong>.</p>"
            '<form method="post"><button type="submit" class="reject">'
            "Confirm: I&#x27;m on it</button></form>"
        )
        return _page(200, "Acknowledge incident", body)

    @router.post("/incidents/ack/{token}", response_class=HTMLResponse)
    async def acknowledge_incident(token: str, http: Request) -> HTMLResponse:
        """Acknowledge the incident as the person the link names."""
        ctx = get_ctx(http)
        try:
            claims = ctx.tokens.verify(token, now=ctx.now())
        except TokenInvalid as exc:
            log.warning("incident acknowledgement refused: %s token", exc.reason)
            return _invalid()
        except IncidentAckExpired as exc:
            return _expired(exc)
        try:
            ack = await ctx.acknowledger.acknowledge(
                claims.incident_id, by=claims.person_email, channel=DecisionChannel.EMAIL
            )
        except (IncidentRefusedError, UnknownIncidentError) as exc:
            done = await _acknowledged(ctx, claims.incident_id)
            if done is not None:  # the usual refusal: not an error for whoever reads it
                return _message(409, "Already acknowledged", done)
            return _message(409, "Not acknowledged", str(exc))
        except Exception:  # say what to do instead
            log.exception("incident %s: acknowledgement not delivered", claims.incident_id)
            return _message(
                503,
                "The acknowledgement could not be confirmed",
                f"It may not have been recorded. Try the link again in a moment, or {CLI_HINT}.",
            )
        return _message(
            200,
            "Acknowledged. Thank you",
            f"Recorded for {ack.by} at {format_utc(ack.at)}. The paging has stopped.",
        )

    return router
