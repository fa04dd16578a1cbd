"""Approval requests and decisions, each change with its audit entry."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from kruxt.adapters.postgres import audit, kpi, slack_refs
from kruxt.models.approvals import (
    ApprovalRecord,
    ApprovalRequest,
    ApprovalStanding,
    ApprovalStatus,
    PendingApproval,
)


class ApprovalStore:
    """``support_approvals``: one row per request, updated once when it is decided."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool

    async def record(self, *, record: ApprovalRecord, idempotency_key: str) -> None:
        """Insert a pending request, or apply its decision (approved, rejected, expired)."""
        req = record.request
        pending = record.status is ApprovalStatus.PENDING
        async with self._pool.acquire() as conn, conn.transaction():
            details: dict[str, Any] = {
                "approval_id": str(req.approval_id),
                "kind": req.kind.value,
                "playbook": req.playbook,
                "required_role": req.required_role.value,
                "channel": record.channel.value if record.channel else None,
                "reason": record.reason,
                "correction": record.correction.model_dump(mode="json")
                if record.correction
                else None,
            }
            if pending and req.requested_by is not None:
                # A rollback: who asked, from where (the CLI adds the operating-system user).
                details["requested_by"] = req.requested_by
                details["channel"] = req.requested_channel.value if req.requested_channel else None
                details["os_user"] = req.requested_os_user
            if not pending and record.os_user is not None:
                details["os_user"] = record.os_user
            fresh = await audit.append(
                conn,
                actor=record.decided_by or (req.requested_by if pending else None) or "autopilot",
                action=f"approval.{'requested' if pending else record.status.value}",
                ticket_id=req.ticket_id,
                details=details,
                idempotency_key=idempotency_key,
            )
            if not fresh:
                return
            if record.status is ApprovalStatus.PENDING:
                await conn.execute(
                    """
                    INSERT INTO support_approvals (id, ticket_id, kind, plan_id, run_id, playbook,
                        required_role, request, requested_at, expires_at)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                    ON CONFLICT (id) DO NOTHING
                    """,
                    req.approval_id,
                    req.ticket_id,
                    req.kind.value,
                    req.plan_id,
                    req.run_id,
                    req.playbook,
                    req.required_role.value,
                    req.model_dump(mode="json"),
                    req.requested_at,
                    req.expires_at,
                )
                return
            await conn.execute(
                """
                UPDATE support_approvals
                SET status = $2, decided_by = $3, decided_at = now(), channel = $4, reason = $5,
                    correction = $6, triage_accepted = $7
                WHERE id = $1 AND status = 'pending'
                """,
                req.approval_id,
                record.status.value,
                record.decided_by,
                record.channel.value if record.channel else None,
                record.reason,
                record.correction.model_dump(mode="json") if record.correction else None,
                record.triage_accepted,
            )
            if record.triage_accepted is not None:
                await kpi.emit(
                    conn,
                    event="triage_reviewed",
                    ticket_id=req.ticket_id,
                    idempotency_key=f"{idempotency_key}:triage_reviewed",
                    priority=req.severity.value,
                    details={
                        "accepted": record.triage_accepted,
                        "correction": record.correction.model_dump(mode="json")
                        if record.correction
                        else None,
                    },
                )

    async def set_slack_message(self, approval_id: uuid.UUID, *, channel: str, ts: str) -> None:
        """Remember where the request was posted in Slack (set once)."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE support_approvals SET slack_channel = $2, slack_ts = $3 "
                "WHERE id = $1 AND slack_ts IS NULL",
                approval_id,
                channel,
                ts,
            )

    async def slack_message(self, approval_id: uuid.UUID) -> tuple[str, str] | None:
        """The Slack channel and message ts of a request, if it was posted."""
        return await slack_refs.slack_message(self._pool, "support_approvals", approval_id)

    async def was_sent(self, send_key: str) -> bool:
        """True when a notification send with this key was recorded (a retry skips it)."""
        async with self._pool.acquire() as conn:
            found = await conn.fetchval(
                "SELECT 1 FROM support_audit_log WHERE idempotency_key = $1", send_key
            )
        return found is not None

    async def record_sent(
        self,
        send_key: str,
        *,
        request: ApprovalRequest,
        channel: str,
        recipients: list[str],
        level: int,
        action: str = "notification.sent",
    ) -> None:
        """Audit that a notification of the request went out, to whom and through which
        channel, keyed for retries: one send (``notification.sent``), or a whole round of
        them (``approval.sent``, ``approval.reminded``)."""
        async with self._pool.acquire() as conn:
            await audit.append(
                conn,
                actor="autopilot",
                action=action,
                ticket_id=request.ticket_id,
                details={
                    "approval_id": str(request.approval_id),
                    "channel": channel,
                    "recipients": recipients,
                    "level": level,
                },
                idempotency_key=send_key,
            )

    async def record_refused_decision(
        self,
        *,
        approval_id: uuid.UUID,
        ticket_id: uuid.UUID | None,
        who: str,
        channel: str,
        verdict: str,
        reason: str,
        os_user: str | None = None,
    ) -> None:
        """Audit a decision attempt that was not taken: who, from where, why."""
        async with self._pool.acquire() as conn:
            await audit.append(
                conn,
                actor=who,
                action="approval.decision_refused",
                ticket_id=ticket_id,
                details={
                    "approval_id": str(approval_id),
                    "channel": channel,
                    "verdict": verdict,
                    "reason": reason,
                    **({"os_user": os_user} if os_user else {}),
                },
            )

    async def pending(self) -> list[PendingApproval]:
        """Requests still waiting for a decision, oldest first."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT request FROM support_approvals WHERE status = 'pending' "
                "ORDER BY requested_at"
            )
        # A row of the list is the request's own fields, read from the request as stored.
        requests = (ApprovalRequest.model_validate(row["request"]) for row in rows)
        return [PendingApproval.model_validate(req, from_attributes=True) for req in requests]

    async def standing(self, approval_id: uuid.UUID) -> ApprovalStanding | None:
        """Its status, and who decided it when (None while pending or for an expiry)."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT status, decided_by, decided_at, reason FROM support_approvals "
                "WHERE id = $1",
                approval_id,
            )
        return ApprovalStanding.model_validate(dict(row)) if row is not None else None

    async def get(self, approval_id: uuid.UUID) -> tuple[ApprovalRequest, ApprovalStatus] | None:
        """A request and its current status."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT request, status FROM support_approvals WHERE id = $1", approval_id
            )
        if row is None:
            return None
        return ApprovalRequest.model_validate(row["request"]), ApprovalStatus(row["status"])
