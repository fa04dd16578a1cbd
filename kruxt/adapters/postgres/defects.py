"""Product defects and their GitHub issues: the fingerprint -> issue map (the source of truth)
and each resolution that reported a defect."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel, Field

from kruxt.adapters.postgres import audit, kpi
from kruxt.models.defects import (
    FINGERPRINT_SCHEME,
    DefectIssueLink,
    DefectReport,
    DefectSource,
    RecurringCause,
)

__all__ = ["DefectStore", "Occurrence", "StoredDefect"]

SYSTEM_ACTOR = "autopilot"


class Occurrence(BaseModel):
    """One resolution of a defect, as stored."""

    source: DefectSource
    source_id: uuid.UUID
    summary: str
    prevention: str
    prevention_draft: str
    resolved_by: str
    at: datetime
    posted: bool


class StoredDefect(BaseModel):
    """A defect with its issue (if filed yet) and its occurrences, oldest first."""

    fingerprint: str
    category: str
    root_cause: str
    component: str
    severity: str = Field(description="The severity of the resolution that first reported it")
    # The issue once filed; its state as GitHub last answered (open or closed).
    issue_number: int | None = None
    issue_url: str | None = None
    issue_state: str | None = None
    occurrences: list[Occurrence]

    @property
    def pending(self) -> list[Occurrence]:
        """The occurrences the issue has not been told of yet."""
        return [o for o in self.occurrences if not o.posted]


class DefectStore:
    """Repository of ``support_defect_issues`` and ``support_defect_occurrences``."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool

    async def record(self, report: DefectReport) -> bool:
        """Store a resolution's defect report once (with its audit entry and KPI event);
        False when this ticket or incident was already recorded for the defect."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """
                INSERT INTO support_defect_issues (fingerprint, scheme, category, root_cause,
                    component, severity, first_seen, last_seen)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
                ON CONFLICT (fingerprint) DO UPDATE
                    SET last_seen = greatest(support_defect_issues.last_seen, excluded.last_seen)
                """,
                report.fingerprint,
                FINGERPRINT_SCHEME,
                report.category.value,
                report.root_cause,
                report.component,
                report.severity.value,
                report.at,
            )
            status = await conn.execute(
                """
                INSERT INTO support_defect_occurrences (fingerprint, source, source_id, summary,
                    prevention, prevention_draft, resolved_by, at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                ON CONFLICT (fingerprint, source_id) DO NOTHING
                """,
                report.fingerprint,
                report.source.value,
                report.source_id,
                report.summary,
                report.prevention,
                report.prevention_draft,
                report.resolved_by,
                report.at,
            )
            if not status.endswith(" 1"):
                return False
            ticket_id = report.source_id if report.source is DefectSource.TICKET else None
            key = f"defect:{report.fingerprint}:{report.source_id}"
            await audit.append(
                conn,
                actor=report.resolved_by,
                action="defect.reported",
                ticket_id=ticket_id,
                details={
                    "fingerprint": report.fingerprint,
                    "source": report.source.value,
                    "source_id": str(report.source_id),
                },
                idempotency_key=key,
            )
            await kpi.emit(
                conn,
                event="defect_reported",
                ticket_id=ticket_id,
                idempotency_key=key,
                priority=report.severity.value,
                category=report.category.value,
                details={"fingerprint": report.fingerprint, "source": report.source.value},
            )
            return True

    async def get(self, fingerprint: str) -> StoredDefect | None:
        """The defect with its issue and occurrences, or None."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT * FROM support_defect_issues WHERE fingerprint = $1", fingerprint
            )
            if row is None:
                return None
            rows = await conn.fetch(
                """
                SELECT source, source_id, summary, prevention, prevention_draft, resolved_by, at,
                       posted_at IS NOT NULL AS posted
                FROM support_defect_occurrences WHERE fingerprint = $1 ORDER BY at, source_id
                """,
                fingerprint,
            )
        return StoredDefect.model_validate(
            {**dict(row), "occurrences": [Occurrence(**dict(r)) for r in rows]}
        )

    async def issue_synced(
        self,
        fingerprint: str,
        *,
        number: int,
        url: str,
        state: str,
        posted: list[uuid.UUID],
        action: str,
        idempotency_key: str,
    ) -> None:
        """Remember the issue and which occurrences it now shows, with the audit entry."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """
                UPDATE support_defect_issues
                SET issue_number = $2, issue_url = $3, issue_state = $4
                WHERE fingerprint = $1
                """,
                fingerprint,
                number,
                url,
                state,
            )
            await conn.execute(
                """
                UPDATE support_defect_occurrences SET posted_at = now()
                WHERE fingerprint = $1 AND source_id = ANY($2::uuid[]) AND posted_at IS NULL
                """,
                fingerprint,
                posted,
            )
            await audit.append(
                conn,
                actor=SYSTEM_ACTOR,
                action=f"defect.issue_{action}",
                ticket_id=None,
                details={
                    "fingerprint": fingerprint,
                    "issue_number": number,
                    "issue_url": url,
                    "occurrences": [str(p) for p in posted],
                },
                idempotency_key=idempotency_key,
            )

    async def audit_event(
        self, fingerprint: str, *, action: str, details: dict[str, Any], idempotency_key: str
    ) -> None:
        """An audit entry about a defect's issue that changed nothing here (would create,
        GitHub refused): what a person reads to act on it."""
        async with self._pool.acquire() as conn:
            await audit.append(
                conn,
                actor=SYSTEM_ACTOR,
                action=action,
                ticket_id=None,
                details={"fingerprint": fingerprint, **details},
                idempotency_key=idempotency_key,
            )

    async def issue_of(self, source_id: uuid.UUID) -> DefectIssueLink | None:
        """The defect issue a ticket (or incident) was reported under, if any."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                """
                SELECT d.fingerprint, d.issue_number, d.issue_url, d.issue_state AS state,
                       (SELECT count(*) FROM support_defect_occurrences c
                        WHERE c.fingerprint = d.fingerprint) AS occurrences
                FROM support_defect_occurrences o
                JOIN support_defect_issues d USING (fingerprint)
                WHERE o.source_id = $1 ORDER BY o.at DESC LIMIT 1
                """,
                source_id,
            )
        return DefectIssueLink(**dict(row)) if row is not None else None

    async def top_recurring(self, *, since: datetime, limit: int = 5) -> list[RecurringCause]:
        """The defects with the most resolutions since ``since``, most first."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """
                SELECT d.fingerprint, d.category, d.root_cause, d.issue_number, d.issue_url,
                       d.issue_state AS state,
                       count(*) FILTER (WHERE o.source = 'ticket') AS tickets,
                       count(*) AS occurrences
                FROM support_defect_issues d
                JOIN support_defect_occurrences o USING (fingerprint)
                WHERE o.at > $1
                GROUP BY d.fingerprint
                ORDER BY count(*) DESC, max(o.at) DESC, d.fingerprint
                LIMIT $2
                """,
                since,
                limit,
            )
        return [RecurringCause(**dict(r)) for r in rows]
