"""The weekly support review, started by a Temporal Schedule every Monday 08:00 (local).

Which week: the one asked for, else the last full week before the schedule's fire time
(``TemporalScheduledStartTime``, so a late or backfilled run reviews the week it was
scheduled for), else before now. Building stores the review; delivering it is a separate
activity, so a channel outage retries the sending only.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from kruxt.activities.weekly_review import WORKFLOW_NAME, WeeklyReviewActivities
    from kruxt.models.review import ReviewRequest, WeeklyReviewResult
    from kruxt.workflows.policies import NOTIFY_RETRY

# Built-in: set by the server on every run a schedule starts.
SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")
# A week of queries over indexed events: minutes at most; retried, as database work is.
BUILD_TIMEOUT = timedelta(minutes=5)
BUILD_RETRY = RetryPolicy(
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=10,
    non_retryable_error_types=["BadWeek"],
)
DELIVER_TIMEOUT = timedelta(minutes=5)


@workflow.defn(name=WORKFLOW_NAME)
class WeeklyReviewWorkflow:
    """Build the week's review, then deliver it."""

    @workflow.run
    async def run(self, request: ReviewRequest) -> WeeklyReviewResult:
        at: datetime | None = request.at
        if request.week is None and at is None:
            at = workflow.info().typed_search_attributes.get(SCHEDULED_START) or workflow.now()
        review = await workflow.execute_activity_method(
            WeeklyReviewActivities.build_weekly_review,
            ReviewRequest(week=request.week, at=at),
            start_to_close_timeout=BUILD_TIMEOUT,
            retry_policy=BUILD_RETRY,
        )
        return await workflow.execute_activity_method(
            WeeklyReviewActivities.deliver_weekly_review,
            review,
            start_to_close_timeout=DELIVER_TIMEOUT,
            retry_policy=NOTIFY_RETRY,
        )
