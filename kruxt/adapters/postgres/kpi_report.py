"""The support KPIs of DESIGN.md, computed from ``support_kpi_events``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from pydantic import BaseModel, Field

from kruxt.adapters.postgres.defects import DefectStore
from kruxt.models.defects import RecurringCause


class LatencyByPriority(BaseModel):
    """Median and 90th percentile of a duration, per priority."""

    priority: str
    count: int
    median_seconds: float
    p90_seconds: float


class SlaOutcome(BaseModel):
    """How one SLA clock fared."""

    clock: str
    met: int
    breached: int


class KpiReport(BaseModel):
    """The figures a weekly support review looks at."""

    days: int
    tickets_opened: int
    tickets_resolved: int
    triage_reviewed: int
    triage_accepted: int
    first_response: list[LatencyByPriority] = Field(default_factory=list)
    resolution: list[LatencyByPriority] = Field(default_factory=list)
    sla: list[SlaOutcome] = Field(default_factory=list)
    recurring: list[RecurringCause] = Field(
        default_factory=list, description="Product defects resolved most often, with issues"
    )

    @property
    def acceptance_rate(self) -> float | None:
        """Share of reviewed triages an approver accepted as is (target > 70%)."""
        return self.triage_accepted / self.triage_reviewed if self.triage_reviewed else None


async def kpi_report(pool: asyncpg.Pool[Any], *, days: int = 7) -> KpiReport:
    """The KPIs over the last ``days`` days."""
    since = timedelta(days=days)
    async with pool.acquire() as conn:
        counts = await conn.fetchrow(
            """
            SELECT count(*) FILTER (WHERE event = 'ticket_opened') AS opened,
                   count(*) FILTER (WHERE event = 'resolved') AS resolved,
                   count(*) FILTER (WHERE event = 'triage_reviewed') AS reviewed,
                   count(*) FILTER (WHERE event = 'triage_reviewed'
                                    AND (details->>'accepted')::boolean) AS accepted
            FROM support_kpi_events WHERE occurred_at > now() - $1::interval
            """,
            since,
        )
        latencies = await conn.fetch(
            """
            SELECT event, coalesce(priority, '-') AS priority, count(*) AS n,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY value_seconds) AS median,
                   percentile_cont(0.9) WITHIN GROUP (ORDER BY value_seconds) AS p90
            FROM support_kpi_events
            WHERE event IN ('first_response', 'resolved') AND value_seconds IS NOT NULL
              AND occurred_at > now() - $1::interval
            GROUP BY event, priority ORDER BY event, priority
            """,
            since,
        )
        sla = await conn.fetch(
            """
            SELECT details->>'clock' AS clock,
                   count(*) FILTER (WHERE event = 'sla_met') AS met,
                   count(*) FILTER (WHERE event = 'sla_breached') AS breached
            FROM support_kpi_events
            WHERE event IN ('sla_met', 'sla_breached') AND occurred_at > now() - $1::interval
            GROUP BY 1 ORDER BY 1
            """,
            since,
        )
    assert counts is not None
    recurring = await DefectStore(pool).top_recurring(since=datetime.now(UTC) - since)

    def by_priority(event: str) -> list[LatencyByPriority]:
        return [
            LatencyByPriority(
                priority=r["priority"],
                count=r["n"],
                median_seconds=r["median"],
                p90_seconds=r["p90"],
            )
            for r in latencies
            if r["event"] == event
        ]

    return KpiReport(
        days=days,
        tickets_opened=counts["opened"],
        tickets_resolved=counts["resolved"],
        triage_reviewed=counts["reviewed"],
        triage_accepted=counts["accepted"],
        first_response=by_priority("first_response"),
        resolution=by_priority("resolved"),
        sla=[
            SlaOutcome(clock=r["clock"] or "-", met=r["met"], breached=r["breached"]) for r in sla
        ],
        recurring=recurring,
    )
