"""Text a customer or a channel sends: what Postgres can store, and how that is checked.

PostgreSQL ``text`` refuses NUL, and asyncpg cannot encode an unpaired surrogate as UTF-8;
either one made a ticket fail to persist on every retry. Other C0 controls and DEL are
storable but never meant (terminal escapes, form feeds), so intake refuses them too; only
tab, newline and carriage return pass. The check is one character class: linear time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BeforeValidator

__all__ = [
    "BAD_DATA_ERROR",
    "REFUSE_UNSTORABLE",
    "REPLACEMENT",
    "StorableText",
    "UnstorableTextError",
    "refuse_unstorable",
    "replace_unstorable",
    "require_storable",
    "sentence",
    "unstorable_reason",
]

# C0 controls except \t \n \r, DEL, and the surrogate range (only ever unpaired in a str).
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
REPLACEMENT = "\ufffd"


class UnstorableTextError(ValueError):
    """A field holds characters intake refuses; ``field`` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def unstorable_reason(value: str) -> str | None:
    """Why ``value`` is refused (the first bad character and where), or None if it is fine."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    char = found.group()
    kind = "an unpaired surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
    return (
        f"contains {kind} (U+{ord(char):04X}) at position {found.start()}; control "
        "characters (other than tab, newline and carriage return) and unpaired surrogates "
        "are not accepted"
    )


def refuse_unstorable(value: Any) -> Any:
    """Pydantic validator: refuse a string :func:`unstorable_reason` objects to.

    It runs before stripping and length checks, so a control character is refused wherever
    it stands; anything not a string is left to the type's own validation.
    """
    if isinstance(value, str):
        reason = unstorable_reason(value)
        if reason is not None:
            raise ValueError(reason)
    return value


def require_storable(fields: Mapping[str, str | None]) -> None:
    """Check named fields at once (for callers that take plain strings, like the CLI).

    Raises:
        UnstorableTextError: naming the first field refused.
    """
    for field, value in fields.items():
        reason = unstorable_reason(value) if value is not None else None
        if reason is not None:
            raise UnstorableTextError(field, reason)


def replace_unstorable(value: str) -> str:
    """``value`` with every refused character replaced by U+FFFD (deterministic, pure)."""
    return _UNSTORABLE.sub(REPLACEMENT, value)


# Every field of ticket text that arrives from outside carries this. In a constrained type put
# it last (``Annotated[str, StringConstraints(...), REFUSE_UNSTORABLE]``): it then wraps the
# constraints and sees the raw value, before stripping.
REFUSE_UNSTORABLE = BeforeValidator(refuse_unstorable)
StorableText = Annotated[str, REFUSE_UNSTORABLE]

# The ApplicationError type an activity raises for data no retry can store (non-retryable).
BAD_DATA_ERROR = "BadTicketData"


def sentence(text: str) -> str:
    """``text`` as a sentence to paste into a message: trimmed, capitalised, full stop added."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?", "…")) else text + "."
