"""Playbook runs and their steps, each write in one transaction with its audit entry.

Every write takes an ``idempotency_key`` (the calling activity's identity) and starts with the
audit entry: when that key was used before, the write committed already and nothing changes.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import asyncpg
from pydantic import BaseModel

from kruxt.adapters.postgres import audit
from kruxt.adapters.postgres.pool import Conn
from kruxt.models.playbooks import (
    PlaybookPlan,
    RunRecord,
    RunStatus,
    StepResult,
    StepRun,
)

ACTOR = "autopilot"


class StepStatus(StrEnum):
    """Where a step is now (``support_playbook_run_steps.status``)."""

    APPLIED = "applied"
    FAILED = "failed"
    COMPENSATED = "compensated"
    COMPENSATION_FAILED = "compensation_failed"


class CompensationStatus(StrEnum):
    """What became of a step's compensation."""

    PENDING = "pending"  # it can be undone and has not been
    DONE = "done"
    NOOP = "noop"  # the app found nothing to undo
    FAILED = "failed"
    NONE = "none"  # the step has no compensation (its rollback note says why)


class RunNotFoundError(LookupError):
    """A step was recorded for a run that was never recorded."""


class PlaybookStepRecord(BaseModel):
    """One step of a run as recorded."""

    step_id: str
    action: str
    target: dict[str, str]
    status: StepStatus
    before: Any = None
    after: Any = None
    replayed: bool = False
    compensation: str | None = None
    compensation_status: CompensationStatus
    compensation_result: Any = None
    error: str | None = None
    created_at: datetime
    updated_at: datetime


class PlaybookRunView(BaseModel):
    """A run with its plan and its steps in step order."""

    run_id: uuid.UUID
    ticket_id: uuid.UUID
    plan_id: uuid.UUID
    playbook: str
    status: RunStatus
    plan: PlaybookPlan
    approved_by: str | None
    reason: str
    created_at: datetime
    updated_at: datetime
    steps: list[PlaybookStepRecord]


def _images(result: StepResult | None) -> dict[str, Any]:
    if result is None:
        return {}
    return {
        "before": result.before,
        "after": result.after,
        "replayed": result.replayed,
        "noop": result.noop,
    }


def _step_key(step_id: str) -> tuple[int, str]:
    # s1, s2 ... s10 in numeric order.
    digits = step_id.lstrip("s")
    return (int(digits), step_id) if digits.isdigit() else (1 << 30, step_id)


