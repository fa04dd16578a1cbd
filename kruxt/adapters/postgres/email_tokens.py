"""Single use of e-mailed approval links (``support_email_tokens``), each write audited.

A token is recorded when it is issued and consumed at most once, atomically, when someone
posts its decision. A consumed token stays consumed whatever happens to the decision it
carried (refused, or not delivered): links are cheap to send again, a replayable link is
not. The token itself is never stored or audited, only its random id ``jti``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel

from kruxt.adapters.email_tokens import TokenClaims
from kruxt.adapters.postgres import audit
from kruxt.adapters.postgres.pool import Conn

__all__ = ["EmailTokenRecord", "EmailTokenStore"]

SYSTEM_ACTOR = "autopilot"
USED_FROM_MAX_CHARS = 300


class EmailTokenRecord(BaseModel):
    """One issued token as stored."""

    jti: str
    approval_id: uuid.UUID
    ticket_id: uuid.UUID | None
    approver: str
    verdict: str
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None
    used_from: str | None


class EmailTokenStore:
    """Record issued approval-link tokens and consume them once."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool

    async def record_issued(
        self, claims: TokenClaims, *, ticket_id: uuid.UUID | None = None
    ) -> bool:
        """Remember a token just issued; False when its ``jti`` was recorded before."""
        async with self._pool.acquire() as conn, conn.transaction():
            return await _insert_issued(conn, claims, ticket_id)

    async def record_mailed(
        self,
        claims: Sequence[TokenClaims],
        *,
        ticket_id: uuid.UUID | None,
        recipient: str,
        send_key: str,
    ) -> bool:
        """Record the tokens of a mail that went out, and the send itself, in one transaction.

        ``send_key`` names the send (the activity's identity and the recipient): a retry finds
        it in the audit log and sends nothing again. False when it was recorded before.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            fresh = await audit.append(
                conn,
                actor=SYSTEM_ACTOR,
                action="notification.sent",
                ticket_id=ticket_id,
                details={
                    "channel": "email",
                    "recipient": recipient,
                    "approval_id": str(claims[0].approval_id) if claims else None,
                },
                idempotency_key=send_key,
            )
            if not fresh:
                return False
            for one in claims:
                await _insert_issued(conn, one, ticket_id)
            return True

    async def consume(self, claims: TokenClaims, *, used_from: str) -> bool:
        """Use a token once: True the first time; False when replayed or never issued.

        The ``UPDATE ... WHERE used_at IS NULL`` is the whole of the single-use guarantee:
        of two concurrent posts of the same link, exactly one gets the row.
        """
        used_from = used_from[:USED_FROM_MAX_CHARS]
        async with self._pool.acquire() as conn, conn.transaction():
            used = await conn.fetchrow(
                """
                UPDATE support_email_tokens SET used_at = now(), used_from = $5
                WHERE jti = $1 AND approval_id = $2 AND approver = $3 AND verdict = $4
                  AND used_at IS NULL
                RETURNING ticket_id
                """,
                claims.jti,
                claims.approval_id,
                claims.approver_email,
                claims.verdict.value,
                used_from,
            )
            if used is not None:
                await audit.append(
                    conn,
                    actor=claims.approver_email,
                    action="approval.email_token_used",
                    ticket_id=used["ticket_id"],
                    details={**_details(claims), "used_from": used_from},
                    idempotency_key=f"email_token_used:{claims.jti}",
                )
                return True
            row = await conn.fetchrow(
                "SELECT ticket_id, used_at, used_from FROM support_email_tokens WHERE jti = $1",
                claims.jti,
            )
            await audit.append(
                conn,
                actor=claims.approver_email,
                action="approval.email_token_refused",
                ticket_id=row["ticket_id"] if row else None,
                details={
                    **_details(claims),
                    "reason": "replayed" if row else "unknown",
                    "used_from": used_from,
                    "first_used_at": row["used_at"].isoformat() if row and row["used_at"] else None,
                },
            )
            return False

    async def record_refused(self, claims: TokenClaims, *, reason: str, used_from: str) -> None:
        """Audit a genuine token that decided nothing (expired, or its decision refused)."""
        used_from = used_from[:USED_FROM_MAX_CHARS]
        async with self._pool.acquire() as conn, conn.transaction():
            ticket_id = await conn.fetchval(
                "SELECT ticket_id FROM support_email_tokens WHERE jti = $1", claims.jti
            )
            await audit.append(
                conn,
                actor=claims.approver_email,
                action="approval.email_token_refused",
                ticket_id=ticket_id,
                details={**_details(claims), "reason": reason[:500], "used_from": used_from},
            )

    async def get(self, jti: str) -> EmailTokenRecord | None:
        """A recorded token, or None."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM support_email_tokens WHERE jti = $1", jti)
        return EmailTokenRecord(**dict(row)) if row else None


async def _insert_issued(conn: Conn, claims: TokenClaims, ticket_id: uuid.UUID | None) -> bool:
    inserted = await conn.fetchval(
        """
        INSERT INTO support_email_tokens (jti, approval_id, ticket_id, approver, verdict,
                                          issued_at, expires_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (jti) DO NOTHING
        RETURNING jti
        """,
        claims.jti,
        claims.approval_id,
        ticket_id,
        claims.approver_email,
        claims.verdict.value,
        claims.issued_at,
        claims.expires_at,
    )
    if inserted is None:
        return False
    await audit.append(
        conn,
        actor=SYSTEM_ACTOR,
        action="approval.email_token_issued",
        ticket_id=ticket_id,
        details={**_details(claims), "expires_at": claims.expires_at.isoformat()},
        idempotency_key=f"email_token_issued:{claims.jti}",
    )
    return True


def _details(claims: TokenClaims) -> dict[str, Any]:
    return {
        "jti": claims.jti,
        "approval_id": str(claims.approval_id),
        "approver": claims.approver_email,
        "verdict": claims.verdict.value,
    }
