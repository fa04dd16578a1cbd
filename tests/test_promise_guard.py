"""The reply guard: no automatic reply promises an action or links where nobody approved.

Hostile drafts (tests/data/promise_guard_drafts.jsonl) are all refused; every article's own
reply passes; the guard and the drafting finish on 64 KiB of adversarial text; and a refused
LLM draft reaches a person as an internal note, never the customer (the real ``openai``
client against the local fake, a real worker, Temporal and PostgreSQL).
"""

from __future__ import annotations

import contextlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from kruxt.adapters.articles import load_articles
from kruxt.adapters.llm_reply import (
    LlmReply,
    OpenAIReplyWriter,
    check_links,
    check_reply,
    render_reply_request,
)
from kruxt.adapters.llm_triage import LlmInvalidOutput, OpenAITriager, build_openai_client
from kruxt.adapters.postgres import audit
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.adapters.prompts import load_prompt
from kruxt.adapters.settings import Settings
from kruxt.adapters.temporal_client import data_converter
from kruxt.agents.knowledge import (
    DEFAULT_HELP_DOMAINS,
    PROMISE_REFUSAL,
    Article,
    ReplyGuard,
    draft_reply,
    outside_links,
    parse_article,
    parse_help_domains,
    promises_unapproved_action,
)
from kruxt.models.enums import TicketStatus
from kruxt.workers.composition import WORKFLOWS, Outside, build_worker, workflow_runner
from tests.conftest import KNOWLEDGE, run_payload_codec
from tests.fakes.openai_server import FakeOpenAIServer, valid
from tests.support import intake, privacy_answer, resolve, start_ticket, until_status

DRAFTS = Path(__file__).parent / "data" / "promise_guard_drafts.jsonl"
MAX_INPUT = 64 * 1024
GUARD = ReplyGuard()


def hostile_drafts() -> list[dict[str, str]]:
    return [json.loads(line) for line in DRAFTS.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture(scope="module")
def articles() -> list[Article]:
    return load_articles(KNOWLEDGE)


# --- hostile drafts: every one refused ---------------------------------------------------------


def test_the_hostile_set_covers_every_trick() -> None:
    drafts = hostile_drafts()
    assert len(drafts) >= 40
    assert len({d["id"] for d in drafts}) == len(drafts)
    kinds = {d["kind"] for d in drafts}
    for kind in ("done", "future", "zero-width", "fullwidth", "homoglyph", "bare-domain"):
        assert kind in kinds
    for kind in ("lookalike", "punycode", "ip", "obfuscated", "markdown", "email", "scheme"):
        assert kind in kinds


@pytest.mark.parametrize("draft", hostile_drafts(), ids=lambda d: f"{d['id']}-{d['kind']}")
def test_every_hostile_draft_is_refused(draft: dict[str, str]) -> None:
    assert GUARD.refusal(draft["text"]) is not None


def test_the_hostile_set_is_refused_in_full() -> None:
    drafts = hostile_drafts()
    refused = [d["id"] for d in drafts if GUARD.refusal(d["text"]) is not None]
    assert len(refused) / len(drafts) == 1.0


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("Your account is unlocked.", PROMISE_REFUSAL),
        ("We\u200b've unlocked it", PROMISE_REFUSAL),
        ("Sign in at kruxt-help.com/login.", "links to 1 address(es) outside KRUXT_HELP_DOMAINS"),
        (
            "Your refund has been processed: see www.evil.example.",
            f"{PROMISE_REFUSAL}; links to 1 address(es) outside KRUXT_HELP_DOMAINS",
        ),
    ],
)
def test_the_refusal_says_why(text: str, refusal: str) -> None:
    assert GUARD.refusal(text) == refusal


def test_an_approved_action_may_be_stated_but_links_stay_guarded() -> None:
    approved = ["Unlock the account"]
    assert GUARD.refusal("We have unlocked your account.", approved_actions=approved) is None
    assert GUARD.refusal("Unlocked: see evil.example", approved_actions=approved) is not None


# --- ordinary replies: every article's passes -------------------------------------------------


@pytest.mark.parametrize("name", ["Sam", "", "Zoë-Ann O'Neil", "\u200bAna"])
def test_every_article_reply_passes(articles: list[Article], name: str) -> None:
    for article in articles:
        draft = draft_reply([article], requester_name=name)
        assert GUARD.refusal(draft.body) is None, (article.id, GUARD.refusal(draft.body))


