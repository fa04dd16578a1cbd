"""The Knowledge agent's drafting: help articles from ``knowledge/`` and replies built from them.

An article is a markdown file with YAML front matter (``id``, ``title``, ``category``,
``keywords``) and exactly four sections, in this order: ``## Summary``, ``## What you can try``
(a numbered list), ``## What our team will do`` and ``## Reply`` (the customer-facing template;
``{name}`` is its only placeholder). A reply's last paragraph is its sign-off when it starts
with an em dash; the self-help steps go just before it.

Parsing and drafting are pure; only :func:`load_articles` reads files.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kruxt.models.enums import Category
from kruxt.models.records import DraftReply

__all__ = [
    "SECTIONS",
    "Article",
    "draft_reply",
    "load_articles",
    "parse_article",
    "promises_unapproved_action",
    "sanitize_name",
]

SECTIONS = ("Summary", "What you can try", "What our team will do", "Reply")
NAME_PLACEHOLDER = "{name}"
NAME_FALLBACK = "there"
MAX_NAME_CHARS = 40
STEPS_INTRO = "In the meantime, here's what you can try:"
SIGN_OFF_MARK = "—"

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)(.*)\Z", re.DOTALL)
_ID = re.compile(r"^kb-[a-z0-9]+(?:-[a-z0-9]+)*$")
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
_NUMBERED = re.compile(r"^\s*\d+[.)]\s+(.*)$")
_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(.*)$")
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
_NOT_NAME = re.compile(r"[^\w\s'\-]|[\d_]")
_SPACES = re.compile(r"\s+")
_REQUIRED_KEYS = frozenset({"id", "title", "category", "keywords"})

# The changes playbooks make or people decide. A reply goes out before anyone has acted, so it
# may not say one of them was made or will be made unless that action was approved.
_DONE = (
    r"(?:unlocked|restored|refunded|reset|fixed|deleted|removed|re-?enabled|re-?sent|"
    r"reinstated|replayed|promoted|credited|cancell?ed|repaired|revoked|reconnected|resolved)"
)
_DO = (
    r"(?:unlock|restore|refund|reset|fix|delete|remove|re-?enable|re-?send|reinstate|replay|"
    r"promote|credit|cancel|repair|revoke|reconnect)"
)
_ADVERBS = r"(?:(?:already|now|just|also|gone\s+ahead\s+and|go\s+ahead\s+and)\s+)?"
_PROMISES = re.compile(
    rf"\b(?:we|i)(?:'ve|\s+have)\s+{_ADVERBS}{_DONE}\b"
    rf"|\b(?:has|have|had)\s+{_ADVERBS}been\s+{_ADVERBS}{_DONE}\b"
    rf"|\b(?:is|are|was|were)\s+now\s+{_DONE}\b"
    rf"|\b(?:we|i)(?:'ll|\s+will|'re\s+going\s+to|\s+are\s+going\s+to|\s+am\s+going\s+to)"
    rf"\s+{_ADVERBS}{_DO}\b"
    r"|\byou(?:'ll|\s+will)\s+(?:get|receive)\s+(?:a\s+|your\s+)?(?:full\s+)?"
    r"(?:refund|money\s+back)\b"
    r"|\bwe\s+guarantee\b",
    re.IGNORECASE,
)


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


def _sections(body: str, path: str) -> dict[str, str]:
    """The body's ``##`` sections by title; exactly SECTIONS, in order."""
    headings = list(_HEADING.finditer(body))
    titles = [m.group(2) for m in headings]
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
            raise ValueError(f"{path}: section '## {match.group(2)}' is empty")
        sections[match.group(2)] = content
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


def load_articles(directory: Path) -> list[Article]:
    """Every article (``*.md``) of a directory, sorted by id.

    Raises:
        ValueError: an article is malformed, or two articles share an id.
    """
    articles: dict[str, Article] = {}
    for file in sorted(directory.glob("*.md")):
        article = parse_article(file.read_text(encoding="utf-8"), str(file))
        if article.id in articles:
            raise ValueError(
                f"{file}: duplicate article id {article.id!r} (also in {articles[article.id].path})"
            )
        articles[article.id] = article
    return [articles[key] for key in sorted(articles)]


def sanitize_name(name: str) -> str:
    """The requester's first name, safe to put in a reply; NAME_FALLBACK when there is none.

    The name is untrusted: only letters, spaces, hyphens and apostrophes survive, at most
    MAX_NAME_CHARS of them, and only the first word is used.
    """
    name = unicodedata.normalize("NFC", name).replace("\u2019", "'")
    kept = _SPACES.sub(" ", _NOT_NAME.sub("", name)).strip()
    first = kept[:MAX_NAME_CHARS].split(" ", 1)[0].strip("'-")
    return first or NAME_FALLBACK


def promises_unapproved_action(text: str) -> bool:
    """True when the text says an action was taken or will be taken ("we've unlocked ...").

    The check for replies drafted before anyone approved anything: by the template or the LLM.
    It errs on the side of caution, so a reply it flags is replaced, never sent.
    """
    text = unicodedata.normalize("NFKC", text).replace("\u2019", "'").replace("\u2018", "'")
    return _PROMISES.search(text) is not None


def _normalized(text: str) -> str:
    return _SPACES.sub(" ", text).strip().lower()


def _with_steps(reply: str, steps: Sequence[str]) -> str:
    """The reply with the numbered steps before its sign-off (or at the end without one)."""
    block = "\n".join([STEPS_INTRO, "", *(f"{i}. {step}" for i, step in enumerate(steps, 1))])
    paragraphs = reply.split("\n\n")
    if len(paragraphs) > 1 and paragraphs[-1].lstrip().startswith(SIGN_OFF_MARK):
        return "\n\n".join([*paragraphs[:-1], block, paragraphs[-1]])
    return f"{reply}\n\n{block}"


def draft_reply(articles: Sequence[Article], *, requester_name: str) -> DraftReply:
    """Draft a customer reply from the best-matching article (the first one).

    The article's reply template gets the requester's sanitized first name; its self-help
    steps are added unless the template already contains all of them. Only ``{name}`` is
    substituted, by plain replacement: neither the template nor the name is ever formatted.

    Args:
        articles: the articles that fit the ticket, best first.
        requester_name: the requester's name as given (untrusted).

    Returns:
        The reply, citing the id of the article it was drafted from.

    Raises:
        ValueError: no article was given.
    """
    if not articles:
        raise ValueError("draft_reply needs at least one article")
    article = articles[0]
    body = article.reply_template.replace(NAME_PLACEHOLDER, sanitize_name(requester_name))
    template = _normalized(article.reply_template)
    if not all(_normalized(step) in template for step in article.try_steps):
        body = _with_steps(body, article.try_steps)
    return DraftReply(body=body, article_ids=[article.id])
