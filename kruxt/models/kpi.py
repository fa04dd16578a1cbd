"""The support KPIs against their targets: one ``Figure`` per KPI, and the breakdowns behind them.

Pure models: ``kruxt.adapters.postgres.kpi_report.KpiStore`` fills them from the views of
``sql/016_kpi_views.sql`` and ``sql/018_review_kpi_views.sql``; the CLI, the HTML page and the
weekly review render them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from kruxt.models.defects import RecurringCause

__all__ = [
    "Comparison",
    "Figure",
    "KpiReport",
    "LatencyByPriority",
    "PlaybookOutcomes",
    "SlaShare",
    "Unit",
    "judge",
]


class Comparison(StrEnum):
    """How a value is held against its target: ``value <comparison> target`` means met."""

    LT = "<"
    GT = ">"
    LE = "<="


class Unit(StrEnum):
    """What a figure's value counts."""

    SECONDS = "seconds"
    RATIO = "ratio"  # 0..1; rendered as a percentage
    COUNT = "count"


def judge(value: float | None, comparison: Comparison | None, target: float | None) -> bool | None:
    """Whether ``value`` meets ``target``; None when either is missing (no data is not a miss)."""
    if value is None or comparison is None or target is None:
        return None
    match comparison:
        case Comparison.LT:
            return value < target
        case Comparison.GT:
            return value > target
        case Comparison.LE:
            return value <= target


class Figure(BaseModel):
    """One KPI: its value over the period, its target and whether it was met."""

    key: str = Field(description="Stable id, e.g. first_response_p90.P1 or reopen_rate")
    name: str = Field(description="What a reader sees, e.g. 'first response p90, P1'")
    value: float | None = Field(description="None when the period has no data for it")
    unit: Unit
    target: float | None = None
    comparison: Comparison | None = None
    met: bool | None = Field(default=None, description="None: no target, or no data")
    counts: dict[str, int] = Field(
        default_factory=dict, description="The numbers behind it, e.g. {'reopened': 1, 'solved': 8}"
    )
    detail: str = ""


class LatencyByPriority(BaseModel):
    """One priority's duration figures: p50, p90 and how many stayed within the target."""

    priority: str
    count: int
    median_seconds: float
    p90_seconds: float
    target_seconds: float | None
    within_target: int

    @property
    def share_within(self) -> float | None:
        """Share of the priority's tickets within the target."""
        return self.within_target / self.count if self.count else None


class SlaShare(BaseModel):
    """How one SLA clock fared for one priority (the clocks' own met/breached events)."""

    clock: str
    priority: str
    met: int
    breached: int

    @property
    def share(self) -> float | None:
        """Share of the clocks that stopped in time."""
        total = self.met + self.breached
        return self.met / total if total else None


class PlaybookOutcomes(BaseModel):
    """Playbook plans decided in the period, and completed runs undone."""

    approved: int = 0
    rejected: int = 0
    expired: int = 0
    compensated: int = 0


class KpiReport(BaseModel):
    """The figures a weekly support review looks at, for ``since <= t < until``."""

    since: datetime
    until: datetime
    figures: list[Figure] = Field(default_factory=list)
    tickets_opened: int = 0
    tickets_resolved: int = 0
    triage_reviewed: int = 0
    triage_accepted: int = 0
    first_response: list[LatencyByPriority] = Field(default_factory=list)
    resolution: list[LatencyByPriority] = Field(default_factory=list)
    sla: list[SlaShare] = Field(default_factory=list)
    playbooks: PlaybookOutcomes = Field(default_factory=PlaybookOutcomes)
    recurring_causes: list[RecurringCause] = Field(
        default_factory=list, description="Product defects resolved most often, with issues"
    )
    auto_replies: int = Field(default=0, description="Automatic replies sent to customers")
    answers_graded: int = Field(default=0, description="Sampled automatic decisions graded")
    answers_good: int = Field(default=0, description="Of those, graded good")

    @property
    def answer_quality(self) -> float | None:
        """AI answer quality: sampled automatic decisions graded good."""
        return self.answers_good / self.answers_graded if self.answers_graded else None

    @property
    def acceptance_rate(self) -> float | None:
        """Share of reviewed triages a reviewer accepted as is (target > 70%)."""
        return self.triage_accepted / self.triage_reviewed if self.triage_reviewed else None

    @property
    def recurring(self) -> list[RecurringCause]:
        """``recurring_causes`` under its earlier name."""
        return self.recurring_causes

    @property
    def days(self) -> float:
        """The period's length in days."""
        return (self.until - self.since).total_seconds() / 86400

    def sla_by_clock(self) -> dict[str, tuple[int, int]]:
        """(met, breached) per SLA clock, every priority together, by clock name."""
        tally: dict[str, tuple[int, int]] = {}
        for s in self.sla:
            met, breached = tally.get(s.clock, (0, 0))
            tally[s.clock] = (met + s.met, breached + s.breached)
        return dict(sorted(tally.items()))

    def figure(self, key: str) -> Figure:
        """The figure named ``key``.

        Raises:
            KeyError: no such figure.
        """
        for f in self.figures:
            if f.key == key:
                return f
        raise KeyError(key)

    @property
    def missed(self) -> list[Figure]:
        """The figures that missed their target."""
        return [f for f in self.figures if f.met is False]