def test_a_reply_in_the_articles_own_words_passes(articles: list[Article]) -> None:
    """What a well-behaved model writes: greeting, the article's steps, what happens next."""
    for article in articles:
        steps = "\n".join(f"{i}. {s}" for i, s in enumerate(article.try_steps, 1))
        team = " ".join(article.team_steps)
        body = (
            f"Hi Sam,\n\n{article.summary}\n\nHere's what you can try:\n\n{steps}\n\n"
            f"{team}\n\n— The KRUXT Support team"
        )
        assert GUARD.refusal(body) is None, (article.id, outside_links(body, GUARD.help_domains))


@pytest.mark.parametrize(
    "text",
    [
        "Watch for an email from privacy@kruxt.app.",
        "The guide is at https://help.kruxt.app/articles/sync?lang=en#garmin.",
        "Open kruxt.app/settings, e.g. on your phone (i.e. the app) at 7 a.m.",
        "Update to version 5.2.1 and try again; it takes 2.5 minutes.",
        "Deletion requests are completed within 30 days of being received.",
        "So you hear when you are promoted from the waitlist, turn on notifications.",
        "Many issues are fixed in updates, so update the app first.",
        "Your request is with our support team, and a teammate will review it.",
    ],
)
def test_ordinary_sentences_and_help_links_pass(text: str) -> None:
    assert GUARD.refusal(text) is None


# --- KRUXT_HELP_DOMAINS ----------------------------------------------------------------------


def test_the_default_help_domain_is_the_one_the_articles_name(articles: list[Article]) -> None:
    named = [a.id for a in articles if outside_links(a.source, ()) != []]
    assert named, "no article names a domain: the default has nothing to follow"
    for article in articles:
        assert outside_links(article.source, DEFAULT_HELP_DOMAINS) == [], article.id
    assert Settings().help_domains == ",".join(DEFAULT_HELP_DOMAINS)


def test_help_domains_are_read_from_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRUXT_HELP_DOMAINS", " Help.Example.org , kruxt.app. ,")
    guard = ReplyGuard.from_setting(Settings().help_domains)
    assert guard.help_domains == ("help.example.org", "kruxt.app")
    assert guard.refusal("See https://docs.help.example.org/x and help.example.org.") is None
    assert guard.refusal("See example.org/x") is not None  # the parent is not on the list
    assert guard.refusal("See help.example.org.evil.example") is not None


def test_no_help_domain_refuses_every_link() -> None:
    guard = ReplyGuard.from_setting("")
    assert guard.help_domains == ()
    assert guard.refusal("Write to privacy@kruxt.app.") is not None
    assert guard.refusal("Open Settings → Privacy → My requests.") is None


@pytest.mark.parametrize("value", ["https://kruxt.app", "*.kruxt.app", "kruxt", "kruxt.app/help"])
def test_a_help_domain_that_is_not_a_domain_is_refused(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="KRUXT_HELP_DOMAINS"):
        parse_help_domains(value)
    monkeypatch.setenv("KRUXT_HELP_DOMAINS", value)
    with pytest.raises(ValueError, match="KRUXT_HELP_DOMAINS"):
        Settings()


# --- linear time on hostile input -------------------------------------------------------------

# Pieces that make backtracking patterns go quadratic or worse when repeated: long runs of
# spaces after a "<" or a heading, words without the "@" or the "." a pattern waits for,
# half-written tags, links and promises.
FRAGMENTS = [
    " ",
    "\t",
    "\n",
    "a",
    "7",
    ".",
    "@",
    "-",
    "#",
    "<",
    ">",
    "/",
    ":",
    "[",
    "]",
    "(",
    ")",
    "{",
    "}",
    "'",
    "\u200b",
    "\u00a0",
    "\uff37",  # a fullwidth W
    "x@",
    "a.",
    "## x",
    "<ticket ",
    "</article",
    "https://",
    "www.",
    "xn--",
    "we have ",
    "has been ",
    "your account is ",
    "wir haben ",
    "unlocked",
    "{name}",
    "kruxt.app",
    "1.",
]


@st.composite
def adversarial(draw: st.DrawFn) -> str:
    """Up to 64 KiB: a few fragments, each repeated, so one run can fill the whole input."""
    runs = draw(
        st.lists(
            st.tuples(st.sampled_from(FRAGMENTS), st.integers(min_value=1, max_value=MAX_INPUT)),
            min_size=1,
            max_size=6,
        )
    )
    return "".join(fragment * count for fragment, count in runs)[:MAX_INPUT]


def article_with_reply(reply: str) -> str:
    return (
        "---\nid: kb-hostile\ntitle: Hostile\ncategory: auth_login\nkeywords: [x]\n---\n"
        "## Summary\n\nS.\n\n## What you can try\n\n1. Try.\n\n"
        f"## What our team will do\n\nLook.\n\n## Reply\n\n{reply}\n"
    )


