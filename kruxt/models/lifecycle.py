"""A ticket's life after the answer: solved (confirmed, assumed or by staff), the reopen window,
reopened. Pure: the durations, the confirmation detector and the state the workflow carries."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import pairwise

from pydantic import BaseModel, Field

__all__ = [
    "DEFAULT_AUTO_SOLVE_AFTER",
    "DEFAULT_REOPEN_WINDOW",
    "LifecycleEvent",
    "LifecycleState",
    "SolvedHow",
    "is_confirmation",
    "is_thanks",
    "lifecycle_line",
    "parse_duration",
]

DEFAULT_AUTO_SOLVE_AFTER = timedelta(hours=72)
DEFAULT_REOPEN_WINDOW = timedelta(days=7)

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, *, source: str) -> timedelta:
    """``"30s"``, ``"15m"``, ``"72h"``, ``"7d"`` or a bare number of seconds.

    Raises:
        ValueError: anything else, or zero; the message names ``source``.
    """
    raw = text.strip().lower()
    unit = _UNIT_SECONDS.get(raw[-1:])
    number = raw[:-1].strip() if unit else raw
    if not (number.isascii() and number.isdigit() and len(number) <= 9) or int(number) < 1:
        raise ValueError(
            f"invalid {source}: {text[:40]!r} is not a duration, e.g. 30s, 15m, 72h or 7d"
        )
    return timedelta(seconds=int(number) * (unit or 1))


class SolvedHow(StrEnum):
    """How a ticket came to be solved: each is its own KPI."""

    CONFIRMED = "confirmed"  # the customer said it worked, or clicked the confirm link
    ASSUMED = "assumed"  # no word from the customer within KRUXT_AUTO_SOLVE_AFTER
    STAFF = "staff"  # a staff member resolved it


class LifecycleState(BaseModel):
    """The lifecycle's part of the workflow state, carried across continue-as-new."""

    awaiting_since: datetime | None = Field(
        default=None, description="When the ticket began waiting on the customer"
    )
    auto_solve_at: datetime | None = None
    solved_at: datetime | None = None
    solved_how: SolvedHow | None = None
    solved_by: str | None = None
    reopen_until: datetime | None = Field(
        default=None, description="A customer message before this reopens the ticket"
    )
    reopened_count: int = 0
    reopened_at: datetime | None = None


class LifecycleEvent(BaseModel):
    """Input of ``record_lifecycle``: a ticket solved or reopened, for the audit and the KPIs."""

    ticket_id: uuid.UUID
    event: str = Field(description="ticket_solved or ticket_reopened")
    actor: str
    how: SolvedHow | None = None
    reopened_count: int = 0
    reopen_until: datetime | None = None


# -- the confirmation detector ---------------------------------------------------------------

# Words are runs of letters and apostrophes: one pass, no backtracking.
_WORD = re.compile(r"[a-z']+")
# Longer messages say more than "it worked": a person reads them.
_MAX_CHARS = 300
_MAX_WORDS = 30
_SUCCESS = frozenset(
    {"worked", "works", "working", "fixed", "solved", "resolved", "sorted", "perfect"}
)
_SUCCESS_PAIRS = frozenset({("all", "good"), ("all", "set"), ("all", "sorted")})
_THANKS = frozenset({"thanks", "thank", "thx", "ty", "cheers", "appreciated", "appreciate"})
# Any of these and it is not (only) a confirmation: a doubt, a negation, a new problem.
_DOUBT = frozenset(
    {
        "but",
        "still",
        "not",
        "no",
        "never",
        "nope",
        "don't",
        "doesn't",
        "didn't",
        "isn't",
        "wasn't",
        "won't",
        "can't",
        "cannot",
        "couldn't",
        "fail",
        "fails",
        "failed",
        "failing",
        "error",
        "errors",
        "broken",
        "broke",
        "again",
        "problem",
        "issue",
        "however",
        "except",
        "although",
        "though",
        "yet",
        "wrong",
        "same",
        "unfortunately",
        "if",
        "when",
        "until",
        "stopped",
        "partly",
        "partially",
        "almost",
    }
)


def is_confirmation(text: str) -> bool:
    """True when ``text`` only says the answer worked ("thanks, that worked", "all good now").

    Conservative: a question, a doubt or a negation anywhere ("thanks but it still fails"),
    or a long message, is not a confirmation; a person reads those. Linear in ``text``.
    """
    words = _plain_words(text)
    return any(w in _SUCCESS for w in words) or any(
        pair in _SUCCESS_PAIRS for pair in pairwise(words)
    )


def is_thanks(text: str) -> bool:
    """True when ``text`` only thanks or confirms ("thanks!", "thank you so much"): after a
    solve it reopens nothing. The same conservative reading as :func:`is_confirmation`."""
    words = _plain_words(text)
    return any(w in _THANKS for w in words) or is_confirmation(text)


def _plain_words(text: str) -> list[str]:
    """The words of a short message with no question, doubt or negation; else none."""
    if len(text) > _MAX_CHARS or "?" in text:
        return []
    words = _WORD.findall(text.lower().replace("\u2019", "'"))
    if len(words) > _MAX_WORDS or any(w in _DOUBT or w.endswith("n't") for w in words):
        return []
    return words


def lifecycle_line(state: LifecycleState) -> str | None:
    """The lifecycle in one line (the next timer first), or None before it has anything."""
    parts: list[str] = []
    if state.auto_solve_at is not None:
        parts.append(f"auto-solve at {state.auto_solve_at:%Y-%m-%d %H:%M} UTC unless they reply")
    if state.solved_how is not None and state.solved_at is not None:
        parts.append(
            f"solved ({state.solved_how.value}) by {state.solved_by} "
            f"at {state.solved_at:%Y-%m-%d %H:%M} UTC"
        )
    if state.reopen_until is not None:
        parts.append(f"reopen window ends at {state.reopen_until:%Y-%m-%d %H:%M} UTC")
    if state.reopened_count:
        parts.append(f"reopened {state.reopened_count}x")
    return " · ".join(parts) or None
