"""The weekly review's side effects: build and store the week's report, then deliver it.

``build_weekly_review`` computes the report of one ISO week in ``KRUXT_TIMEZONE``, picks the
quality sample and stores both (idempotent on the week: a retry or a second firing returns
what was stored). ``deliver_weekly_review`` posts the summary to Slack and mails each
reviewer the HTML report with their own signed grade links; each channel is marked sent
once, and each reviewer's mail once, so a retry sends nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from temporalio import activity
from temporalio.exceptions import ApplicationError

from kruxt.activities._notify import notify_failure
from kruxt.adapters.approvers import ApproverDirectory
from kruxt.adapters.email import EmailMessage, Mailer
from kruxt.adapters.email_tokens import GradeTokens
from kruxt.adapters.notifier import NotifyError
from kruxt.adapters.postgres.reviews import ReviewStore
from kruxt.adapters.review_texts import report_html, slack_summary
from kruxt.models.review import (
    Grade,
    ReviewRequest,
    ReviewSample,
    WeeklyReview,
    WeeklyReviewResult,
    previous_week,
    week_bounds,
)

__all__ = [
    "GRADE_LINK_DAYS",
    "WORKFLOW_NAME",
    "ReviewChat",
    "WeeklyReviewActivities",
    "grade_url",
    "report_url",
]

log = logging.getLogger(__name__)

WORKFLOW_NAME = "WeeklyReview"
# Long enough for a reviewer back from a week off to grade last week's sample.
GRADE_LINK_DAYS = 14
GRADE_PATH = "/reviews/grade/"
# The report link in Slack and in the mail: read-only, for a month of looking back.
REPORT_LINK_DAYS = 31
REPORT_PATH = "/reviews/report/"


class ReviewChat(Protocol):
    """Where the summary is posted (Slack)."""

    @property
    def channel(self) -> str:
        """The channel, for the log."""
        ...

    async def post_review(self, text: str) -> None:
        """Post the summary."""
        ...


def report_url(public_url: str, token: str) -> str:
    """The page a report link opens."""
    return f"{public_url.rstrip('/')}{REPORT_PATH}{token}"


def grade_url(public_url: str, token: str) -> str:
    """The page a grade link opens."""
    return f"{public_url.rstrip('/')}{GRADE_PATH}{token}"


@dataclass
class WeeklyReviewActivities:
    """The review's activities, bound to the store and the outside world."""

    store: ReviewStore
    time_zone: str = "UTC"
    sample_size: int = 20
    public_url: str = "http://127.0.0.1:8000"
    reviewers: ApproverDirectory = field(default_factory=lambda: ApproverDirectory([]))
    chat: ReviewChat | None = None
    mailer: Mailer | None = None
    tokens: GradeTokens | None = None

    async def build(self, request: ReviewRequest) -> WeeklyReview:
        """Build (or find) the review; outside an activity too (the CLI's ``--now``)."""
        zone = ZoneInfo(self.time_zone)
        week = request.week or previous_week(request.at or datetime.now(UTC), zone)
        try:
            since, until = week_bounds(week, zone)
        except ValueError as exc:
            raise ApplicationError(str(exc), type="BadWeek", non_retryable=True) from exc
        stored = await self.store.get(week)
        if stored is not None:
            review = stored[0]
        else:
            review = await self.store.report(
                week=week,
                time_zone=self.time_zone,
                since=since,
                until=until,
                previous_since=since - timedelta(days=7),
            )
            # The review row first: samples refer to it.
            if await self.store.store(review, html=report_html(review)):
                log.info("weekly review %s stored", week)
        # Idempotent too: the same week picks the same sample, once.
        samples = await self.store.sample(
            week=week, since=since, until=until, size=self.sample_size
        )
        return review.model_copy(update={"samples": len(samples)})

    @activity.defn
    async def build_weekly_review(self, request: ReviewRequest) -> WeeklyReview:
        """The week's report, stored with its sample (idempotent on the week)."""
        return await self.build(request)

    def _links(self, reviewer: str) -> Callable[[ReviewSample], dict[Grade, str]] | None:
        tokens = self.tokens
        if tokens is None:
            return None
        expires = datetime.now(UTC) + timedelta(days=GRADE_LINK_DAYS)

        def links(sample: ReviewSample) -> dict[Grade, str]:
            return {
                grade: grade_url(
                    self.public_url,
                    tokens.issue(
                        sample_id=sample.id,
                        reviewer_email=reviewer,
                        grade=grade.value,
                        expires_at=expires,
                    ),
                )
                for grade in Grade
            }

        return links

    def _report_link(self, week: str) -> str | None:
        if self.tokens is None:
            return None  # no link secret: the summary names the CLI instead
        expires = datetime.now(UTC) + timedelta(days=REPORT_LINK_DAYS)
        return report_url(self.public_url, self.tokens.issue_report(week=week, expires_at=expires))

    async def deliver(self, review: WeeklyReview) -> WeeklyReviewResult:
        """Slack summary and reviewers' mail, each channel once."""
        sent = await self.store.sent(review.week)
        url = self._report_link(review.week)
        slack_sent = False
        try:
            if self.chat is not None and not sent["slack"]:
                await self.chat.post_review(slack_summary(review, url=url))
                slack_sent = await self.store.mark_sent(review.week, channel="slack")
            mailed = 0
            if self.mailer is not None and not sent["email"]:
                samples = await self.store.samples(review.week)
                done = await self.store.mailed_to(review.week)
                for person in self.reviewers.approvers:
                    email = str(person.email)
                    if email in done:
                        continue  # an earlier attempt mailed them
                    body = report_html(
                        review,
                        samples=samples,
                        grade_links=self._links(email),
                    )
                    await self.mailer.send(
                        EmailMessage(
                            to=email,
                            to_name=person.name,
                            subject=f"Weekly support review {review.week}",
                            text=slack_summary(review, url=url),
                            html=body,
                            about=f"weekly review {review.week}",
                        )
                    )
                    await self.store.record_mailed(review.week, recipient=email)
                    mailed += 1
                await self.store.mark_sent(review.week, channel="email")
        except NotifyError as exc:
            raise notify_failure(exc) from exc
        return WeeklyReviewResult(
            week=review.week, samples=review.samples, slack_sent=slack_sent, emails_sent=mailed
        )

    @activity.defn
    async def deliver_weekly_review(self, review: WeeklyReview) -> WeeklyReviewResult:
        """Post the summary to Slack and mail the reviewers their copy with grade links."""
        return await self.deliver(review)
