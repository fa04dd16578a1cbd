"""Linear-time patterns for untrusted text, on RE2.

Python's ``re`` backtracks: a pattern with adjacent optional parts (``\\s*(a)?\\s*(b)?\\s*``)
takes minutes on a crafted ticket. RE2 runs in time linear in the text whatever the pattern, and
refuses what it cannot run that way: :class:`Pattern` raises at import if a pattern uses a
lookaround or a backreference. The few negative lookarounds the rules need are :class:`Guard`
checks made in Python on each candidate match, in constant or linear total time.

RE2's ``\\b``, ``\\w`` and ``\\d`` are ASCII-only where Python's are Unicode: :func:`ascii_words`
turns every other word character into an ASCII one, so a pattern sees the same words either way.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import re2

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

# Every character Python's ``\s`` (``str.isspace``) matches; RE2's ``\s`` is [\t\n\f\r ] only.
UNICODE_SPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
# Python's ``\\s`` and ``\\S`` as RE2 character classes.
SPACE = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in UNICODE_SPACE) + "]"
NOT_SPACE = "[^" + SPACE[1:]
# RE2 allocates its automata lazily within this budget; past it a search falls back to a
# slower, still linear, simulation. The rule tables are large alternations.
MAX_MEM = 64 << 20


def _options(ignore_case: bool) -> re2.Options:
    options = re2.Options()
    options.case_sensitive = not ignore_case
    options.max_mem = MAX_MEM
    options.log_errors = False
    return options


def _compile(regex: str, ignore_case: bool) -> re2._Regexp[str]:
    try:
        return re2.compile(regex, _options(ignore_case))
    except re2.error as exc:
        raise ValueError(f"not a linear-time (RE2) pattern: {exc}: {regex[:120]!r}") from exc


# The non-ASCII letters Python's case-insensitive matching takes for ASCII ones.
_CASE_TWINS = {"\u0130": "i", "\u0131": "i", "\u212a": "k", "\u017f": "s"}


def _ascii_word(char: str) -> str:
    if char in _CASE_TWINS:
        return _CASE_TWINS[char]
    if char.isdecimal():
        return str(unicodedata.decimal(char))
    if char.isalnum():
        return "_"
    if "\ud800" <= char <= "\udfff":  # a lone surrogate has no UTF-8 form
        return "\ufffd"
    return char


def encodable(text: str) -> str:
    """The text with lone surrogates (which UTF-8 cannot encode) replaced by U+FFFD."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)
    return text


def ascii_words(text: str) -> str:
    """The text with every non-ASCII word character made ASCII, one character for one.

    A Unicode digit becomes its ASCII digit, a letter Python's case-insensitive matching takes
    for an ASCII one (dotless i, long s, the Kelvin sign) that letter, and any other word
    character ``_``, which no rule spells: ``\\b``, ``\\w`` and ``\\d`` then match where
    Python's Unicode classes would in a case-insensitive pattern. Lone surrogates (invalid in
    UTF-8) become U+FFFD.
    """
    if text.isascii():
        return text
    table = {ord(c): _ascii_word(c) for c in set(text) if not c.isascii()}
    return text.translate(table)


class Match(NamedTuple):
    """Where a pattern matched, and what its groups caught (None: a group that took no part)."""

    start: int
    end: int
    groups: tuple[str | None, ...]


@dataclass(frozen=True)
class Guard:
    """An alternative with the negative lookarounds RE2 lacks, checked on each candidate.

    A candidate match of ``regex`` counts unless the text before it ends with one of
    ``not_before`` (case-insensitive, the lookbehind) or ``not_after`` matches right after it
    (the lookahead; after group 1 instead when the regex has one, for a lookahead in the
    middle of the pattern).
    """

    regex: str
    not_before: tuple[str, ...] = ()
    not_after: str | None = None

    def wrapped(self, template: str) -> Guard:
        """The same guard around a regex put into ``template`` (``{}`` marks the place)."""
        return Guard(template.replace("{}", self.regex), self.not_before, self.not_after)


class _Guarded:
    """A compiled :class:`Guard`."""

    def __init__(self, guard: Guard, ignore_case: bool) -> None:
        self._regexp = _compile(guard.regex, ignore_case)
        self._before = tuple(b.lower().encode() for b in guard.not_before)
        self._longest_before = max((len(b) for b in self._before), default=0)
        self._after = None if guard.not_after is None else _compile(guard.not_after, ignore_case)

    def search(self, text: bytes, pos: int) -> tuple[int, int] | None:
        while (match := self._regexp.search(text, pos)) is not None:
            start, end = match.span()
            if self._before and text[max(0, start - self._longest_before) : start].lower().endswith(
                self._before
            ):
                # A later candidate may start inside this one: look again one byte on.
                pos = start + 1
                continue
            anchor = match.end(1) if self._regexp.groups else end
            if self._after is not None and self._after.match(text, anchor) is not None:
                # Every candidate starting inside this one ends where it ends: skip them all.
                pos = max(end, start + 1)
                continue
            return start, end
        return None


class Pattern:
    """A case-insensitive (by default) RE2 pattern, optionally with guarded alternatives.

    Searches run on UTF-8 bytes (``ascii_words(text).encode()``), so a search from an offset
    costs no re-encoding of the text; :meth:`finditer` and :meth:`sub` take ``str``.
    """

    __slots__ = ("_guarded", "_regexp", "guards", "regex")

    def __init__(self, regex: str | None, *guards: Guard, ignore_case: bool = True) -> None:
        self.regex = regex
        self.guards = guards
        self._regexp = None if regex is None else _compile(regex, ignore_case)
        self._guarded = tuple(_Guarded(g, ignore_case) for g in guards)

    def search(self, text: bytes, pos: int = 0) -> tuple[int, int] | None:
        """The span of the leftmost match at or after ``pos``, or None."""
        best: tuple[int, int] | None = None
        if self._regexp is not None and (match := self._regexp.search(text, pos)) is not None:
            best = match.span()
        for guard in self._guarded:
            span = guard.search(text, pos)
            if span is not None and (best is None or span[0] < best[0]):
                best = span
        return best

    def finditer(self, text: str) -> Iterator[Match]:
        """The non-overlapping matches in ``text``, left to right (no guards), in characters."""
        assert self._regexp is not None
        for match in self._regexp.finditer(encodable(text)):
            yield Match(match.start(), match.end(), match.groups())

    def sub(self, repl: str, text: str) -> str:
        """``text`` with every match replaced by ``repl`` (no guards, no group references)."""
        assert self._regexp is not None
        return self._regexp.sub(lambda _: repl, encodable(text))
