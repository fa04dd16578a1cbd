"""The Knowledge agent's drafting: replies built from the help articles of ``knowledge/``.

A reply's last paragraph is its sign-off when it starts with an em dash; the self-help steps go
just before it. Pure: the article format (:mod:`kruxt.models.articles`) and the reply guard
(:mod:`kruxt.models.reply_guard`) live in ``models`` because adapters use them too; they are
re-exported here for the agent's callers. Reading the files is
:func:`kruxt.adapters.articles.load_articles`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from kruxt.models.articles import (
    NAME_PLACEHOLDER,
    SECTIONS,
    Article,
    parse_article,
    sanitize_name,
)
from kruxt.models.records import DraftReply
from kruxt.models.reply_guard import (
    DEFAULT_HELP_DOMAINS,
    PROMISE_REFUSAL,
    ReplyGuard,
    outside_links,
    parse_help_domains,
    promises_unapproved_action,
)

__all__ = [
    "DEFAULT_HELP_DOMAINS",
    "PROMISE_REFUSAL",
    "SECTIONS",
    "Article",
    "ReplyGuard",
    "draft_reply",
    "outside_links",
    "parse_article",
    "parse_help_domains",
    "promises_unapproved_action",
    "sanitize_name",
]

STEPS_INTRO = "In the meantime, here's what you can try:"
SIGN_OFF_MARK = "—"
_SPACES = re.compile(r"\s+")


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
