"""The weekly review: its figures from a seeded week, its schedule, grades and delivery."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree

import asyncpg
import pytest
from pydantic import ValidationError
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.client import Client, ScheduleBackfill, ScheduleOverlapPolicy
from temporalio.exceptions import ApplicationError

from kruxt.activities.weekly_review import WeeklyReviewActivities
from kruxt.adapters.approvers import parse_approvers
from kruxt.adapters.email import SendGridMailer
from kruxt.adapters.email_tokens import GradeTokens
from kruxt.adapters.postgres.pool import Conn
from kruxt.adapters.postgres.reviews import ReviewStore
from kruxt.adapters.settings import Settings
from kruxt.adapters.slack.reviews import SlackReviews
from kruxt.models.review import Grade, ReviewRequest, ReviewSample
from kruxt.starter.api.grade_routes import GradeContext, grade_router
from kruxt.starter.schedules import ensure_weekly_review, weekly_review_schedule_id
from kruxt.workers.composition import Outside, build_worker
from tests.fakes.sendgrid_server import FakeSendGridServer
from tests.fakes.slack_server import FakeSlackServer
from tests.support import Cli, router_client

WEEK = "2026-W47"  # Monday 2026-11-16 to Monday 2026-11-23 (UTC)
MONDAY = datetime(2026, 11, 16, tzinfo=UTC)
SECRET = b"a-link-secret-that-is-long-enough-for-hmac"
REVIEWERS = json.dumps([{"name": "Fay", "email": "fay@kruxt.dev", "roles": ["approver"]}])


async def _ticket(conn: Conn, category: str) -> uuid.UUID:
    ticket_id = uuid.uuid4()
    await conn.execute(
        """
        INSERT INTO support_tickets (id, channel, external_id, workflow_id, requester_id,
                                     requester_email, subject, category, priority)
        VALUES ($1, 'in_app', $2, $3, 'u-1', 'ana@example.com', 'Cannot log in', $4, 'P2')
        """,
        ticket_id,
        str(ticket_id),
        f"ticket-{ticket_id}",
        category,
    )
    return ticket_id


async def _event(
    conn: Conn,
    event: str,
    at: datetime,
    *,
    ticket_id: uuid.UUID | None = None,
    priority: str | None = None,
    seconds: float | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        """
        INSERT INTO support_kpi_events (ticket_id, event, priority, value_seconds, details,
                                        idempotency_key, occurred_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        """,
        ticket_id,
        event,
        priority,
        seconds,
        details or {},
        uuid.uuid4().hex,
        at,
    )


async def _message(
    conn: Conn,
    ticket_id: uuid.UUID,
    kind: str,
    at: datetime,
    articles: list[str],
) -> None:
    await conn.execute(
        """
        INSERT INTO support_ticket_messages (id, ticket_id, direction, kind, author, body,
                                             article_ids, created_at)
        VALUES ($1, $2, 'outbound', $3, 'autopilot', 'Here is how to unlock it.', $4, $5)
        """,
        uuid.uuid4(),
        ticket_id,
        kind,
        articles,
        at,
    )


async def seed_week(pool: asyncpg.Pool[Any]) -> None:
    """A week with hand-countable figures, and one ticket opened the week before."""
    day = MONDAY + timedelta(days=1)
    async with pool.acquire() as conn:
        auth, auth2, billing = (
            await _ticket(conn, "auth_login"),
            await _ticket(conn, "auth_login"),
            await _ticket(conn, "billing"),
        )
        solved_only = await _ticket(conn, "billing")  # answered and solved, nothing else
        # As the stores record them: each event names its ticket.
        for ticket in (auth, auth2, billing):
            await _event(conn, "ticket_opened", day, ticket_id=ticket)
        await _event(conn, "ticket_opened", MONDAY - timedelta(days=3))  # last week
        await _event(conn, "ticket_opened", MONDAY + timedelta(days=7))  # next week
        await _event(conn, "first_response", day, priority="P2", seconds=600)
        await _event(conn, "first_response", day, priority="P2", seconds=1200)
        for accepted in (True, True, False):
            correction = None if accepted else {"category": "billing", "severity": "P3"}
            await _event(
                conn,
                "triage_reviewed",
                day,
                ticket_id=billing,
                priority="P2",
                details={"accepted": accepted, "correction": correction},
            )
        for ticket in (auth, auth2, billing, solved_only):
            await _event(conn, "ticket_solved", day, ticket_id=ticket, details={"how": "staff"})
        await _event(conn, "ticket_reopened", day, ticket_id=auth)
        for _ in range(3):
            await _event(conn, "sla_met", day, details={"clock": "first_response"})
        await _event(
            conn, "sla_breached", day, priority="P2", seconds=300, details={"clock": "resolution"}
        )
        await _event(
            conn, "triaged", day, ticket_id=auth, priority="P2", details={"confidence": 0.9}
        )
        await _event(
            conn, "triaged", day, ticket_id=auth2, priority="P3", details={"confidence": 0.8}
        )
        await _message(conn, auth, "auto_reply", day, ["auth-unlock"])
        await _message(conn, auth2, "auto_reply", day, ["auth-unlock", "billing-faq"])
        await _message(conn, billing, "acknowledgement", day, [])
        await _event(
            conn, "status_changed", day, ticket_id=billing, details={"to": "awaiting_human"}
        )


async def test_the_report_of_a_seeded_week_has_the_hand_computed_figures(
    pool: asyncpg.Pool[Any],
) -> None:
    await seed_week(pool)
    review = await WeeklyReviewActivities(ReviewStore(pool)).build(ReviewRequest(week=WEEK))
    now, before = review.this_week, review.last_week
    assert (now.tickets_opened, before.tickets_opened) == (3, 1)
    [p2] = now.first_response
    # percentile_cont over (600, 1200): the median halfway, p90 at 600 + 0.9 * 600.
    assert (p2.priority, p2.count, p2.p50_seconds, p2.p90_seconds) == ("P2", 2, 900, 1140)
    assert not p2.met  # 19 min against 15 min
    assert now.acceptance_rate == pytest.approx(2 / 3)
    assert now.reopen_rate == 0.25
    assert now.sla_met_rate == 0.75
    assert (now.auto_replies, now.handoffs) == (2, 1)
    assert [(b.clock, b.overdue_seconds) for b in review.breaches] == [("resolution", 300)]
    assert [c.correction for c in review.corrections] == ["category: billing, severity: P3"]
    assert [(a.name, a.count) for a in review.articles_used] == [
        ("auth-unlock", 2),
        ("billing-faq", 1),
    ]
    assert [(c.name, c.count) for c in review.handed_off_categories] == [("billing", 1)]
    # Fewer than KRUXT_REVIEW_SAMPLE: all 2 replies and 2 triage decisions.
    assert review.samples == 4
    # Idempotent on the week: a second build finds the stored one and samples nothing new.
    again = await WeeklyReviewActivities(ReviewStore(pool)).build(ReviewRequest(week=WEEK))
    assert again.this_week == review.this_week and again.samples == 4


async def test_sampling_is_seeded_by_the_week(pool: asyncpg.Pool[Any]) -> None:
    await seed_week(pool)
    store = ReviewStore(pool)
    review = await WeeklyReviewActivities(store, sample_size=1).build(ReviewRequest(week=WEEK))
    assert review.samples == 2  # one of each kind
    picked = {(s.kind, s.summary, s.ticket_id) for s in await store.samples(WEEK)}
    since = MONDAY
    again = await store.sample(week=WEEK, since=since, until=since + timedelta(days=7), size=1)
    assert {(s.kind, s.summary, s.ticket_id) for s in again} == picked


async def a_sample_to_grade(pool: asyncpg.Pool[Any]) -> tuple[ReviewStore, ReviewSample]:
    """The seeded week's review built and stored: its store and its first sample."""
    await seed_week(pool)
    store = ReviewStore(pool)
    await WeeklyReviewActivities(store).build(ReviewRequest(week=WEEK))
    return store, (await store.samples(WEEK))[0]


async def test_a_grade_link_records_one_grade_once(pool: asyncpg.Pool[Any]) -> None:
    store, sample = await a_sample_to_grade(pool)
    tokens = GradeTokens(SECRET)
    expires = datetime.now(UTC) + timedelta(days=1)

    def url(grade: Grade) -> str:
        token = tokens.issue(
            sample_id=sample.id, reviewer_email="fay@kruxt.dev", grade=grade, expires_at=expires
        )
        return f"/reviews/grade/{token}"

    ctx = GradeContext(tokens=tokens, store=store)
    async with router_client(grade_router(lambda _: ctx), "http://test") as http:
        shown = await http.get(url(Grade.WRONG_ANSWER))
        assert shown.status_code == 200 and "Wrong answer" in shown.text
        assert (await store.get_sample(sample.id)).grade is None  # type: ignore[union-attr]
        first = await http.post(url(Grade.WRONG_ANSWER), data={"note": "cites the old flow"})
        assert first.status_code == 200
        second = await http.post(url(Grade.GOOD), data={"note": ""})
        assert second.status_code == 409 and "fay@kruxt.dev" in second.text
        forged = await http.get(url(Grade.GOOD)[:-3] + "xyz")
        assert forged.status_code == 400
    graded = await store.get_sample(sample.id)
    assert graded is not None
    assert (graded.grade, graded.note, graded.graded_by) == (
        Grade.WRONG_ANSWER,
        "cites the old flow",
        "fay@kruxt.dev",
    )
    async with pool.acquire() as conn:
        events = await conn.fetch(
            "SELECT details FROM support_kpi_events WHERE event = 'review_graded'"
        )
    assert [e["details"]["grade"] for e in events] == ["wrong_answer"]


async def test_an_expired_grade_or_report_link_says_so_and_grades_nothing(
    pool: asyncpg.Pool[Any],
) -> None:
    store, sample = await a_sample_to_grade(pool)
    tokens = GradeTokens(SECRET)
    expires = datetime.now(UTC) + timedelta(days=1)
    grade = tokens.issue(
        sample_id=sample.id, reviewer_email="fay@kruxt.dev", grade=Grade.GOOD, expires_at=expires
    )
    report = tokens.issue_report(week=WEEK, expires_at=expires)
    # The links are opened a second after they expired.
    ctx = GradeContext(tokens=tokens, store=store, now=lambda: expires + timedelta(seconds=1))
    async with router_client(grade_router(lambda _: ctx), "http://test") as http:
        shown = await http.get(f"/reviews/grade/{grade}")
        posted = await http.post(f"/reviews/grade/{grade}", data={"note": "late"})
        opened = await http.get(f"/reviews/report/{report}")
    for page in (shown, posted, opened):
        assert page.status_code == 410 and "This link has expired" in page.text
    assert (await store.get_sample(sample.id)).grade is None  # type: ignore[union-attr]
    async with pool.acquire() as conn:
        graded = await conn.fetchval(
            "SELECT count(*) FROM support_kpi_events WHERE event = 'review_graded'"
        )
    assert graded == 0


async def test_the_review_goes_to_slack_and_by_mail_once(
    pool: asyncpg.Pool[Any], slack_server: FakeSlackServer, sendgrid: FakeSendGridServer
) -> None:
    await seed_week(pool)
    activities = WeeklyReviewActivities(
        ReviewStore(pool),
        reviewers=parse_approvers(REVIEWERS, source="test"),
        chat=SlackReviews(
            AsyncWebClient(token=slack_server.token, base_url=slack_server.api_url),
            channel="C0REVIEW",
        ),
        mailer=SendGridMailer(sendgrid.api_key, "autopilot@kruxt.app", host=sendgrid.base_url),
        tokens=GradeTokens(SECRET),
    )
    review = await activities.build(ReviewRequest(week=WEEK))
    result = await activities.deliver(review)
    assert (result.slack_sent, result.emails_sent) == (True, 1)
    [post] = slack_server.calls_to("chat.postMessage")
    assert post.body["channel"] == "C0REVIEW"
    assert "Weekly support review 2026-W47" in post.body["text"]
    link = re.search(
        r"<(http://127\.0\.0\.1:8000(/reviews/report/[^|]+))\|Open the report>", post.body["text"]
    )
    assert link is not None
    [mail] = sendgrid.sent
    html = next(c["value"] for c in mail["content"] if c["type"] == "text/html")
    assert html.count("/reviews/grade/") == 4 * len(Grade)  # every sample, every grade
    assert "AI triage acceptance" in html
    # Every chart is well-formed SVG with a bar per row.
    svgs = re.findall(r"<svg .*?</svg>", html)
    assert len(svgs) >= 2
    for svg in svgs:
        root = ElementTree.fromstring(svg)  # noqa: S314 - our own output
        assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.find("{*}rect") is not None
    # The Slack link opens the stored report, read-only; a tampered one does not.
    ctx = GradeContext(tokens=GradeTokens(SECRET), store=ReviewStore(pool))
    async with router_client(grade_router(lambda _: ctx), "http://test") as http:
        page = await http.get(link[2])
        assert page.status_code == 200 and "Weekly support review 2026-W47" in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert (await http.get(link[2][:-2] + "zz")).status_code == 400
    again = await activities.deliver(review)
    assert (again.slack_sent, again.emails_sent) == (False, 0)
    assert len(slack_server.calls_to("chat.postMessage")) == 1 and len(sendgrid.sent) == 1


async def test_a_retried_delivery_mails_only_those_not_mailed_yet(
    pool: asyncpg.Pool[Any], sendgrid: FakeSendGridServer
) -> None:
    await seed_week(pool)
    two = json.dumps(
        [
            {"name": "Fay", "email": "fay@kruxt.dev", "roles": ["approver"]},
            {"name": "Gus", "email": "gus@kruxt.dev", "roles": ["approver"]},
        ]
    )
    activities = WeeklyReviewActivities(
        ReviewStore(pool),
        reviewers=parse_approvers(two, source="test"),
        mailer=SendGridMailer(sendgrid.api_key, "autopilot@kruxt.app", host=sendgrid.base_url),
    )
    review = await activities.build(ReviewRequest(week=WEEK))
    sendgrid.fail(503, after=1)  # Fay's mail goes out, Gus's does not
    with pytest.raises(ApplicationError) as failed:
        await activities.deliver(review)
    assert failed.value.type == "NotifyUnavailable" and not failed.value.non_retryable
    retried = await activities.deliver(review)
    assert retried.emails_sent == 1
    assert [m["personalizations"][0]["to"][0]["email"] for m in sendgrid.sent] == [
        "fay@kruxt.dev",
        "gus@kruxt.dev",
    ]


def test_an_unknown_time_zone_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRUXT_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ValidationError, match="KRUXT_TIMEZONE"):
        Settings()
    monkeypatch.setenv("KRUXT_TIMEZONE", "Europe/Berlin")
    assert Settings().time_zone == "Europe/Berlin"


