"""What a rule table is made of: weighted patterns, hints, and the helpers that spell them.

Every helper compiles through ``kruxt.agents.patterns`` (RE2): a pattern that cannot run in
linear time fails at import.
"""

from __future__ import annotations

from dataclasses import dataclass

from kruxt.agents.patterns import Guard, Pattern

__all__ = ["CategoryText", "Hint", "Rule", "any_of", "raw_rule", "rule", "rx", "words"]


@dataclass(frozen=True)
class Rule:
    """A pattern and the weight it adds to a category's score when it matches."""

    pattern: Pattern
    weight: float


def any_of(*alternatives: str) -> str:
    """One pattern matching any of the alternatives."""
    return "|".join(f"(?:{a})" for a in alternatives)


def words(*alternatives: str) -> str:
    """A pattern matching any of the alternatives as whole words."""
    return rf"\b(?:{any_of(*alternatives)})\b"


def rx(*alternatives: str | Guard) -> Pattern:
    """Compile alternatives to match whole words only, case-insensitively (on RE2)."""
    plain = [a for a in alternatives if isinstance(a, str)]
    guards = [g.wrapped(r"\b(?:{})\b") for g in alternatives if isinstance(g, Guard)]
    return Pattern(words(*plain) if plain else None, *guards)


def rule(weight: float, *alternatives: str | Guard) -> Rule:
    """A rule of whole-word alternatives (see :func:`rx`) that adds ``weight`` when it matches."""
    return Rule(rx(*alternatives), weight)


def raw_rule(weight: float, pattern: str | Guard) -> Rule:
    """A rule whose pattern starts or ends with a symbol ("#3", "Health > Sharing", "€30")."""
    if isinstance(pattern, Guard):
        return Rule(Pattern(None, pattern), weight)
    return Rule(Pattern(pattern), weight)


@dataclass(frozen=True)
class Hint:
    """A more specific cause (and maybe action) when the ticket shows a telling pattern."""

    pattern: Pattern
    root_cause: str
    action: str | None = None


@dataclass(frozen=True)
class CategoryText:
    """The texts the triager writes for a category: defaults, refined by the first hint."""

    label: str
    root_cause: str
    action: str
    hints: tuple[Hint, ...] = ()
