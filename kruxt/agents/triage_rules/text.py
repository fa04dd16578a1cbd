"""What the rules read and what the triager quotes: normalisation, the ASCII view, the snippet.

Accent folding, apostrophes, spaces and the RE2 word view live here; no rule table does.
"""

from __future__ import annotations

import unicodedata

from kruxt.agents.patterns import UNICODE_SPACE, Pattern, ascii_words

__all__ = ["SHORT_SUBJECT_CHARS", "SNIPPET_CHARS", "normalize", "snippet", "view"]

# How much ticket text the summary may quote.
SNIPPET_CHARS = 120
# A subject shorter than this says little on its own ("Help", "urgent"): quote the body too.
SHORT_SUBJECT_CHARS = 40

_APOSTROPHES = "'\u2019\u2018`"
# French and Italian elision: "l'allenamento", "d'attente", "j'ai" keep their words apart
# ("l allenamento"), while English contractions close up ("can't" -> "cant").
_ELIDED = frozenset(
    {"c", "d", "j", "l", "m", "n", "s", "t", "qu", "dell", "all", "nell", "sull", "dall", "un"}
)
_ELIDED_LONGEST = 4
# What may follow an elided article, as Python's case-insensitive [aeiouhy] reads it.
_ELISION_VOWELS = frozenset("AEHIOUYaehiouy\u0130\u0131")
# Runs of spaces, tabs ... other than newlines, that are not one plain space already.
_OTHER_SPACES = "".join(f"\\x{{{ord(c):x}}}" for c in UNICODE_SPACE if c not in "\n ")
_SPACES = Pattern(f"[ {_OTHER_SPACES}]{{2,}}|[{_OTHER_SPACES}]", ignore_case=False)
_SENTENCE_END = Pattern(
    "[.!?][" + "".join(f"\\x{{{ord(c):x}}}" for c in UNICODE_SPACE) + "]|\n", ignore_case=False
)
_CONTROL = Pattern(r"[\x00-\x1f\x7f]+", ignore_case=False)
# "nobody could have known" is not "nobody can": the rules see "could_ have", a word no rule
# spells, where they would see "could have" (a negative lookahead RE2 has no use for).
_COULD_HAVE = Pattern(r"\bcould have")


def _is_word(char: str) -> bool:
    """Python's ``\\w`` for one character."""
    return char.isalnum() or char == "_"


def _drop_apostrophes(text: str) -> str:
    """Apostrophes removed, or made a space after an elided article before a vowel."""
    pieces: list[str] = []
    last = 0
    positions = sorted(i for quote in _APOSTROPHES for i in _find_all(text, quote))
    for i in positions:
        start = i
        while start > 0 and i - start <= _ELIDED_LONGEST and _is_word(text[start - 1]):
            start -= 1
        word = text[start:i]
        elided = (
            (start == 0 or not _is_word(text[start - 1]))
            and word.isascii()
            and word.lower() in _ELIDED
            and text[i + 1 : i + 2] in _ELISION_VOWELS
        )
        pieces.append(text[last:i])
        if elided:
            pieces.append(" ")
        last = i + 1
    pieces.append(text[last:])
    return "".join(pieces)


def _find_all(text: str, needle: str) -> list[int]:
    found: list[int] = []
    i = text.find(needle)
    while i >= 0:
        found.append(i)
        i = text.find(needle, i + 1)
    return found


def normalize(text: str) -> str:
    """Accent-folded, no apostrophes or commas, single spaces; newlines kept (a role marker
    starts a line).

    "Não", "réservé" and "löschen" become "Nao", "reserve" and "loschen", so one ASCII pattern
    covers a word however it was typed.
    """
    text = unicodedata.normalize("NFKC", text)
    text = _drop_apostrophes(text).replace("ß", "ss")
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return _SPACES.sub(" ", text.replace(",", " "))


def view(text: str) -> bytes:
    """What the patterns read: the normalized text with ASCII word characters, as UTF-8."""
    view = ascii_words(normalize(text)).encode()
    return b"".join(_split_could_have(view))


def _split_could_have(view: bytes) -> list[bytes]:
    pieces: list[bytes] = []
    last = 0
    pos = 0
    while (span := _COULD_HAVE.search(view, pos)) is not None:
        pieces += [view[last : span[0] + 5], b"_"]
        last = span[0] + 5
        pos = span[1]
    pieces.append(view[last:])
    return pieces


def _clean(text: str) -> str:
    return _SPACES.sub(" ", _CONTROL.sub(" ", text)).strip().replace('"', "'")


def _first_sentence(text: str) -> str:
    """The text up to the first newline or the first space after a full stop, ! or ?."""
    # ascii_words keeps every offset and makes lone surrogates encodable.
    end = next(_SENTENCE_END.finditer(ascii_words(text)), None)
    if end is None:
        return text
    return text[: end.start + 1] if end.end - end.start == 2 else text[: end.start]


def snippet(subject: str, body: str) -> str:
    """A short quote of the ticket: the subject, plus the body's first sentence if it is short."""
    subject = _clean(subject)
    first = _clean(_first_sentence(body.strip()))
    if not subject:
        text = first
    elif len(subject) < SHORT_SUBJECT_CHARS and first and first.lower() != subject.lower():
        text = f"{subject}: {first}"
    else:
        text = subject
    if len(text) > SNIPPET_CHARS:
        text = text[: SNIPPET_CHARS - 1].rstrip() + "…"
    return text or "(empty ticket)"