class PlaybookRunStore:
    """Reads and writes of ``support_playbook_runs`` and ``support_playbook_run_steps``."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool

    async def record_plan(
        self,
        *,
        ticket_id: uuid.UUID,
        plan_id: uuid.UUID,
        playbook: str,
        plan: PlaybookPlan | None,
        reason: str,
        idempotency_key: str,
    ) -> bool:
        """Audit a plan made ("playbook.planned") or why none was ("playbook.not_planned")."""
        details: dict[str, Any] = {"plan_id": str(plan_id), "playbook": playbook}
        if plan is None:
            details["reason"] = reason
        else:
            details |= {
                "risk": plan.risk.value,
                "approver_role": plan.approver_role.value,
                "touches": [t.value for t in plan.touches],
                "steps": [
                    {"step_id": s.step_id, "action": s.action, "target": s.target}
                    for s in plan.steps
                ],
                "preconditions": [p.check for p in plan.preconditions],
            }
        async with self._pool.acquire() as conn, conn.transaction():
            return await audit.append(
                conn,
                actor=ACTOR,
                action="playbook.planned" if plan is not None else "playbook.not_planned",
                ticket_id=ticket_id,
                details=details,
                idempotency_key=idempotency_key,
            )

    async def record_refusal(
        self,
        *,
        ticket_id: uuid.UUID,
        plan_id: uuid.UUID,
        playbook: str,
        failures: list[str],
        idempotency_key: str,
        step_id: str | None = None,
    ) -> bool:
        """Audit a refusal ("playbook.refused"): a precondition failed, an unknown action."""
        async with self._pool.acquire() as conn, conn.transaction():
            return await audit.append(
                conn,
                actor=ACTOR,
                action="playbook.refused",
                ticket_id=ticket_id,
                details={
                    "plan_id": str(plan_id),
                    "playbook": playbook,
                    "step_id": step_id,
                    "failures": failures,
                },
                idempotency_key=idempotency_key,
            )

    async def record_run(self, *, record: RunRecord, idempotency_key: str) -> bool:
        """Create or move a run to ``record.status`` ("playbook.run_<status>")."""
        plan = record.plan
        async with self._pool.acquire() as conn, conn.transaction():
            if not await audit.append(
                conn,
                actor=ACTOR,
                action=f"playbook.run_{record.status.value}",
                ticket_id=record.ticket_id,
                details={
                    "run_id": str(record.run_id),
                    "plan_id": str(plan.plan_id),
                    "playbook": plan.playbook,
                    "status": record.status.value,
                    "approved_by": record.approved_by,
                    "reason": record.reason,
                },
                idempotency_key=idempotency_key,
            ):
                return False
            await conn.execute(
                """
                INSERT INTO support_playbook_runs (id, ticket_id, plan_id, playbook, status, plan,
                                                   approved_by, reason)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                ON CONFLICT (id) DO UPDATE
                SET status = excluded.status,
                    approved_by = coalesce(excluded.approved_by, support_playbook_runs.approved_by),
                    reason = excluded.reason,
                    updated_at = now()
                """,
                record.run_id,
                record.ticket_id,
                plan.plan_id,
                plan.playbook,
                record.status.value,
                plan.model_dump(mode="json"),
                record.approved_by,
                record.reason,
            )
            return True

    async def _playbook_of(self, conn: Conn, run: StepRun) -> str:
        playbook: str | None = await conn.fetchval(
            "SELECT playbook FROM support_playbook_runs WHERE id = $1", run.run_id
        )
        if playbook is None:
            raise RunNotFoundError(f"playbook run {run.run_id} was never recorded")
        return playbook

    async def _audit_step(
        self, conn: Conn, run: StepRun, action: str, details: dict[str, Any], key: str
    ) -> bool:
        """Audit a step's event, led by what names the step: run, plan, playbook, step."""
        playbook = await self._playbook_of(conn, run)
        return await audit.append(
            conn,
            actor=ACTOR,
            action=action,
            ticket_id=run.ticket_id,
            details={
                "run_id": str(run.run_id),
                "plan_id": str(run.plan_id),
                "playbook": playbook,
                "step_id": run.step.step_id,
                "action": run.step.action,
                **details,
            },
            idempotency_key=key,
        )

    async def record_step(
        self,
        *,
        run: StepRun,
        result: StepResult | None,
        status: StepStatus,
        error: str | None = None,
        idempotency_key: str,
    ) -> bool:
        """Record a step applied (with its images) or failed ("playbook.step_<status>")."""
        if status not in (StepStatus.APPLIED, StepStatus.FAILED):
            raise ValueError(f"a step is recorded applied or failed, not {status.value}")
        step = run.step
        async with self._pool.acquire() as conn, conn.transaction():
            details = {
                "target": step.target,
                "idempotency_key": run.idempotency_key,
                "error": error,
                **_images(result),
            }
            action = f"playbook.step_{status.value}"
            if not await self._audit_step(conn, run, action, details, idempotency_key):
                return False
            # A replay after the step was compensated applies nothing: it stays compensated.
            await conn.execute(
                """
                INSERT INTO support_playbook_run_steps (run_id, step_id, action, target, status,
                    before, after, replayed, compensation, compensation_status, error)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,
                        CASE WHEN $9::text IS NULL THEN 'none' ELSE 'pending' END, $10)
                ON CONFLICT (run_id, step_id) DO UPDATE
                SET status = CASE
                        WHEN support_playbook_run_steps.status = 'compensated' AND excluded.replayed
                            THEN support_playbook_run_steps.status
                        ELSE excluded.status END,
                    before = coalesce(excluded.before, support_playbook_run_steps.before),
                    after = coalesce(excluded.after, support_playbook_run_steps.after),
                    replayed = excluded.replayed,
                    error = excluded.error,
                    updated_at = now()
                """,
                run.run_id,
                step.step_id,
                step.action,
                step.target,
                status.value,
                result.before if result else None,
                result.after if result else None,
                bool(result and result.replayed),
                step.compensation,
                error,
            )
            return True

    async def record_compensation(
        self,
        *,
        run: StepRun,
        result: StepResult | None,
        status: CompensationStatus,
        error: str | None = None,
        idempotency_key: str,
    ) -> bool:
        """Record what a step's compensation did ("playbook.step_compensated").

        ``done`` marks the step compensated and ``failed`` compensation_failed; ``noop`` and
        ``none`` leave the step's status as it was (nothing was undone). A step that was never
        recorded (it never ran) gets an audit entry only, unless its compensation did change
        something.
        """
        step = run.step
        async with self._pool.acquire() as conn, conn.transaction():
            details = {
                "compensation": step.compensation,
                "compensation_status": status.value,
                "idempotency_key": run.compensation_key if step.compensation else None,
                "original_key": run.idempotency_key,
                "error": error,
                **_images(result),
            }
            failed = status is CompensationStatus.FAILED
            action = "playbook.step_compensation_failed" if failed else "playbook.step_compensated"
            if not await self._audit_step(conn, run, action, details, idempotency_key):
                return False
            step_status = {
                CompensationStatus.DONE: StepStatus.COMPENSATED.value,
                CompensationStatus.FAILED: StepStatus.COMPENSATION_FAILED.value,
            }.get(status)
            comp_result = {**_images(result), "error": error} if result or error else None
            updated = await conn.fetchval(
                """
                UPDATE support_playbook_run_steps
                SET status = coalesce($3, status), compensation_status = $4,
                    compensation_result = $5, updated_at = now()
                WHERE run_id = $1 AND step_id = $2
                RETURNING step_id
                """,
                run.run_id,
                step.step_id,
                step_status,
                status.value,
                comp_result,
            )
            if updated is None and step_status is not None:
                await conn.execute(
                    """
                    INSERT INTO support_playbook_run_steps (run_id, step_id, action, target,
                        status, compensation, compensation_status, compensation_result)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                    """,
                    run.run_id,
                    step.step_id,
                    step.action,
                    step.target,
                    step_status,
                    step.compensation,
                    status.value,
                    comp_result,
                )
            return True

    async def get_run(self, run_id: uuid.UUID) -> PlaybookRunView | None:
        """A run with its steps, or None."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM support_playbook_runs WHERE id = $1", run_id)
            if row is None:
                return None
            steps = await conn.fetch(
                "SELECT * FROM support_playbook_run_steps WHERE run_id = $1", run_id
            )
        return _view(row, steps)

    async def runs_for_ticket(self, ticket_id: uuid.UUID) -> list[PlaybookRunView]:
        """A ticket's runs, oldest first."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT * FROM support_playbook_runs WHERE ticket_id = $1 ORDER BY created_at, id",
                ticket_id,
            )
            steps = await conn.fetch(
                "SELECT s.* FROM support_playbook_run_steps s "
                "JOIN support_playbook_runs r ON r.id = s.run_id WHERE r.ticket_id = $1",
                ticket_id,
            )
        by_run: dict[uuid.UUID, list[asyncpg.Record]] = {}
        for s in steps:
            by_run.setdefault(s["run_id"], []).append(s)
        return [_view(r, by_run.get(r["id"], [])) for r in rows]


def _view(row: asyncpg.Record, steps: list[asyncpg.Record]) -> PlaybookRunView:
    ordered = sorted(steps, key=lambda s: _step_key(s["step_id"]))
    return PlaybookRunView.model_validate(
        {**dict(row), "run_id": row["id"], "steps": [dict(s) for s in ordered]}
    )
