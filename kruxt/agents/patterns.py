"""The linear-time patterns the agents read untrusted text with (see :mod:`kruxt.models.patterns`).

They live in ``models`` because adapters (the LLM triager's prompt fencing) need them too, and
adapters may not import agents.
"""

from kruxt.models.patterns import (
    NOT_SPACE,
    SPACE,
    UNICODE_SPACE,
    Guard,
    Match,
    Pattern,
    ascii_words,
    encodable,
)

__all__ = [
    "NOT_SPACE",
    "SPACE",
    "UNICODE_SPACE",
    "Guard",
    "Match",
    "Pattern",
    "ascii_words",
    "encodable",
]
