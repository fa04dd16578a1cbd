"""The knowledge base: every article parses, covers the catalog, and drafts safe replies."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kruxt.adapters.articles import load_articles
from kruxt.agents.knowledge import (
    Article,
    draft_reply,
    parse_article,
    sanitize_name,
)
from kruxt.models.catalog import CATALOG
from kruxt.models.enums import Category

KNOWLEDGE_DIR = Path(__file__).resolve().parents[1] / "knowledge"
ARTICLE_FILES = sorted(KNOWLEDGE_DIR.glob("*.md"))

# A reply goes out before anyone has acted: it may not say a change was or will be made.
PROMISES = [
    r"we(?: have|'ve| will|'ll) (?:now )?(?:unlock|refund|restor|delet|remov|reinstat|fix|"
    r"resolv|replay|promot|credit|cancel|repair|reset)\w*",
    r"(?:has|have) been (?:unlocked|refunded|restored|deleted|removed|reinstated|fixed|"
    r"resolved|replayed|promoted|credited|cancelled|repaired|reset)",
    r"you(?:'ll| will) (?:get|receive) (?:a |your )?(?:refund|money back)",
    r"we guarantee",
]
# An automatic reply may not claim that a person has read the ticket.
HUMAN_CLAIMS = [
    r"\bi(?: have|'ve)? (?:read|looked|checked|reviewed)",
    r"we(?: have|'ve) (?:read|looked|checked|reviewed)",
    r"after reviewing your",
]

VALID_ARTICLE = """\
---
id: kb-test-topic
title: A test topic
category: auth_login
keywords: [one, two]
---

## Summary

A short summary.

## What you can try

1. Open Settings → Account → Security.
2. Tap Sign out of all devices,
   then sign in again.

## What our team will do

- A teammate will review your account.
- We will look into the sign-in history.

## Reply

Hi {name},

Thanks for writing in.

