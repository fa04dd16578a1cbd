"""Help articles of ``knowledge/``: the format, its parser, and the requester's name in a reply.

An article is a markdown file with YAML front matter (``id``, ``title``, ``category``,
``keywords``) and exactly four sections, in this order: ``## Summary``, ``## What you can try``
(a numbered list), ``## What our team will do`` and ``## Reply`` (the customer-facing template;
``{name}`` is its only placeholder).

Pure: the search index (an adapter) and the Knowledge agent both read articles with it;
reading the files is :func:`kruxt.adapters.articles.load_articles`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import yaml

from kruxt.models.enums import Category

__all__ = [
    "MAX_NAME_CHARS",
    "NAME_FALLBACK",
    "NAME_PLACEHOLDER",
    "SECTIONS",
    "Article",
    "parse_article",
    "sanitize_name",
]

SECTIONS = ("Summary", "What you can try", "What our team will do", "Reply")
NAME_PLACEHOLDER = "{name}"
NAME_FALLBACK = "there"
MAX_NAME_CHARS = 40

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)(.*)\Z", re.DOTALL)
_ID = re.compile(r"^kb-[a-z0-9]+(?:-[a-z0-9]+)*$")
# The closing "#"s of a heading are cut in Python: a pattern for them would put ambiguous
# quantifiers side by side.
_HEADING = re.compile(r"^(#{1,6})[ \t]+(\S.*)$", re.MULTILINE)
_NUMBERED = re.compile(r"^\s*\d+[.)]\s+(.*)$")
_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(.*)$")
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
_NOT_NAME = re.compile(r"[^\w\s'\-]|[\d_]")
_SPACES = re.compile(r"\s+")
_REQUIRED_KEYS = frozenset({"id", "title", "category", "keywords"})


@dataclass(frozen=True)
class Article:
    """A help article of ``knowledge/``: what the Knowledge agent answers from."""

    id: str
    title: str
    category: Category
    keywords: tuple[str, ...]
    summary: str
    try_steps: tuple[str, ...]
    team_steps: tuple[str, ...]
    reply_template: str
    path: str
    # The whole markdown file, as parsed: what the search index stores and re-parses.
    source: str = field(default="", repr=False, compare=False)


def _front_matter(raw: str, path: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: front matter is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: front matter must be a mapping of keys to values")
    missing = _REQUIRED_KEYS - data.keys()
    if missing:
        raise ValueError(f"{path}: front matter is missing {', '.join(sorted(missing))}")
    unknown = data.keys() - _REQUIRED_KEYS
    if unknown:
        raise ValueError(f"{path}: front matter has unknown keys {', '.join(sorted(unknown))}")
    return data


def _text_value(data: dict[str, Any], key: str, path: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{path}: front matter {key!r} must be a non-empty string")
    return value.strip()


def _heading_title(match: re.Match[str]) -> str:
    """A heading's text without the optional closing sequence of "#"s."""
    text = match.group(2).rstrip(" \t")
    return text.rstrip("#").rstrip(" \t") or text[:1]


def _sections(body: str, path: str) -> dict[str, str]:
    """The body's ``##`` sections by title; exactly SECTIONS, in order."""
    headings = list(_HEADING.finditer(body))
    titles = [_heading_title(m) for m in headings]
    levels = {len(m.group(1)) for m in headings}
    if titles != list(SECTIONS) or levels != {2}:
        raise ValueError(
            f"{path}: the body must have exactly the sections "
            f"{', '.join('## ' + s for s in SECTIONS)} in that order; found "
            f"{', '.join(m.group(0).strip() for m in headings) or 'none'}"
        )
    if body[: headings[0].start()].strip():
        raise ValueError(f"{path}: text before '## {SECTIONS[0]}'")
    sections: dict[str, str] = {}
    for i, match in enumerate(headings):
        end = headings[i + 1].start() if i + 1 < len(headings) else len(body)
        content = body[match.end() : end].strip()
        if not content:
            raise ValueError(f"{path}: section '## {titles[i]}' is empty")
        sections[titles[i]] = content
    return sections


def _list_items(content: str, item: re.Pattern[str]) -> list[str] | None:
    """The items of a markdown list (continuation lines joined); None if it is not a list."""
    items: list[str] = []
    for line in content.splitlines():
        if not line.strip():
            continue
        match = item.match(line)
        if match:
            items.append(match.group(1).strip())
        elif items and line[:1].isspace():
            items[-1] = f"{items[-1]} {line.strip()}"
        else:
            return None
    return items


def parse_article(text: str, path: str) -> Article:
    """Parse one article.

    Args:
        text: the file's content.
        path: where it came from, for error messages and :attr:`Article.path`.

    Returns:
        The article.

    Raises:
        ValueError: the article is malformed; the message names the path and the problem.
    """
    match = _FRONT_MATTER.match(text.replace("\r\n", "\n"))
    if match is None:
        raise ValueError(f"{path}: no YAML front matter between '---' lines at the top")
    data = _front_matter(match.group(1), path)

    article_id = _text_value(data, "id", path)
    if not _ID.match(article_id):
        raise ValueError(f"{path}: id {article_id!r} must look like 'kb-some-topic'")
    try:
        category = Category(_text_value(data, "category", path))
    except ValueError:
        raise ValueError(
            f"{path}: category {data['category']!r} is not one of "
            f"{', '.join(c.value for c in Category)}"
        ) from None
    keywords = data["keywords"]
    if (
        not isinstance(keywords, list)
        or not keywords
        or not all(isinstance(k, str) and k.strip() for k in keywords)
    ):
        raise ValueError(f"{path}: keywords must be a non-empty list of strings")

    sections = _sections(match.group(2), path)
    try_steps = _list_items(sections["What you can try"], _NUMBERED)
    if not try_steps:
        raise ValueError(f"{path}: '## What you can try' must be a numbered list of steps")
    team_steps = _list_items(sections["What our team will do"], _BULLET)
    if team_steps is None:  # a paragraph is fine too: one step
        team_steps = [_SPACES.sub(" ", sections["What our team will do"])]
    reply = sections["Reply"]
    unknown = sorted(set(_PLACEHOLDER.findall(reply)) - {NAME_PLACEHOLDER})
    if unknown:
        raise ValueError(
            f"{path}: the reply may only use {NAME_PLACEHOLDER}; found {', '.join(unknown)}"
        )

    return Article(
        id=article_id,
        title=_text_value(data, "title", path),
        category=category,
        keywords=tuple(k.strip() for k in keywords),
        summary=_SPACES.sub(" ", sections["Summary"]),
        try_steps=tuple(try_steps),
        team_steps=tuple(team_steps),
        reply_template=reply,
        path=path,
        source=text,
    )


def sanitize_name(name: str) -> str:
    """The requester's first name, safe to put in a reply; NAME_FALLBACK when there is none.

    The name is untrusted: only letters, spaces, hyphens and apostrophes survive, at most
    MAX_NAME_CHARS of them, and only the first word is used.
    """
    name = unicodedata.normalize("NFC", name).replace("\u2019", "'")
    kept = _SPACES.sub(" ", _NOT_NAME.sub("", name)).strip()
    first = kept[:MAX_NAME_CHARS].split(" ", 1)[0].strip("'-")
    return first or NAME_FALLBACK
