"""A customer's confirm link: ``GET`` shows, only ``POST`` confirms the answer worked.

Mail scanners and link previews open every link in a message, so opening one changes
nothing: ``GET /v1/tickets/{id}/confirm/{token}`` verifies the token and shows a button;
``POST`` to the same URL solves the ticket as "confirmed", as a customer's "thanks, that
worked" would. A link confirms once: the next ``POST`` is told the ticket is confirmed already.
The pages are those of the e-mail approval routes (escaped, no JavaScript, a strict CSP).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from temporalio.client import Client

from kruxt.adapters.email_texts import format_utc
from kruxt.adapters.email_tokens import ConfirmClaims, ConfirmExpired, ConfirmTokens, TokenInvalid
from kruxt.models.enums import TicketStatus
from kruxt.models.lifecycle import SolvedHow
from kruxt.models.tickets import TicketState, workflow_id_for
from kruxt.starter.api import email_routes
from kruxt.starter.api.email_routes import _utcnow
from kruxt.starter.intake import TicketClosedError, UnknownTicketError, signal_ticket
from kruxt.workflows.ticket import TicketWorkflow

__all__ = ["ConfirmContext", "confirm_router"]

log = logging.getLogger(__name__)

# The approval pages' look, but these are the customer's: named for support, not approvals.
_page = partial(email_routes._page, site="KRUXT support")
_message = partial(email_routes._message, site="KRUXT support")

REPLY_HINT = "reply to our message instead"


@dataclass
class ConfirmContext:
    """What the confirm routes need, built by the entrypoint (or a test)."""

    tokens: ConfirmTokens
    client: Client
    now: Callable[[], datetime] = field(default=_utcnow)

    async def state(self, ticket_id: uuid.UUID) -> TicketState:
        """The live state of the ticket's workflow."""
        handle = self.client.get_workflow_handle_for(TicketWorkflow.run, workflow_id_for(ticket_id))
        return await handle.query(TicketWorkflow.state)

    async def confirm(self, ticket_id: uuid.UUID) -> None:
        """Tell the ticket's workflow its customer confirmed (``signal_ticket``'s errors)."""
        await signal_ticket(self.client, ticket_id, TicketWorkflow.confirm, "the link")


def _verified(
    ctx: ConfirmContext, ticket_id: uuid.UUID, token: str
) -> ConfirmClaims | HTMLResponse:
    """The link's claims, or the page that says why it cannot be used (for this ticket)."""
    claims: ConfirmClaims | None = None
    try:
        claims = ctx.tokens.verify(token, now=ctx.now())
    except TokenInvalid as exc:
        log.info("confirm link refused: %s token", exc.reason)
    except ConfirmExpired as exc:
        until = format_utc(exc.claims.expires_at)
        text = f"It could be used until {until}. If anything is still wrong, write to us again."
        return _message(410, "This link has expired", text)
    if claims is None or claims.ticket_id != ticket_id:
        text = f"The link is incomplete or was changed. Open it from our message, or {REPLY_HINT}."
        return _message(400, "This link is not valid", text)
    return claims


def _settled(state: TicketState) -> HTMLResponse | None:
    """The page for a ticket the link cannot confirm (any more); None: it can."""
    life = state.lifecycle
    if state.status is TicketStatus.RESOLVED and life.solved_at is not None:
        if life.solved_how is SolvedHow.CONFIRMED:
            title, text = "Already confirmed", f"You confirmed it at {format_utc(life.solved_at)}."
        else:
            title, text = "Already solved", f"It was closed at {format_utc(life.solved_at)}."
        return _message(200, title, f"{text} Thank you. Nothing more to do.")
    if state.status is not TicketStatus.AWAITING_CUSTOMER:
        return _message(
            409,
            "We are still on it",
            "Someone from our team is looking at this ticket now; there is nothing to confirm "
            f"yet. If it is solved for you, {REPLY_HINT}.",
        )
    return None


def confirm_router(get_ctx: Callable[[Request], ConfirmContext]) -> APIRouter:
    """The ``/v1/tickets/{ticket_id}/confirm/{token}`` routes."""
    router = APIRouter(tags=["tickets"])
    path = "/v1/tickets/{ticket_id}/confirm/{token}"

    @router.get(path, response_class=HTMLResponse)
    async def show_confirm(ticket_id: uuid.UUID, token: str, http: Request) -> HTMLResponse:
        """A page with a confirm button. Never changes the ticket."""
        checked = _verified(get_ctx(http), ticket_id, token)
        if isinstance(checked, HTMLResponse):
            return checked
        body = (
            "<h1>Did our answer solve it?</h1>"
            "<p>Confirming closes the ticket. If anything comes back, just reply to us.</p>"
            '<form method="post"><button type="submit">Yes, it is solved</button></form>'
        )
        return _page(200, "Confirm the answer", body)

    @router.post(path, response_class=HTMLResponse)
    async def confirm(ticket_id: uuid.UUID, token: str, http: Request) -> HTMLResponse:
        """Solve the ticket as confirmed; a second confirmation says it was."""
        ctx = get_ctx(http)
        checked = _verified(ctx, ticket_id, token)
        if isinstance(checked, HTMLResponse):
            return checked
        try:
            settled = _settled(await ctx.state(ticket_id))
            if settled is not None:
                return settled
            await ctx.confirm(ticket_id)
        except (TicketClosedError, UnknownTicketError):
            return _message(200, "Already closed", "This ticket is closed. Nothing more to do.")
        except Exception:  # say what to do instead
            log.exception("ticket %s: confirmation not delivered", ticket_id)
            return _message(
                503,
                "The confirmation could not be recorded",
                f"Try the link again in a moment, or {REPLY_HINT}.",
            )
        return _message(200, "Thank you", "We are glad it is solved; the ticket is now closed.")

    return router
