"""Block Kit primitives and Slack's limits: escaping, clipping, sections, dates.

Text that came from a ticket is escaped, so a customer cannot @-mention the channel or forge
links through it; nothing exceeds Slack's limits (3000 characters a text, 50 blocks), long
texts are cut with "…".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = [
    "MAX_BLOCKS",
    "MAX_CONTEXT_ELEMENTS",
    "MAX_DRAFT",
    "MAX_HEADER",
    "MAX_MODAL_TITLE",
    "MAX_NOTIFICATION",
    "MAX_TEXT",
    "clip",
    "code_block",
    "context",
    "escape",
    "fit",
    "hhmm",
    "mentions",
    "mrkdwn",
    "plain",
    "section",
    "slack_date",
]

# Slack's limits (https://api.slack.com/reference/block-kit/blocks).
MAX_BLOCKS = 50
MAX_TEXT = 3000
MAX_HEADER = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_NOTIFICATION = 300  # the message's `text`: what a phone's lock screen shows
MAX_DRAFT = 1500
MAX_MODAL_TITLE = 24


def escape(text: str) -> str:
    """Slack's three control characters, so ticket text cannot mention or link anything."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, cut with "…" (never inside an entity)."""
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - 1)]
    amp = cut.rfind("&", max(0, len(cut) - 5))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def mrkdwn(text: str) -> dict[str, Any]:
    """A mrkdwn text object, clipped to Slack's limit."""
    # verbatim: Slack does not auto-link URLs or channel names, nor expand "@here" typed as
    # plain words; the links and mentions we write ourselves (<url|label>, <@U…>) still work.
    return {"type": "mrkdwn", "text": clip(text, MAX_TEXT), "verbatim": True}


def section(text: str, block_id: str | None = None) -> dict[str, Any]:
    """A section block of mrkdwn."""
    block: dict[str, Any] = {"type": "section", "text": mrkdwn(text)}
    if block_id:
        block["block_id"] = block_id
    return block


def context(*texts: str) -> dict[str, Any]:
    """A context block: small print, blank texts left out."""
    elements = [mrkdwn(t) for t in texts if t][:MAX_CONTEXT_ELEMENTS]
    return {"type": "context", "elements": elements}


def plain(text: str, limit: int) -> dict[str, Any]:
    """A plain_text object clipped to ``limit`` (buttons, headers, modal titles)."""
    return {"type": "plain_text", "text": clip(text, limit), "emoji": True}


def hhmm(moment: datetime) -> str:
    """``14:30 UTC``."""
    return moment.astimezone(UTC).strftime("%H:%M UTC")


def slack_date(moment: datetime) -> str:
    """A date Slack shows in the reader's own time zone; UTC where it cannot."""
    utc = moment.astimezone(UTC)
    fallback = utc.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(utc.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def code_block(title: str, lines: list[str]) -> str:
    """A mrkdwn code block that fits one section, with its content cut rather than its fence."""
    head = f"{title}\n```"
    tail = "```"
    body = escape("\n".join(lines)).replace("```", "`\u200b``")
    return head + clip(body, MAX_TEXT - len(head) - len(tail)) + tail


def mentions(user_ids: list[str]) -> str:
    """Slack mentions of these users, blank ids skipped."""
    return " ".join(f"<@{u}>" for u in user_ids if u)


def fit(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Never more blocks than Slack takes; the last ones (the buttons) are kept."""
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    return blocks[: MAX_BLOCKS - 1] + blocks[-1:]
