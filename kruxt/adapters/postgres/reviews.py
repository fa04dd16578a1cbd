"""Weekly reviews and their quality samples (support_weekly_reviews, support_review_samples).

The headline figures are the week's ``KpiStore`` report (the KPI views of sql/016 and 018),
this week's and the week before's, and this week's report is stored with the review; the lists
behind them (breaches, incidents, corrections, articles) are plain SQL over the week. The week
is ``[starts_at, ends_at)`` in the review's time zone. A review is stored once per ISO week;
a sample takes one grade, once, and the grade is a KPI event (``review_graded``) that next
week's "AI answer quality" counts (view ``kpi_review_grades``).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from kruxt.adapters.postgres import audit, kpi
from kruxt.adapters.postgres.kpi_report import KpiStore
from kruxt.adapters.postgres.pool import Conn
from kruxt.models.kpi import KpiReport
from kruxt.models.review import (
    BreachRow,
    CorrectionRow,
    CountRow,
    Grade,
    IncidentRow,
    RecurringRow,
    ReviewSample,
    WeekFigures,
    WeeklyReview,
)

__all__ = ["GradeRefused", "ReviewStore"]

SYSTEM_ACTOR = "autopilot"
TOP = 5
NOTE_MAX_CHARS = 2000


class GradeRefused(Exception):
    """A grade that cannot be recorded: ``reason`` is ``unknown`` or ``already_graded``."""

    def __init__(self, reason: str, sample: ReviewSample | None = None) -> None:
        super().__init__(f"grade refused ({reason})")
        self.reason = reason
        self.sample = sample


class ReviewStore:
    """Compute, store and read weekly reviews; sample and grade automatic decisions."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool
        self._kpis = KpiStore(pool)

    # --- figures ---------------------------------------------------------------------------

    async def figures(self, *, since: datetime, until: datetime) -> tuple[WeekFigures, KpiReport]:
        """The headline figures of ``[since, until)``, and the KPI report they come from."""
        report = await self._kpis.report(since, until)
        return WeekFigures.from_kpis(report), report

    async def report(
        self,
        *,
        week: str,
        time_zone: str,
        since: datetime,
        until: datetime,
        previous_since: datetime,
    ) -> WeeklyReview:
        """The week's report: figures against last week's, and the lists behind them."""
        this_week, kpis = await self.figures(since=since, until=until)
        last_week, _ = await self.figures(since=previous_since, until=since)
        async with self._pool.acquire() as conn:
            return WeeklyReview(
                week=week,
                time_zone=time_zone,
                starts_at=since,
                ends_at=until,
                this_week=this_week,
                last_week=last_week,
                breaches=await _breaches(conn, since, until),
                incidents=await _incidents(conn, since, until),
                playbook_runs=await _counts(conn, _PLAYBOOK_RUNS, since, until),
                approvals=await _counts(conn, _APPROVALS, since, until),
                recurring=[
                    RecurringRow.model_validate(c, from_attributes=True)
                    for c in kpis.recurring_causes
                ],
                corrections=await _corrections(conn, since, until),
                articles_used=await _counts(conn, _ARTICLES_USED, since, until, TOP),
                handed_off_categories=await _counts(conn, _HANDED_OFF, since, until, TOP),
                articles_graded_wrong=await _counts(conn, _GRADED_WRONG, since, until, TOP),
                kpis=kpis.model_dump(mode="json"),
            )

    # --- reviews ---------------------------------------------------------------------------

    async def store(self, review: WeeklyReview, *, html: str) -> bool:
        """Keep the week's review; False when that week was stored before (kept as it was)."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """
                INSERT INTO support_weekly_reviews (week, time_zone, starts_at, ends_at, report,
                                                    html)
                VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (week) DO NOTHING RETURNING week
                """,
                review.week,
                review.time_zone,
                review.starts_at,
                review.ends_at,
                review.model_dump(mode="json"),
                html,
            )
            if row is None:
                return False
            await audit.append(
                conn,
                actor=SYSTEM_ACTOR,
                action="review.stored",
                ticket_id=None,
                details={"week": review.week, "samples": review.samples},
                idempotency_key=f"review.stored:{review.week}",
            )
            return True

    async def get(self, week: str) -> tuple[WeeklyReview, str] | None:
        """The stored review of ``week`` and its HTML, if any."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT report, html FROM support_weekly_reviews WHERE week = $1", week
            )
        if row is None:
            return None
        return WeeklyReview.model_validate(row["report"]), row["html"]

    async def weeks(self) -> list[str]:
        """Every stored week, newest first."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch("SELECT week FROM support_weekly_reviews ORDER BY week DESC")
        return [r["week"] for r in rows]

    async def mark_sent(self, week: str, *, channel: str) -> bool:
        """Note that the review went out on ``channel`` (slack, email); False if it had."""
        column = {"slack": "slack_sent_at", "email": "email_sent_at"}[channel]
        async with self._pool.acquire() as conn:
            status = await conn.execute(
                f"UPDATE support_weekly_reviews SET {column} = now() "
                f"WHERE week = $1 AND {column} IS NULL",
                week,
            )
        return bool(status.endswith(" 1"))

    async def record_mailed(self, week: str, *, recipient: str) -> bool:
        """Audit that the review of ``week`` was mailed to ``recipient``; False if it was."""
        async with self._pool.acquire() as conn, conn.transaction():
            return await audit.append(
                conn,
                actor=SYSTEM_ACTOR,
                action="review.mailed",
                ticket_id=None,
                details={"week": week, "recipient": recipient},
                idempotency_key=f"review.mailed:{week}:{recipient}",
            )

    async def mailed_to(self, week: str) -> set[str]:
        """Who the review of ``week`` was mailed to already (a retry skips them)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """
                SELECT details->>'recipient' AS recipient FROM support_audit_log
                WHERE action = 'review.mailed' AND details->>'week' = $1
                """,
                week,
            )
        return {r["recipient"] for r in rows}

    async def sent(self, week: str) -> dict[str, bool]:
        """Which channels the review of ``week`` went out on."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT slack_sent_at, email_sent_at FROM support_weekly_reviews WHERE week = $1",
                week,
            )
        return {
            "slack": row is not None and row["slack_sent_at"] is not None,
            "email": row is not None and row["email_sent_at"] is not None,
        }

    # --- samples ---------------------------------------------------------------------------

    async def sample(
        self, *, week: str, since: datetime, until: datetime, size: int
    ) -> list[ReviewSample]:
        """Pick (once) up to ``size`` of each kind of the week's automatic decisions.

        The order is ``md5(week || id)``: seeded by the week, so a retry picks the same ones,
        and all of them when there are fewer than ``size``. The review row must exist.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            for query in (_SAMPLE_AUTO_REPLIES, _SAMPLE_TRIAGES):
                await conn.execute(query, week, since, until, size)
        return await self.samples(week)

    async def samples(self, week: str) -> list[ReviewSample]:
        """The week's samples, in a stable order."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"{_SAMPLE_COLUMNS} WHERE week = $1 ORDER BY kind, md5(week || source_id)", week
            )
        return [_sample(r) for r in rows]

    async def get_sample(self, sample_id: uuid.UUID) -> ReviewSample | None:
        """One sample, if it exists."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(f"{_SAMPLE_COLUMNS} WHERE id = $1", sample_id)
        return _sample(row) if row else None

    async def record_grade(
        self, sample_id: uuid.UUID, *, grade: Grade, note: str, reviewer: str
    ) -> ReviewSample:
        """Grade a sample once, with its audit row and its ``review_graded`` KPI event.

        Raises:
            GradeRefused: ``unknown`` sample, or ``already_graded`` (with the grade it has).
        """
        note = note.strip()[:NOTE_MAX_CHARS]
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"""
                UPDATE support_review_samples
                SET grade = $2, note = $3, graded_by = $4, graded_at = now()
                WHERE id = $1 AND graded_at IS NULL
                RETURNING {_SAMPLE_FIELDS}
                """,
                sample_id,
                grade.value,
                note,
                reviewer,
            )
            if row is None:
                existing = await conn.fetchrow(f"{_SAMPLE_COLUMNS} WHERE id = $1", sample_id)
                if existing is None:
                    raise GradeRefused("unknown")
                raise GradeRefused("already_graded", _sample(existing))
            sample = _sample(row)
            details = {
                "sample_id": str(sample_id),
                "week": sample.week,
                "kind": sample.kind.value,
                "grade": grade.value,
                "article_ids": sample.article_ids,
                "note": note,
            }
            await audit.append(
                conn,
                actor=reviewer,
                action="review.graded",
                ticket_id=sample.ticket_id,
                details=details,
                idempotency_key=f"review.graded:{sample_id}",
            )
            await kpi.emit(
                conn,
                event="review_graded",
                ticket_id=sample.ticket_id,
                category=sample.category,
                idempotency_key=f"review_graded:{sample_id}",
                details=details,
            )
        return sample


