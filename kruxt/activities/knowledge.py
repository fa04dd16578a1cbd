"""The Knowledge agent's activities: replies drafted from the indexed ``knowledge/`` articles.

``draft_reply`` finds the best-matching articles in the full-text index, has the LLM write
the reply from them when one is configured, and falls back to the best article's template
when it is not or when the LLM fails or answers something malformed. Either way the reply
cites the articles it used, and the run is recorded in ``support_automation_runs`` with its
audit entry. A draft the reply guard refuses (it promises an action, nothing being approved
when it is drafted, or links outside the help domains) comes back with its ``refusal`` set:
it is never sent, a person reads it instead.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TypeVar

from temporalio import activity

from kruxt.activities._keys import activity_key
from kruxt.adapters.llm_reply import OpenAIReplyWriter, ReplyRefused, WrittenReply
from kruxt.adapters.llm_triage import LlmError
from kruxt.adapters.postgres.automation_runs import AutomationRunStore
from kruxt.adapters.postgres.knowledge import ArticleHit, KnowledgeIndex, content_sha256
from kruxt.agents.knowledge import Article, ReplyGuard, draft_reply
from kruxt.models.records import DraftReply, DraftReplyInput

__all__ = [
    "AGENT",
    "LLM_NOT_CONFIGURED",
    "MAX_ARTICLES",
    "SECOND_HIT_MIN_RATIO",
    "TEMPLATE_MODEL",
    "TEMPLATE_PROMPT_VERSION",
    "KnowledgeActivities",
    "select_hits",
]

AGENT = "knowledge"
TEMPLATE_MODEL = "template"
TEMPLATE_PROMPT_VERSION = "template/v1"
LLM_NOT_CONFIGURED = "llm not configured"
# At most this many articles go to the writer; a second one only when it matches nearly as
# well as the best (its boosted rank at least this share of the best's).
MAX_ARTICLES = 2
SEARCH_LIMIT = 3
SECOND_HIT_MIN_RATIO = 0.5
MAX_FALLBACK_REASON_CHARS = 500

_T = TypeVar("_T")

ACKNOWLEDGEMENT = (
    "Hi {name},\n\n"
    "Thanks for getting in touch with KRUXT support. We have your message about "
    '"{subject}" and a member of our team will pick it up and get back to you here.\n\n'
    "Your ticket reference is {reference}; you can reply to this thread at any time to add "
    "details.\n\n"
    "The KRUXT team"
)


@dataclass(frozen=True)
class _Run:
    """What the run record says about how a draft was made."""

    model: str
    prompt_version: str
    input_digest: str
    tokens_in: int = 0
    tokens_out: int = 0


def select_hits(hits: Sequence[ArticleHit]) -> list[ArticleHit]:
    """The hits to draft from: the best, and the next ones only if they match nearly as well."""
    if not hits:
        return []
    best = hits[0]
    chosen = [best]
    for hit in hits[1:MAX_ARTICLES]:
        if hit.text_rank > 0 and hit.rank >= best.rank * SECOND_HIT_MIN_RATIO:
            chosen.append(hit)
    return chosen


class KnowledgeActivities:
    """Draft customer-facing text from the knowledge index, with the LLM when configured."""

    def __init__(
        self,
        *,
        index: KnowledgeIndex,
        runs: AutomationRunStore,
        writer: OpenAIReplyWriter | None,
        guard: ReplyGuard | None = None,
        executor: Executor | None = None,
    ) -> None:
        self._index = index
        self._runs = runs
        self._writer = writer
        self._guard = guard or ReplyGuard()
        # The worker's activity_executor; None: the event loop's default executor.
        self._executor = executor

    async def _off_loop(self, fn: Callable[..., _T], *args: object) -> _T:
        """``fn(*args)`` on the executor's threads: drafting and checking text is CPU work
        over customer text and would stall every activity sharing the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def _template(
        self, articles: Sequence[Article], requester_name: str
    ) -> tuple[DraftReply, str | None]:
        """The best article's template and the guard's refusal of it, if any."""
        template = draft_reply(articles, requester_name=requester_name)
        return template, self._guard.refusal(template.body)

    @activity.defn
    async def draft_reply(self, inp: DraftReplyInput) -> DraftReply | None:
        """A reply from the best-matching articles, or None when no article covers the ticket.

        A refused reply (``refusal`` set) is recorded as ``knowledge.refused``: for a person.
        """
        key = activity_key()
        recorded = await self._runs.output_for(key)
        if recorded is not None:
            # A retry after the run was recorded: answer what was recorded, not a new draft.
            return DraftReply.model_validate(recorded)

        hits = select_hits(
            await self._index.search(
                f"{inp.subject}\n{inp.body}", category=inp.category.value, limit=SEARCH_LIMIT
            )
        )
        articles = await self._index.get(hit.id for hit in hits)
        if not articles:
            return None

        started = time.perf_counter()
        draft, run = await self._draft(inp, articles)
        latency_ms = round((time.perf_counter() - started) * 1000)
        await self._runs.record(
            ticket_id=inp.ticket_id,
            agent=AGENT,
            model=run.model,
            prompt_version=run.prompt_version,
            input_digest=run.input_digest,
            output=draft.model_dump(mode="json"),
            confidence=None,
            tokens_in=run.tokens_in,
            tokens_out=run.tokens_out,
            latency_ms=latency_ms,
            fallback_reason=draft.fallback_reason,
            idempotency_key=key,
            audit_action="knowledge.drafted" if draft.refusal is None else "knowledge.refused",
            audit_details={
                "article_ids": draft.article_ids,
                "hits": [{"id": h.id, "rank": round(h.rank, 4)} for h in hits],
                **({"refusal": draft.refusal} if draft.refusal else {}),
            },
        )
        return draft

    async def _draft(
        self, inp: DraftReplyInput, articles: Sequence[Article]
    ) -> tuple[DraftReply, _Run]:
        """The LLM's reply when it gives a well-formed one, else the best article's template;
        either with the guard's refusal, if any."""
        if self._writer is None:
            fallback_reason = LLM_NOT_CONFIGURED
        else:
            try:
                written = await self._writer.draft(
                    ticket_subject=inp.subject,
                    ticket_body=inp.body,
                    requester_name=inp.requester_name,
                    articles=articles,
                )
            except ReplyRefused as exc:
                # Not replaced by the template: what the model tried to say goes to a person.
                return _written_draft(exc.reply, refusal=exc.refusal)
            except LlmError as exc:
                fallback_reason = f"{type(exc).__name__}: {exc}"[:MAX_FALLBACK_REASON_CHARS]
                activity.logger.warning("LLM reply failed, using the template: %s", fallback_reason)
            else:
                # The writer checks this too; a reply is never sent on one check alone.
                refusal = await self._off_loop(self._guard.refusal, written.body)
                return _written_draft(written, refusal=refusal)

        template, refusal = await self._off_loop(self._template, articles, inp.requester_name)
        if refusal is not None:
            activity.logger.warning(
                "the reply template of %s is refused (%s); fix the article",
                ", ".join(template.article_ids),
                refusal,
            )
        draft = template.model_copy(
            update={
                "model": TEMPLATE_MODEL,
                "fallback_reason": fallback_reason,
                "refusal": refusal,
            }
        )
        return draft, _Run(
            model=TEMPLATE_MODEL,
            prompt_version=TEMPLATE_PROMPT_VERSION,
            input_digest=_template_digest(inp, articles),
        )

    @activity.defn
    async def draft_acknowledgement(self, inp: DraftReplyInput) -> DraftReply:
        """The note that tells a customer a person will follow up."""
        first = _first_name(inp.requester_name)
        subject = " ".join(inp.subject.split())[:80] or "your request"
        if self._guard.refusal(subject) is not None:
            # Quoted back, a link or a "refund processed" in it would read as ours.
            subject = "your request"
        # The subject is the customer's text: substituted last, so a "{name}" or "{reference}"
        # inside it stays as written.
        body = (
            ACKNOWLEDGEMENT.replace("{reference}", str(inp.ticket_id)[:8].upper())
            .replace("{name}", first)
            .replace("{subject}", subject)
        )
        return DraftReply(body=body, article_ids=[])


def _written_draft(written: WrittenReply, *, refusal: str | None) -> tuple[DraftReply, _Run]:
    draft = DraftReply(
        body=written.body, article_ids=written.article_ids, model=written.model, refusal=refusal
    )
    return draft, _Run(
        model=written.model,
        prompt_version=written.prompt_version,
        input_digest=written.input_digest,
        tokens_in=written.tokens_in,
        tokens_out=written.tokens_out,
    )


def _template_digest(inp: DraftReplyInput, articles: Sequence[Article]) -> str:
    """SHA-256 of what the template drafter read: the ticket and the articles' exact text."""
    payload = {
        "ticket": inp.model_dump(mode="json"),
        "articles": {article.id: content_sha256(article) for article in articles},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _first_name(name: str) -> str:
    cleaned = "".join(ch for ch in name if ch.isalpha() or ch in " -'").strip()
    return cleaned.split(" ")[0][:40] if cleaned else "there"