— The KRUXT Support team
"""


@pytest.fixture(scope="module")
def articles() -> list[Article]:
    return load_articles(KNOWLEDGE_DIR)


def by_category(articles: list[Article]) -> dict[Category, Article]:
    return {a.category: a for a in articles}


def test_knowledge_dir_has_articles() -> None:
    assert len(ARTICLE_FILES) >= len(CATALOG) + 1


@pytest.mark.parametrize("path", ARTICLE_FILES, ids=lambda p: p.name)
def test_every_file_parses(path: Path) -> None:
    article = parse_article(path.read_text(encoding="utf-8"), str(path))
    assert article.id.startswith("kb-")
    assert article.title
    assert article.keywords
    assert article.summary
    assert len(article.try_steps) >= 3
    assert article.team_steps
    assert "{name}" in article.reply_template
    words = len(path.read_text(encoding="utf-8").split("---", 2)[2].split())
    assert 150 <= words <= 350, f"{path.name}: {words} words"


@pytest.mark.parametrize("path", ARTICLE_FILES, ids=lambda p: p.name)
def test_file_is_named_after_its_category(path: Path) -> None:
    article = parse_article(path.read_text(encoding="utf-8"), str(path))
    expected = "general_contact" if article.category is Category.OTHER else article.category.value
    assert path.stem == expected


def test_every_playbook_category_has_an_article(articles: list[Article]) -> None:
    covered = by_category(articles)
    for category in CATALOG:
        assert category in covered, f"no article for {category}"
    assert Category.OTHER in covered


def test_articles_are_sorted_by_id(articles: list[Article]) -> None:
    ids = [a.id for a in articles]
    assert ids == sorted(ids)
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("pattern", PROMISES + HUMAN_CLAIMS)
def test_no_reply_promises_a_change_or_claims_a_human_read_it(
    articles: list[Article], pattern: str
) -> None:
    for article in articles:
        reply = article.reply_template.lower().replace("\u2019", "'")
        assert not re.search(pattern, reply), f"{article.id}: {pattern!r} in the reply"


def test_team_steps_promise_no_outcome(articles: list[Article]) -> None:
    for article in articles:
        team = " ".join(article.team_steps).lower()
        for pattern in PROMISES:
            assert not re.search(pattern, team), f"{article.id}: {pattern!r} in team steps"


def test_promise_check_catches_promises() -> None:
    for sentence in ("We have unlocked your account", "We will refund you", "It has been restored"):
        assert any(re.search(p, sentence.lower()) for p in PROMISES), sentence


def test_privacy_article_explains_timelines(articles: list[Article]) -> None:
    privacy = by_category(articles)[Category.PRIVACY_REQUEST_STATUS]
    reply = privacy.reply_template
    assert "72 hours" in reply
    assert "30 days" in reply
    assert "GDPR" in reply
    assert "Settings → Privacy → My requests" in reply
    assert any("Settings → Privacy → My requests" in step for step in privacy.try_steps)


def test_draft_reply_fills_the_name_and_cites_the_article(articles: list[Article]) -> None:
    auth = by_category(articles)[Category.AUTH_LOGIN]
    other = by_category(articles)[Category.OTHER]
    draft = draft_reply([auth, other], requester_name="Dana Kowalski")
    assert draft.article_ids == [auth.id]
    assert draft.body.startswith("Hi Dana,")
    assert "{name}" not in draft.body
    assert "Kowalski" not in draft.body


def test_draft_reply_appends_steps_before_the_sign_off(articles: list[Article]) -> None:
    sync = by_category(articles)[Category.INTEGRATION_SYNC]
    draft = draft_reply([sync], requester_name="Sam")
    for i, step in enumerate(sync.try_steps, 1):
        assert f"{i}. {step}" in draft.body
    assert draft.body.rstrip().endswith("— The KRUXT Support team")
    assert draft.body.index("1. ") < draft.body.index("— The KRUXT Support team")


def test_draft_reply_does_not_repeat_steps_already_in_the_template() -> None:
    text = VALID_ARTICLE.replace(
        "Thanks for writing in.",
        "1. Open Settings → Account → Security.\n"
        "2. Tap Sign out of all devices, then sign in again.",
    )
    article = parse_article(text, "inline.md")
    body = draft_reply([article], requester_name="Sam").body
    assert body.count("Open Settings → Account → Security.") == 1


@pytest.mark.parametrize("hostile", ["{body}<script>", "{name}{0}{__class__}", "<img src=x>"])
def test_draft_reply_sanitizes_a_hostile_name(articles: list[Article], hostile: str) -> None:
    auth = by_category(articles)[Category.AUTH_LOGIN]
    body = draft_reply([auth], requester_name=hostile).body
    assert "<" not in body
    assert ">" not in body
    assert "{" not in body
    assert "}" not in body
    assert body.startswith("Hi ")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Ana-María O'Neil ", "Ana-María"),
        ("{body}<script>", "bodyscript"),
        ("", "there"),
        ("1234 !!!", "there"),
        ("Robert'); DROP TABLE users;--", "Robert"),
        ("x" * 100, "x" * 40),
    ],
)
def test_sanitize_name(raw: str, expected: str) -> None:
    assert sanitize_name(raw) == expected


def test_draft_reply_needs_an_article() -> None:
    with pytest.raises(ValueError, match="at least one article"):
        draft_reply([], requester_name="Sam")


def test_parse_valid_article() -> None:
    article = parse_article(VALID_ARTICLE, "inline.md")
    assert article.id == "kb-test-topic"
    assert article.category is Category.AUTH_LOGIN
    assert article.keywords == ("one", "two")
    assert article.try_steps == (
        "Open Settings → Account → Security.",
        "Tap Sign out of all devices, then sign in again.",
    )
    assert article.team_steps == (
        "A teammate will review your account.",
        "We will look into the sign-in history.",
    )
    assert article.path == "inline.md"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (VALID_ARTICLE.replace("---\nid", "id", 1), "no YAML front matter"),
        (VALID_ARTICLE.replace("keywords: [one, two]", "keywords: [one, two"), "not valid YAML"),
        (VALID_ARTICLE.replace("title: A test topic\n", ""), "missing title"),
        (VALID_ARTICLE.replace("category: auth_login", "category: login"), "category 'login'"),
        (VALID_ARTICLE.replace("keywords: [one, two]", "keywords: one"), "keywords must be"),
        (VALID_ARTICLE.replace("id: kb-test-topic", "id: Test Topic"), "must look like"),
        (VALID_ARTICLE.replace("keywords:", "owner: me\nkeywords:"), "unknown keys owner"),
        (VALID_ARTICLE.replace("## Reply", "## Answer"), "exactly the sections"),
        (VALID_ARTICLE.replace("## Summary\n\nA short summary.\n\n", ""), "exactly the sections"),
        (VALID_ARTICLE.replace("1. Open", "Open").replace("2. Tap", "Tap"), "numbered list"),
        (VALID_ARTICLE.replace("Hi {name},", "Hi {first_name},"), "only use"),
        (VALID_ARTICLE.replace("A short summary.", ""), "is empty"),
    ],
)
def test_malformed_article_names_path_and_problem(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)) as info:
        parse_article(text, "knowledge/broken.md")
    assert "knowledge/broken.md" in str(info.value)


def test_duplicate_ids_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(VALID_ARTICLE, encoding="utf-8")
    (tmp_path / "b.md").write_text(VALID_ARTICLE, encoding="utf-8")
    with pytest.raises(ValueError, match="duplicate article id 'kb-test-topic'"):
        load_articles(tmp_path)


def test_load_articles_sorts_by_id_not_file_name(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(VALID_ARTICLE.replace("kb-test-topic", "kb-zeta"), "utf-8")
    (tmp_path / "b.md").write_text(VALID_ARTICLE.replace("kb-test-topic", "kb-alpha"), "utf-8")
    assert [a.id for a in load_articles(tmp_path)] == ["kb-alpha", "kb-zeta"]
