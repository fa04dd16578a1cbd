"""The support KPIs of DESIGN.md against their targets, read from the views of sql/016 and 018.

The views say what counts (and against which target); this module only filters them by
period and aggregates: counts, shares and percentiles.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from kruxt.adapters.postgres.pool import Conn
from kruxt.models.defects import RecurringCause
from kruxt.models.kpi import (
    Comparison,
    Figure,
    KpiReport,
    LatencyByPriority,
    PlaybookOutcomes,
    SlaShare,
    Unit,
    judge,
)

__all__ = ["KpiStore", "kpi_report"]

ACCEPTANCE_TARGET = 0.70  # DESIGN.md: AI triage accepted by a human reviewer > 70%
REOPEN_TARGET = 0.10  # DESIGN.md: reopened tickets < 10%
RECURRING_LIMIT = 5

_PERIOD = "occurred_at >= $1 AND occurred_at < $2"
# The automatic resolution's two halves (Intercom's definitions), each its own figure.
_AUTOMATIC_SPLIT = (
    ("confirmed", "the customer said it worked"),
    ("assumed", "no word from the customer within the window"),
)


def _latency_sql(view: str) -> str:
    return f"""
        SELECT priority, count(*) AS count,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS median_seconds,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds) AS p90_seconds,
               max(target_seconds) AS target_seconds,
               count(*) FILTER (WHERE within_target) AS within_target
        FROM {view} WHERE {_PERIOD}
        GROUP BY priority ORDER BY priority
    """


# The period's totals, one row each.
_TRIAGE = f"""
    SELECT count(*) AS reviewed, count(*) FILTER (WHERE accepted) AS accepted
    FROM kpi_triage_reviews WHERE {_PERIOD}
"""
_OPENED = f"""
    SELECT count(*) AS opened, count(*) FILTER (WHERE handed_off) AS handed_off
    FROM kpi_tickets_opened WHERE {_PERIOD}
"""
_SOLVED = f"""
    SELECT count(*) AS solved,
           count(*) FILTER (WHERE reopened) AS reopened,
           count(*) FILTER (WHERE automatic_kept AND how = 'confirmed') AS confirmed,
           count(*) FILTER (WHERE automatic_kept AND how = 'assumed') AS assumed,
           count(*) FILTER (WHERE automatic AND reopened) AS deducted
    FROM kpi_solved WHERE {_PERIOD}
"""
_ANSWERS = f"""
    SELECT (SELECT count(*) FROM kpi_auto_replies WHERE {_PERIOD}) AS auto_replies,
           count(*) AS graded, count(*) FILTER (WHERE good) AS good
    FROM kpi_review_grades WHERE {_PERIOD}
"""


async def _totals(conn: Conn, sql: str, since: datetime, until: datetime) -> asyncpg.Record:
    """The one row an aggregate without GROUP BY answers."""
    row: asyncpg.Record | None = await conn.fetchrow(sql, since, until)
    assert row is not None
    return row


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _figure(
    key: str,
    name: str,
    value: float | None,
    unit: Unit,
    *,
    target: float | None = None,
    comparison: Comparison | None = None,
    counts: dict[str, int] | None = None,
    detail: str = "",
) -> Figure:
    return Figure(
        key=key,
        name=name,
        value=value,
        unit=unit,
        target=target,
        comparison=comparison,
        met=judge(value, comparison, target),
        counts=counts or {},
        detail=detail,
    )


class KpiStore:
    """Reads the KPI views for a period."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool

    async def report(self, since: datetime, until: datetime) -> KpiReport:
        """Every KPI for ``since <= t < until``, each against its target."""
        async with self._pool.acquire() as conn:
            first = await self._latencies(conn, "kpi_first_responses", since, until)
            resolution = await self._latencies(conn, "kpi_resolutions", since, until)
            sla = [
                SlaShare(**dict(r))
                for r in await conn.fetch(
                    f"""
                    SELECT clock, priority, count(*) FILTER (WHERE met) AS met,
                           count(*) FILTER (WHERE NOT met) AS breached
                    FROM kpi_sla_clocks WHERE {_PERIOD}
                    GROUP BY clock, priority ORDER BY clock, priority
                    """,
                    since,
                    until,
                )
            ]
            triage = await _totals(conn, _TRIAGE, since, until)
            opened = await _totals(conn, _OPENED, since, until)
            solved = await _totals(conn, _SOLVED, since, until)
            outcomes = {
                r["outcome"]: r["n"]
                for r in await conn.fetch(
                    f"""
                    SELECT outcome, count(*) AS n FROM kpi_playbook_outcomes
                    WHERE {_PERIOD} GROUP BY outcome
                    """,
                    since,
                    until,
                )
            }
            answers = await _totals(conn, _ANSWERS, since, until)
            recurring = [
                RecurringCause(**dict(r))
                for r in await conn.fetch(
                    f"""
                    SELECT fingerprint, category, root_cause, issue_number, issue_url, state,
                           count(*) FILTER (WHERE source = 'ticket') AS tickets,
                           count(*) AS occurrences
                    FROM kpi_defect_occurrences WHERE {_PERIOD}
                    GROUP BY fingerprint, category, root_cause, issue_number, issue_url, state
                    ORDER BY count(*) DESC, max(occurred_at) DESC, fingerprint
                    LIMIT $3
                    """,
                    since,
                    until,
                    RECURRING_LIMIT,
                )
            ]
        playbooks = PlaybookOutcomes(**outcomes)
        report = KpiReport(
            since=since,
            until=until,
            tickets_opened=opened["opened"],
            tickets_resolved=sum(r.count for r in resolution),
            triage_reviewed=triage["reviewed"],
            triage_accepted=triage["accepted"],
            first_response=first,
            resolution=resolution,
            sla=sla,
            playbooks=playbooks,
            recurring_causes=recurring,
            auto_replies=answers["auto_replies"],
            answers_graded=answers["graded"],
            answers_good=answers["good"],
        )
        report.figures = _figures(report, opened=opened, solved=solved)
        return report

    @staticmethod
    async def _latencies(
        conn: Conn, view: str, since: datetime, until: datetime
    ) -> list[LatencyByPriority]:
        rows = await conn.fetch(_latency_sql(view), since, until)
        return [LatencyByPriority(**dict(r)) for r in rows]