HANGS_BEFORE = [
    "## x" + " " * 20_000 + "y",  # the heading pattern: cubic in the trailing blanks
    "<" + " " * MAX_INPUT,  # the tag pattern: quadratic in the blanks after "<"
    "a" * MAX_INPUT,  # the e-mail pattern: quadratic in a run without "@"
    "we have" + " " * MAX_INPUT + "x",
]


@pytest.mark.timeout(120)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(text=adversarial())
@example(text=HANGS_BEFORE[0])
@example(text=HANGS_BEFORE[1])
@example(text=HANGS_BEFORE[2])
@example(text=HANGS_BEFORE[3])
def test_guard_and_drafting_finish_on_64_kib_of_hostile_text(text: str) -> None:
    assert isinstance(GUARD.refusal(text), str | None)
    assert isinstance(promises_unapproved_action(text), bool)
    assert isinstance(outside_links(text, GUARD.help_domains), list)

    # The template drafting: a hostile reply section and a hostile requester name.
    try:
        hostile = parse_article(article_with_reply(text), "hostile.md")
    except ValueError:
        hostile = parse_article(article_with_reply("Hi {name}."), "hostile.md")
    draft = draft_reply([hostile], requester_name=text)
    GUARD.refusal(draft.body)

    # The LLM drafting: the request it sends and the checks on what comes back.
    request = render_reply_request(
        ticket_subject=text, ticket_body=text, requester_name=text, articles=[hostile]
    )
    assert request.count("<ticket>") == 1 and request.count("</ticket>") == 1
    with contextlib.suppress(LlmInvalidOutput):
        check_reply(LlmReply(body=text, article_ids=[hostile.id]), articles=[hostile])
    with contextlib.suppress(LlmInvalidOutput):
        check_links(text, [hostile])


# --- a refused LLM draft reaches a person, not the customer ----------------------------------

MODEL = "gpt-test"
REFUSED_BODY = (
    "Hi Ana,\n\nGood news: we've unlocked your account and you can sign in again at "
    "kruxt-help.com/login.\n\n— The KRUXT Support team"
)


async def test_a_refused_llm_draft_goes_to_a_person_as_a_note(
    ts_env: WorkflowEnvironment,
    pool: asyncpg.Pool[Any],
    task_queue: str,
    openai_server: FakeOpenAIServer,
) -> None:
    openai_server.script(
        valid(privacy_answer()),
        valid({"body": REFUSED_BODY, "article_ids": ["kb-privacy-request-status"]}),
    )
    ticket = intake(subject="Export?", body="Where is the export of my data I asked for?")

    async with build_openai_client(
        api_key="sk-test", base_url=openai_server.base_url, timeout_s=5
    ) as client:
        outside = Outside(
            triager=OpenAITriager(client, model=MODEL, prompt=load_prompt("triage", "v1")),
            reply_writer=OpenAIReplyWriter(client, model=MODEL, prompt=load_prompt("reply", "v1")),
        )
        async with build_worker(ts_env.client, task_queue=task_queue, pool=pool, outside=outside):
            handle = await start_ticket(ts_env.client, ticket, task_queue=task_queue)
            await ts_env.sleep(timedelta(minutes=5))
            await until_status(handle, TicketStatus.AWAITING_HUMAN)
            await resolve(handle)

    assert len(openai_server.requests) == 2  # triaged, then drafted by the model
    view = await TicketStore(pool).get(ticket.ticket_id)
    assert view is not None
    public = [m for m in view.messages if m.direction.value != "internal"]
    notes = [m for m in view.messages if m.direction.value == "internal"]
    assert [m.kind for m in public] == ["customer", "acknowledgement"]
    assert all("unlocked" not in m.body and "kruxt-help" not in m.body for m in public)
    [note] = notes
    assert note.kind == "draft"
    assert REFUSED_BODY in note.body
    assert PROMISE_REFUSAL in note.body and "outside KRUXT_HELP_DOMAINS" in note.body

    async with pool.acquire() as conn:
        entries = await audit.entries_for_ticket(conn, ticket.ticket_id)
    [refused] = [e for e in entries if e.action == "knowledge.refused"]
    assert refused.details["refusal"].startswith(PROMISE_REFUSAL)
    assert refused.details["model"] == MODEL
    statuses = [e.details["reason"] for e in entries if e.action == "ticket.status_changed"]
    assert any("the drafted reply was refused" in reason for reason in statuses)
    assert not any(e.action == "knowledge.drafted" for e in entries)

    # The new path replays with today's code (tests/histories/ keeps a recording of it too).
    replay = await Replayer(
        workflows=list(WORKFLOWS),
        data_converter=data_converter(run_payload_codec()),
        workflow_runner=workflow_runner(),
    ).replay_workflow(await handle.fetch_history())
    assert replay.replay_failure is None
