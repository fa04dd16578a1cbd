"""The weekly support review: its ISO week, its figures, its quality samples and grades."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, time, timedelta, tzinfo
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from kruxt.models.kpi import KpiReport

__all__ = [
    "BreachRow",
    "CorrectionRow",
    "CountRow",
    "Grade",
    "IncidentRow",
    "LatencyRow",
    "RecurringRow",
    "ReviewRequest",
    "ReviewSample",
    "SampleKind",
    "WeekFigures",
    "WeeklyReview",
    "WeeklyReviewResult",
    "iso_week",
    "previous_week",
    "week_bounds",
]

_WEEK = re.compile(r"(\d{4})-W(\d{2})")
# The KPI views' priority of an event that has none (its first responses are not listed).
NO_PRIORITY = "-"


def iso_week(day: date) -> str:
    """``2026-W48``: the ISO week ``day`` falls in."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def previous_week(moment: datetime, zone: tzinfo) -> str:
    """The last full ISO week before ``moment``, as a calendar in ``zone`` sees it."""
    return iso_week(moment.astimezone(zone).date() - timedelta(days=7))


def week_bounds(week: str, zone: tzinfo) -> tuple[datetime, datetime]:
    """Monday 00:00 of ``week`` and of the week after, in ``zone``.

    Raises:
        ValueError: not a ``YYYY-Www`` week that exists.
    """
    match = _WEEK.fullmatch(week)
    if match is None:
        raise ValueError(f"not an ISO week: {week!r} (expected e.g. 2026-W48)")
    monday = date.fromisocalendar(int(match[1]), int(match[2]), 1)
    start = datetime.combine(monday, time(), zone)
    return start, datetime.combine(monday + timedelta(days=7), time(), zone)


class Grade(StrEnum):
    """A reviewer's verdict on one sampled automatic decision."""

    GOOD = "good"
    WRONG_ANSWER = "wrong_answer"
    NOT_AUTOMATIC = "not_automatic"  # should not have been automatic

    @property
    def label(self) -> str:
        """How a reviewer reads it."""
        return _GRADE_LABELS[self]


_GRADE_LABELS = {
    Grade.GOOD: "Good",
    Grade.WRONG_ANSWER: "Wrong answer",
    Grade.NOT_AUTOMATIC: "Should not have been automatic",
}


class SampleKind(StrEnum):
    """What was sampled."""

    AUTO_REPLY = "auto_reply"
    TRIAGE = "triage"


class ReviewRequest(BaseModel):
    """Input of ``WeeklyReviewWorkflow`` and of ``build_weekly_review``.

    ``week`` None: the last full week before ``at`` (the schedule's fire time).
    """

    week: str | None = None
    at: datetime | None = None


class LatencyRow(BaseModel):
    """Median and 90th percentile of first responses of one priority, against its target."""

    priority: str
    count: int
    p50_seconds: float
    p90_seconds: float
    target_seconds: float | None

    @property
    def met(self) -> bool | None:
        """The 90th percentile is within the target; None: the priority has no target."""
        return None if self.target_seconds is None else self.p90_seconds <= self.target_seconds


class CountRow(BaseModel):
    """A name and how many times it came up."""

    name: str
    count: int


class BreachRow(BaseModel):
    """One SLA breach of the week."""

    ticket_id: uuid.UUID | None
    priority: str | None
    clock: str
    overdue_seconds: float
    at: datetime


class IncidentRow(BaseModel):
    """One incident opened in the week, with its timeline."""

    id: uuid.UUID
    priority: str
    title: str
    status: str
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None


class RecurringRow(BaseModel):
    """A product defect resolved in the week, and its GitHub issue."""

    category: str
    root_cause: str
    occurrences: int
    issue_number: int | None
    issue_url: str | None


class CorrectionRow(BaseModel):
    """A ticket whose triage a human corrected."""

    ticket_id: uuid.UUID | None
    priority: str | None
    correction: str


