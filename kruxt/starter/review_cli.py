"""``kruxt review run|show`` and ``kruxt schedules apply``: the weekly review by hand.

``review run --now`` starts the same workflow the schedule starts (on the stack's worker)
for the last full week, or ``--week``, and waits for it; ``review show --week 2026-W48``
reprints a stored review (``--html`` for the page itself). ``schedules apply`` creates or
updates the schedules, for a production deployment that does not run ``kruxt dev``.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from temporalio.common import WorkflowIDConflictPolicy

from kruxt.adapters.postgres.reviews import ReviewStore
from kruxt.adapters.review_texts import figure_lines
from kruxt.models.review import ReviewRequest, WeeklyReview, previous_week, week_bounds
from kruxt.starter.cli import CliError
from kruxt.starter.cli_connections import Connections
from kruxt.starter.schedules import ensure_weekly_review, weekly_review_schedule_id
from kruxt.workflows.weekly_review import WeeklyReviewWorkflow

__all__ = ["review_text", "run_review", "run_schedules"]

EXIT_USAGE = 2


def _pct_row(name: str, now: str, before: str, target: str, ok: bool | None) -> str:
    mark = "" if not target else ("met" if ok else "MISSED" if ok is False else "no data")
    return f"  {name:32} {now:>8}  {before or '-':>8}  {target:>8}  {mark}"


def review_text(review: WeeklyReview) -> str:
    """A stored review as a terminal page."""
    lines = [
        f"Weekly support review {review.week} ({review.time_zone})",
        f"  {'FIGURE':32} {'WEEK':>8}  {'BEFORE':>8}  {'TARGET':>8}",
        *(_pct_row(*row) for row in figure_lines(review.this_week, review.last_week)),
        f"SLA breaches: {len(review.breaches)}   incidents: {len(review.incidents)}   "
        f"samples to grade: {review.samples}",
    ]
    for title, rows in (
        ("Playbook runs", review.playbook_runs),
        ("Approvals", review.approvals),
        ("Knowledge articles most used", review.articles_used),
        ("Categories most often handed to people", review.handed_off_categories),
        ("Articles graded wrong", review.articles_graded_wrong),
    ):
        lines.append(f"{title}: " + (", ".join(f"{r.name} {r.count}" for r in rows) or "none"))
    for cause in review.recurring:
        issue = cause.issue_url or "not filed"
        lines.append(
            f"Recurring: {cause.category} / {cause.root_cause} x{cause.occurrences} {issue}"
        )
    for fix in review.corrections:
        lines.append(f"Triage corrected: {str(fix.ticket_id or '')[:8]} {fix.correction}")
    return "\n".join(lines)


async def run_review(args: argparse.Namespace, parts: Connections) -> int:
    """``kruxt review run|show``."""
    settings = parts.settings
    if args.week is not None:
        try:
            week_bounds(args.week, ZoneInfo(settings.time_zone))
        except ValueError as exc:
            raise CliError(str(exc), EXIT_USAGE) from exc
    if args.review_command == "show":
        store = ReviewStore(await parts.pool())
        week = args.week or next(iter(await store.weeks()), None)
        stored = await store.get(week) if week else None
        if stored is None:
            raise CliError(f"no weekly review stored for {week or 'any week'} yet")
        print(stored[1] if args.html else review_text(stored[0]))
        return 0
    week = args.week or previous_week(datetime.now(UTC), ZoneInfo(settings.time_zone))
    client = await parts.client()
    result = await client.execute_workflow(
        WeeklyReviewWorkflow.run,
        ReviewRequest(week=week),
        id=f"weekly-review-{week}",
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        execution_timeout=timedelta(hours=1),
    )
    print(
        f"weekly review {result.week}: stored; {result.samples} samples; "
        f"Slack {'posted' if result.slack_sent else 'not posted'}; "
        f"{result.emails_sent} e-mails sent"
    )
    return 0


async def run_schedules(args: argparse.Namespace, parts: Connections) -> int:
    """``kruxt schedules apply``."""
    settings = parts.settings
    created = await ensure_weekly_review(
        await parts.client(), task_queue=settings.task_queue, time_zone=settings.time_zone
    )
    verb = "created" if created else "updated"
    print(
        f"schedule {weekly_review_schedule_id(settings.task_queue)} {verb}: "
        f"the weekly review, Mondays 08:00 {settings.time_zone}"
    )
    return 0