# The week's automatic decisions to sample, each kind by ``md5(week || id)``: $1 the week,
# $2 and $3 the period, $4 how many of each kind at most.
_SAMPLE_AUTO_REPLIES = """
    INSERT INTO support_review_samples (id, week, kind, source_id, ticket_id,
                                        category, summary, article_ids)
    SELECT gen_random_uuid(), $1, 'auto_reply', m.id::text, m.ticket_id,
           t.category, left(m.body, 600), m.article_ids
    FROM support_ticket_messages m JOIN support_tickets t ON t.id = m.ticket_id
    WHERE m.kind = 'auto_reply' AND m.created_at >= $2 AND m.created_at < $3
    ORDER BY md5($1 || m.id::text) LIMIT $4
    ON CONFLICT (week, kind, source_id) DO NOTHING
"""
_SAMPLE_TRIAGES = """
    INSERT INTO support_review_samples (id, week, kind, source_id, ticket_id,
                                        category, summary)
    SELECT gen_random_uuid(), $1, 'triage', e.id::text, e.ticket_id, e.category,
           concat_ws(' · ', e.priority, e.category,
                     'confidence ' || (e.details->>'confidence'), t.subject)
    FROM support_kpi_events e LEFT JOIN support_tickets t ON t.id = e.ticket_id
    WHERE e.event = 'triaged' AND e.occurred_at >= $2 AND e.occurred_at < $3
    ORDER BY md5($1 || e.id::text) LIMIT $4
    ON CONFLICT (week, kind, source_id) DO NOTHING
"""
_SAMPLE_FIELDS = (
    "id, week, kind, ticket_id, category, summary, article_ids, grade, note, graded_by, graded_at"
)
_SAMPLE_COLUMNS = f"SELECT {_SAMPLE_FIELDS} FROM support_review_samples"