class WeekFigures(BaseModel):
    """The headline figures of one week (also computed for the week before, to compare).

    They are the week's ``KpiReport`` (the KPI views), except ``solved``/``reopened`` and
    ``handoffs``, whose review definitions differ from the views' (see ``from_kpis``).
    """

    tickets_opened: int = 0
    tickets_resolved: int = 0
    first_response: list[LatencyRow] = Field(default_factory=list)
    sla_met: int = 0
    sla_breached: int = 0
    triage_reviewed: int = 0
    triage_accepted: int = 0
    solved: int = 0
    reopened: int = 0
    auto_replies: int = 0
    handoffs: int = 0
    graded: int = 0
    graded_good: int = 0

    @property
    def acceptance_rate(self) -> float | None:
        """AI triage accepted by a human reviewer (target > 70%)."""
        return _share(self.triage_accepted, self.triage_reviewed)

    @property
    def reopen_rate(self) -> float | None:
        """Solved tickets reopened (target < 10%)."""
        return _share(self.reopened, self.solved)

    @property
    def sla_met_rate(self) -> float | None:
        """SLA clocks met of all that ended."""
        return _share(self.sla_met, self.sla_met + self.sla_breached)

    @property
    def answer_quality(self) -> float | None:
        """AI answer quality: sampled automatic decisions graded good."""
        return _share(self.graded_good, self.graded)

    @classmethod
    def from_kpis(cls, report: KpiReport) -> WeekFigures:
        """The week's figures from its KPI report: the views define every one of them."""
        reopens = report.figure("reopen_rate").counts
        return cls(
            tickets_opened=report.tickets_opened,
            tickets_resolved=report.tickets_resolved,
            first_response=[
                LatencyRow(p50_seconds=r.median_seconds, **r.model_dump(include=_LATENCY_SAME))
                for r in report.first_response
                if r.priority != NO_PRIORITY
            ],
            sla_met=sum(c.met for c in report.sla),
            sla_breached=sum(c.breached for c in report.sla),
            triage_reviewed=report.triage_reviewed,
            triage_accepted=report.triage_accepted,
            solved=reopens["solved"],
            reopened=reopens["reopened"],
            auto_replies=report.auto_replies,
            handoffs=report.figure("handoff_rate").counts["handed_off"],
            graded=report.answers_graded,
            graded_good=report.answers_good,
        )


# The fields a ``LatencyRow`` shares with the views' ``LatencyByPriority``.
_LATENCY_SAME = {"priority", "count", "p90_seconds", "target_seconds"}


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


class ReviewSample(BaseModel):
    """One sampled automatic decision, as a reviewer grades it."""

    id: uuid.UUID
    week: str
    kind: SampleKind
    ticket_id: uuid.UUID | None
    category: str | None
    summary: str
    article_ids: list[str] = Field(default_factory=list)
    grade: Grade | None = None
    note: str = ""
    graded_by: str | None = None
    graded_at: datetime | None = None


class WeeklyReview(BaseModel):
    """The week's report, as stored and delivered."""

    model_config = ConfigDict(frozen=True)

    week: str
    time_zone: str
    starts_at: datetime
    ends_at: datetime
    this_week: WeekFigures
    last_week: WeekFigures
    breaches: list[BreachRow] = Field(default_factory=list)
    incidents: list[IncidentRow] = Field(default_factory=list)
    playbook_runs: list[CountRow] = Field(default_factory=list)
    approvals: list[CountRow] = Field(default_factory=list)
    recurring: list[RecurringRow] = Field(default_factory=list)
    corrections: list[CorrectionRow] = Field(default_factory=list)
    # The agenda of "playbook updates".
    articles_used: list[CountRow] = Field(default_factory=list)
    handed_off_categories: list[CountRow] = Field(default_factory=list)
    articles_graded_wrong: list[CountRow] = Field(default_factory=list)
    samples: int = 0
    # The week's KpiReport (the one ``this_week`` comes from), as JSON; None in older reviews.
    kpis: dict[str, object] | None = None


class WeeklyReviewResult(BaseModel):
    """What one run of the review did."""

    week: str
    samples: int
    slack_sent: bool
    emails_sent: int
