"""The Knowledge agent's activities: replies drafted from ``knowledge/`` articles."""

from __future__ import annotations

from temporalio import activity

from kruxt.agents.knowledge import Article, draft_reply
from kruxt.models.records import DraftReply, DraftReplyInput

ACKNOWLEDGEMENT = (
    "Hi {name},\n\n"
    "Thanks for getting in touch with KRUXT support. We have your message about "
    '"{subject}" and a member of our team will pick it up and get back to you here.\n\n'
    "Your ticket reference is {reference}; you can reply to this thread at any time to add "
    "details.\n\n"
    "The KRUXT team"
)


class KnowledgeActivities:
    """Draft customer-facing text from the knowledge articles loaded at start."""

    def __init__(self, articles: list[Article]) -> None:
        self._articles = articles

    @activity.defn
    async def draft_reply(self, inp: DraftReplyInput) -> DraftReply | None:
        """A reply from the category's articles, or None when none covers it."""
        matching = [a for a in self._articles if a.category == inp.category.value]
        if not matching:
            return None
        return draft_reply(matching, requester_name=inp.requester_name)

    @activity.defn
    async def draft_acknowledgement(self, inp: DraftReplyInput) -> DraftReply:
        """The note that tells a customer a person will follow up."""
        first = _first_name(inp.requester_name)
        subject = " ".join(inp.subject.split())[:80] or "your request"
        body = (
            ACKNOWLEDGEMENT.replace("{name}", first)
            .replace("{subject}", subject)
            .replace("{reference}", str(inp.ticket_id)[:8].upper())
        )
        return DraftReply(body=body, article_ids=[])


def _first_name(name: str) -> str:
    cleaned = "".join(ch for ch in name if ch.isalpha() or ch in " -'").strip()
    return cleaned.split(" ")[0][:40] if cleaned else "there"