def _sample(row: Any) -> ReviewSample:
    return ReviewSample(**{**dict(row), "article_ids": list(row["article_ids"])})


async def _counts(conn: Conn, query: str, *args: Any) -> list[CountRow]:
    """The ``name, n`` rows of one of the count queries below."""
    return [CountRow(name=str(r["name"]), count=r["n"]) for r in await conn.fetch(query, *args)]


# The count queries: (name, n) rows, the largest first. $1 and $2 bound the week; $3, where
# there is one, is how many rows the list shows.
_PLAYBOOK_RUNS = """
    SELECT status AS name, count(*) AS n FROM support_playbook_runs
    WHERE created_at >= $1 AND created_at < $2 GROUP BY status ORDER BY n DESC, status
"""
_APPROVALS = """
    SELECT status AS name, count(*) AS n FROM support_approvals
    WHERE requested_at >= $1 AND requested_at < $2 GROUP BY status ORDER BY n DESC, status
"""
_ARTICLES_USED = """
    SELECT a AS name, count(*) AS n
    FROM support_ticket_messages m, unnest(m.article_ids) AS a
    WHERE m.direction = 'outbound' AND m.created_at >= $1 AND m.created_at < $2
    GROUP BY a ORDER BY n DESC, a LIMIT $3
"""
_HANDED_OFF = """
    SELECT coalesce(t.category, 'untriaged') AS name, count(DISTINCT m.ticket_id) AS n
    FROM support_ticket_messages m JOIN support_tickets t ON t.id = m.ticket_id
    WHERE m.kind = 'acknowledgement' AND m.created_at >= $1 AND m.created_at < $2
    GROUP BY 1 ORDER BY n DESC, 1 LIMIT $3
"""
_GRADED_WRONG = """
    SELECT a AS name, count(*) AS n
    FROM support_review_samples s, unnest(s.article_ids) AS a
    WHERE s.grade = 'wrong_answer' AND s.graded_at >= $1 AND s.graded_at < $2
    GROUP BY a ORDER BY n DESC, a LIMIT $3
"""


async def _breaches(conn: Conn, since: datetime, until: datetime) -> list[BreachRow]:
    rows = await conn.fetch(
        """
        SELECT ticket_id, priority, coalesce(details->>'clock', '-') AS clock,
               coalesce(value_seconds, 0) AS overdue_seconds, occurred_at AS at
        FROM support_kpi_events
        WHERE event = 'sla_breached' AND occurred_at >= $1 AND occurred_at < $2
        ORDER BY occurred_at
        """,
        since,
        until,
    )
    return [BreachRow(**dict(r)) for r in rows]


async def _incidents(conn: Conn, since: datetime, until: datetime) -> list[IncidentRow]:
    rows = await conn.fetch(
        """
        SELECT id, priority, title, status, opened_at, acknowledged_at, acknowledged_by,
               resolved_at, resolved_by
        FROM support_incidents WHERE opened_at >= $1 AND opened_at < $2 ORDER BY opened_at
        """,
        since,
        until,
    )
    return [IncidentRow(**dict(r)) for r in rows]


async def _corrections(conn: Conn, since: datetime, until: datetime) -> list[CorrectionRow]:
    rows = await conn.fetch(
        """
        SELECT ticket_id, priority, details->'correction' AS correction
        FROM support_kpi_events
        WHERE event = 'triage_reviewed' AND NOT (details->>'accepted')::boolean
          AND occurred_at >= $1 AND occurred_at < $2
        ORDER BY occurred_at
        """,
        since,
        until,
    )
    return [
        CorrectionRow(
            ticket_id=r["ticket_id"],
            priority=r["priority"],
            correction=_correction_text(r["correction"]),
        )
        for r in rows
    ]


def _correction_text(value: Any) -> str:
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, dict):
        return "rejected"
    parts = [f"{k}: {v}" for k, v in value.items() if v not in (None, "")]
    return ", ".join(parts) or "rejected"