async def _reviews(pool: asyncpg.Pool[Any], count: int, timeout: float = 60.0) -> list[str]:
    for _ in range(int(timeout / 0.25)):
        async with pool.acquire() as conn:
            rows = await conn.fetch("SELECT week FROM support_weekly_reviews ORDER BY week")
        if len(rows) >= count:
            return [r["week"] for r in rows]
        await asyncio.sleep(0.25)
    raise AssertionError(f"fewer than {count} reviews stored in {timeout}s")


async def test_the_schedule_fires_every_monday_and_stores_that_weeks_review(
    dev_client: Client, pool: asyncpg.Pool[Any], task_queue: str
) -> None:
    await seed_week(pool)
    worker = build_worker(
        dev_client, task_queue=task_queue, pool=pool, outside=Outside(time_zone="Europe/Berlin")
    )
    handle = dev_client.get_schedule_handle(weekly_review_schedule_id(task_queue))
    async with worker:
        try:
            assert await ensure_weekly_review(
                dev_client, task_queue=task_queue, time_zone="Europe/Berlin"
            )
            assert not await ensure_weekly_review(
                dev_client, task_queue=task_queue, time_zone="Europe/Berlin"
            )
            # The schedule's own spec over two past weeks: it fires Mondays 08:00 Berlin
            # (07:00 UTC) on 2026-11-16 and 2026-11-23, and on nothing in between.
            await handle.backfill(
                ScheduleBackfill(
                    start_at=datetime(2026, 11, 10, tzinfo=UTC),
                    end_at=datetime(2026, 11, 24, tzinfo=UTC),
                    overlap=ScheduleOverlapPolicy.ALLOW_ALL,
                )
            )
            weeks = await _reviews(pool, 2)
            description = await handle.describe()
        finally:
            await handle.delete()
    assert weeks == ["2026-W46", "2026-W47"]
    assert description.schedule.spec.time_zone_name == "Europe/Berlin"
    stored = await ReviewStore(pool).get(WEEK)
    assert stored is not None and stored[0].this_week.tickets_opened == 3
    # The worker's review carries the week's KPI report (KpiStore) too, for the same week.
    assert stored[0].kpis is not None and stored[0].kpis["tickets_opened"] == 3


async def test_review_show_reprints_a_stored_week(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed_week(cli.pool)
    await WeeklyReviewActivities(ReviewStore(cli.pool)).build(ReviewRequest(week=WEEK))
    capsys.readouterr()
    assert await cli.run("review", "show", "--week", WEEK) == 0
    out = capsys.readouterr().out
    assert "Weekly support review 2026-W47" in out
    assert "AI triage acceptance" in out and "67%" in out and "MISSED" in out
    assert await cli.run("review", "show", "--week", "2026-W99") == 2
    assert await cli.run("review", "show", "--week", "2026-W01") == 1


async def test_review_run_now_runs_the_workflow_on_the_worker(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed_week(cli.pool)
    async with cli.worker():
        assert await cli.run("review", "run", "--now", "--week", WEEK) == 0
        # Again: the same week's workflow and stored review, nothing new.
        assert await cli.run("review", "run", "--now", "--week", WEEK) == 0
    out = capsys.readouterr().out
    assert out.count("weekly review 2026-W47: stored; 4 samples") == 2
    assert await ReviewStore(cli.pool).weeks() == [WEEK]