def _figures(report: KpiReport, *, opened: asyncpg.Record, solved: asyncpg.Record) -> list[Figure]:
    """The report's figures, in reading order."""
    figures = [
        _figure("tickets_opened", "tickets opened", report.tickets_opened, Unit.COUNT),
        _figure("tickets_resolved", "tickets resolved", report.tickets_resolved, Unit.COUNT),
    ]
    for clock, rows in (
        ("first_response", report.first_response),
        ("resolution", report.resolution),
    ):
        label = clock.replace("_", " ")
        for r in rows:
            for pct, value in (("p50", r.median_seconds), ("p90", r.p90_seconds)):
                figures.append(
                    _figure(
                        f"{clock}_{pct}.{r.priority}",
                        f"{label} {pct}, {r.priority}",
                        value,
                        Unit.SECONDS,
                        target=r.target_seconds,
                        comparison=Comparison.LE if r.target_seconds is not None else None,
                        counts={"tickets": r.count, "within_target": r.within_target},
                    )
                )
    for clock, (met, breached) in report.sla_by_clock().items():
        figures.append(
            _figure(
                f"sla_met.{clock}",
                f"{clock.replace('_', ' ')} SLA met",
                _ratio(met, met + breached),
                Unit.RATIO,
                counts={"met": met, "clocks": met + breached},
                detail="share of the SLA clocks that stopped in time",
            )
        )
    figures += [
        _figure(
            "triage_acceptance",
            "AI triage acceptance",
            _ratio(report.triage_accepted, report.triage_reviewed),
            Unit.RATIO,
            target=ACCEPTANCE_TARGET,
            comparison=Comparison.GT,
            counts={"accepted": report.triage_accepted, "reviewed": report.triage_reviewed},
        ),
        _figure(
            "reopen_rate",
            "reopened tickets",
            _ratio(solved["reopened"], solved["solved"]),
            Unit.RATIO,
            target=REOPEN_TARGET,
            comparison=Comparison.LT,
            counts={"reopened": solved["reopened"], "solved": solved["solved"]},
        ),
        _figure(
            "automatic_resolution",
            "automatic resolution",
            _ratio(solved["confirmed"] + solved["assumed"], solved["solved"]),
            Unit.RATIO,
            counts={
                "confirmed": solved["confirmed"],
                "assumed": solved["assumed"],
                "deducted": solved["deducted"],
                "solved": solved["solved"],
            },
            detail="solved with no person involved and not reopened (a reopen deducts it)",
        ),
    ]
    figures += [
        _figure(
            f"automatic_resolution.{how}",
            f"auto resolution, {how}",
            _ratio(solved[how], solved["solved"]),
            Unit.RATIO,
            counts={how: solved[how], "solved": solved["solved"]},
            detail=detail,
        )
        for how, detail in _AUTOMATIC_SPLIT
    ]
    figures.append(
        _figure(
            "handoff_rate",
            "handed to a person",
            _ratio(opened["handed_off"], opened["opened"]),
            Unit.RATIO,
            counts={"handed_off": opened["handed_off"], "opened": opened["opened"]},
        )
    )
    for outcome, n in report.playbooks.model_dump().items():
        figures.append(_figure(f"playbooks.{outcome}", f"playbook runs {outcome}", n, Unit.COUNT))
    return figures


async def kpi_report(pool: asyncpg.Pool[Any], *, days: int = 7) -> KpiReport:
    """The KPIs over the last ``days`` days."""
    until = datetime.now(UTC)
    return await KpiStore(pool).report(until - timedelta(days=days), until)
