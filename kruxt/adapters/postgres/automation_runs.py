"""Agent runs: one row of ``support_automation_runs`` per run, with its audit entry.

A run records what an agent read (a digest), what it answered, which model and prompt version
did it, what it cost and why it fell back, if it did. Keyed by the calling activity's identity,
so a retried activity records its run once.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from kruxt.adapters.postgres import audit
from kruxt.adapters.postgres.pool import Conn

__all__ = ["INSERT_RUN", "AutomationRunStore", "recorded_run"]

# One run row; $12 is the calling activity's key, so a retry inserts nothing (and no id
# comes back: ``recorded_run`` finds the first attempt's).
INSERT_RUN = """
INSERT INTO support_automation_runs (ticket_id, agent, model, prompt_version, input_digest,
    output, confidence, tokens_in, tokens_out, latency_ms, fallback_reason, idempotency_key)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id
"""


async def recorded_run(conn: Conn, idempotency_key: str) -> uuid.UUID:
    """The id of the run recorded under ``idempotency_key`` (what a retry answers)."""
    run_id: uuid.UUID = await conn.fetchval(
        "SELECT id FROM support_automation_runs WHERE idempotency_key = $1", idempotency_key
    )
    return run_id


class AutomationRunStore:
    """Writes and reads of ``support_automation_runs``."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool

    async def record(
        self,
        *,
        ticket_id: uuid.UUID,
        agent: str,
        model: str,
        prompt_version: str,
        input_digest: str,
        output: dict[str, Any],
        confidence: float | None,
        tokens_in: int,
        tokens_out: int,
        latency_ms: int,
        fallback_reason: str | None,
        idempotency_key: str,
        audit_action: str | None = None,
        audit_details: dict[str, Any] | None = None,
    ) -> uuid.UUID:
        """Record a run and its audit entry in one transaction; return the run's id.

        The audit entry is ``audit_action`` (``<agent>.ran`` by default) by ``agent:<agent>``
        with ``audit_details`` plus the run id, model, prompt version and fallback reason.
        A second call with the same key changes nothing and returns the first run's id.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            run_id = await conn.fetchval(
                INSERT_RUN,
                ticket_id,
                agent,
                model,
                prompt_version,
                input_digest,
                output,
                confidence,
                tokens_in,
                tokens_out,
                latency_ms,
                fallback_reason,
                idempotency_key,
            )
            if run_id is None:
                return await recorded_run(conn, idempotency_key)
            await audit.append(
                conn,
                actor=f"agent:{agent}",
                action=audit_action or f"{agent}.ran",
                ticket_id=ticket_id,
                details={
                    **(audit_details or {}),
                    "run_id": str(run_id),
                    "model": model,
                    "prompt_version": prompt_version,
                    "fallback_reason": fallback_reason,
                },
                idempotency_key=idempotency_key,
            )
            return uuid.UUID(str(run_id))

    async def output_for(self, idempotency_key: str) -> dict[str, Any] | None:
        """The output of the run recorded under this key, or None when there is none."""
        async with self._pool.acquire() as conn:
            output: dict[str, Any] | None = await conn.fetchval(
                "SELECT output FROM support_automation_runs WHERE idempotency_key = $1",
                idempotency_key,
            )
        return output
