"""The project's Temporal Schedules, created idempotently (`kruxt dev`, `kruxt schedules apply`).

The weekly review fires every Monday 08:00 in ``KRUXT_TIMEZONE``; one schedule per task
queue, so replicas of the worker share one series of reviews.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
)

from kruxt.activities.weekly_review import WORKFLOW_NAME
from kruxt.models.review import ReviewRequest

__all__ = [
    "REVIEW_HOUR",
    "ensure_weekly_review",
    "weekly_review_schedule",
    "weekly_review_schedule_id",
]

REVIEW_HOUR = 8
MONDAY = 1  # Temporal's day_of_week: 0 is Sunday


def weekly_review_schedule_id(task_queue: str) -> str:
    """The weekly review schedule of a task queue."""
    return f"kruxt-weekly-review-{task_queue}"


def weekly_review_schedule(*, task_queue: str, time_zone: str) -> Schedule:
    """Every Monday 08:00 in ``time_zone``; a missed firing is caught up within a day."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            WORKFLOW_NAME,
            ReviewRequest(),
            id=f"weekly-review-{task_queue}",
            task_queue=task_queue,
            execution_timeout=timedelta(hours=6),
        ),
        spec=ScheduleSpec(
            calendars=[
                ScheduleCalendarSpec(
                    day_of_week=[ScheduleRange(MONDAY)],
                    hour=[ScheduleRange(REVIEW_HOUR)],
                    minute=[ScheduleRange(0)],
                    second=[ScheduleRange(0)],
                    comment="the weekly support review",
                )
            ],
            time_zone_name=time_zone,
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)),
    )


async def ensure_weekly_review(client: Client, *, task_queue: str, time_zone: str) -> bool:
    """Create the weekly review schedule unless it exists; True when created now.

    An existing one is updated to this spec (the time zone may have changed), so applying
    twice is harmless.
    """
    schedule = weekly_review_schedule(task_queue=task_queue, time_zone=time_zone)
    schedule_id = weekly_review_schedule_id(task_queue)
    try:
        await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:
        await client.get_schedule_handle(schedule_id).update(
            lambda current: ScheduleUpdate(schedule=schedule)
        )
        return False
    return True
