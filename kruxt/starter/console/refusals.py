"""The domain errors the console's actions raise, as answers: one mapping for the pages and the
JSON API, so a refusal reads (and is coded) the same in both."""

from __future__ import annotations

from dataclasses import dataclass

from kruxt.models.text import UnstorableTextError
from kruxt.starter.approvals import DecisionRefusedError
from kruxt.starter.incidents import IncidentRefusedError, UnknownIncidentError
from kruxt.starter.intake import TicketClosedError, UnknownTicketError
from kruxt.starter.staff import TicketAlreadySolvedError

__all__ = ["REFUSED", "BadInputError", "Refusal", "refusal_of"]


class BadInputError(ValueError):
    """A form or body field the console cannot act on; the message names it."""


@dataclass(frozen=True)
class Refusal:
    """An action that did not happen: HTTP status, error code and what to tell the person."""

    status: int
    error: str
    detail: str


# What each error means to the person who acted (the message says the particulars).
_CODES: dict[type[Exception], tuple[int, str]] = {
    # Not theirs to decide (the requester, a missing role), expired or decided already.
    DecisionRefusedError: (403, "decision_refused"),
    IncidentRefusedError: (409, "incident_refused"),
    TicketAlreadySolvedError: (409, "already_solved"),
    TicketClosedError: (409, "ticket_closed"),
    UnknownTicketError: (404, "not_found"),
    UnknownIncidentError: (404, "not_found"),
    UnstorableTextError: (422, "invalid_request"),
    BadInputError: (422, "invalid_request"),
}
REFUSED: tuple[type[Exception], ...] = tuple(_CODES)


def refusal_of(exc: Exception) -> Refusal:
    """The answer to ``exc``, one of ``REFUSED``."""
    status, error = next(code for kind, code in _CODES.items() if isinstance(exc, kind))
    if isinstance(exc, UnknownTicketError):
        detail = f"no ticket {exc}"
    elif isinstance(exc, UnknownIncidentError):
        detail = f"no incident {exc}"
    elif isinstance(exc, TicketClosedError):
        detail = "the ticket is closed: its reopen window ended"
    elif isinstance(exc, TicketAlreadySolvedError):
        detail = f"the ticket {exc}"
    elif isinstance(exc, UnstorableTextError):
        detail = f"{exc.field}: {exc.reason}"
    else:
        detail = str(exc) or type(exc).__name__
    return Refusal(status=status, error=error, detail=detail)
