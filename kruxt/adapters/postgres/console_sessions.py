"""The staff console's sign-in state: single-use links, sessions and personal API tokens.

Every sign-in, sign-out, refused sign-in and token change is appended to the audit log with
the channel ``console`` in the same transaction as the row it concerns. Credentials are kept
by their SHA-256 only (``token_hash``): a copy of the table signs nobody in.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel

from kruxt.adapters.email_tokens import SignInClaims
from kruxt.adapters.postgres import audit
from kruxt.adapters.postgres.pool import Conn

__all__ = ["CHANNEL", "ConsoleSessionStore", "PersonalToken", "SessionRecord"]

CHANNEL = "console"
USED_FROM_MAX_CHARS = 300


class SessionRecord(BaseModel):
    """One console session as stored (its cookie only as a hash)."""

    id: uuid.UUID
    email: str
    via: str
    csrf_token: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class PersonalToken(BaseModel):
    """One personal API token as stored (the token itself only as a hash)."""

    id: uuid.UUID
    email: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ConsoleSessionStore:
    """Record sign-in links, sessions and personal tokens; audit every sign-in event."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool

    # --- links -----------------------------------------------------------------------------

    async def record_link(self, claims: SignInClaims) -> None:
        """Remember a sign-in link just issued (by its ``jti``), audited as mailed."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """
                INSERT INTO support_console_links (jti, email, issued_at, expires_at)
                VALUES ($1, $2, $3, $4)
                """,
                claims.jti,
                claims.email,
                claims.issued_at,
                claims.expires_at,
            )
            await _audit(
                conn,
                claims.email,
                "console.sign_in_link_sent",
                {"jti": claims.jti, "expires_at": claims.expires_at.isoformat()},
            )

    async def links_issued_since(self, email: str, since: datetime) -> int:
        """How many sign-in links ``email`` was sent since ``since``."""
        async with self._pool.acquire() as conn:
            count: int = await conn.fetchval(
                "SELECT count(*) FROM support_console_links WHERE email = $1 AND issued_at > $2",
                email,
                since,
            )
        return count

    async def link_used(self, jti: str) -> bool:
        """Whether the link ``jti`` was used already (unknown links count as used)."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT used_at FROM support_console_links WHERE jti = $1", jti
            )
        return row is None or row["used_at"] is not None

    async def consume_link(self, claims: SignInClaims, *, used_from: str) -> bool:
        """Use a link once: True the first time; False (audited as refused) when replayed or
        never issued. Of two concurrent posts of one link, the ``UPDATE`` lets exactly one in.
        """
        used_from = used_from[:USED_FROM_MAX_CHARS]
        async with self._pool.acquire() as conn, conn.transaction():
            used = await conn.fetchval(
                """
                UPDATE support_console_links SET used_at = now(), used_from = $3
                WHERE jti = $1 AND email = $2 AND used_at IS NULL
                RETURNING jti
                """,
                claims.jti,
                claims.email,
                used_from,
            )
            if used is not None:
                return True
            known = await conn.fetchval(
                "SELECT used_at FROM support_console_links WHERE jti = $1", claims.jti
            )
            await _audit(
                conn,
                claims.email,
                "console.sign_in_refused",
                {
                    "via": "link",
                    "jti": claims.jti,
                    "reason": "replayed" if known else "unknown",
                    "used_from": used_from,
                },
            )
            return False

    # --- sessions --------------------------------------------------------------------------

    async def create_session(
        self,
        *,
        email: str,
        token_hash: str,
        csrf_token: str,
        via: str,
        expires_at: datetime,
        created_from: str,
    ) -> SessionRecord:
        """A new session for ``email``, audited as a sign-in."""
        created_from = created_from[:USED_FROM_MAX_CHARS]
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """
                INSERT INTO support_console_sessions
                    (id, token_hash, email, via, csrf_token, expires_at, created_from)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                RETURNING *
                """,
                uuid.uuid4(),
                token_hash,
                email,
                via,
                csrf_token,
                expires_at,
                created_from,
            )
            record = _session(row)
            await _audit(
                conn,
                email,
                "console.signed_in",
                {
                    "via": via,
                    "session_id": str(record.id),
                    "expires_at": expires_at.isoformat(),
                    "used_from": created_from,
                },
            )
        return record

    async def session(self, token_hash: str) -> SessionRecord | None:
        """The session of a cookie's hash, revoked or expired ones included (the caller
        judges them against its clock)."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT * FROM support_console_sessions WHERE token_hash = $1", token_hash
            )
        return _session(row) if row is not None else None

    async def revoke_session(self, token_hash: str, *, reason: str = "signed out") -> bool:
        """End a session (sign-out); False when it had ended already."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """
                UPDATE support_console_sessions SET revoked_at = now()
                WHERE token_hash = $1 AND revoked_at IS NULL
                RETURNING id, email, via
                """,
                token_hash,
            )
            if row is None:
                return False
            await _audit(
                conn,
                row["email"],
                "console.signed_out",
                {"session_id": str(row["id"]), "via": row["via"], "reason": reason},
            )
            return True

    async def record_refused(self, email: str, *, via: str, reason: str, used_from: str) -> None:
        """Audit a sign-in that presented a genuine credential and was refused (an expired
        link, an identity provider's person not on the staff list)."""
        async with self._pool.acquire() as conn, conn.transaction():
            await _audit(
                conn,
                email[:320],
                "console.sign_in_refused",
                {"via": via, "reason": reason[:500], "used_from": used_from[:USED_FROM_MAX_CHARS]},
            )

    # --- personal tokens -------------------------------------------------------------------

    async def create_token(self, *, email: str, name: str, token_hash: str) -> PersonalToken:
        """Record a new personal token for ``email`` (audited; the token is not stored)."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """
                INSERT INTO support_console_tokens (id, token_hash, email, name)
                VALUES ($1, $2, $3, $4)
                RETURNING id, email, name, created_at, last_used_at, revoked_at
                """,
                uuid.uuid4(),
                token_hash,
                email,
                name,
            )
            assert row is not None  # INSERT ... RETURNING
            token = PersonalToken(**dict(row))
            await _audit(
                conn, email, "console.token_created", {"token_id": str(token.id), "name": name}
            )
        return token

    async def use_token(self, token_hash: str) -> PersonalToken | None:
        """The live token of this hash, its last use stamped; None if unknown or revoked."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                """
                UPDATE support_console_tokens SET last_used_at = now()
                WHERE token_hash = $1 AND revoked_at IS NULL
                RETURNING id, email, name, created_at, last_used_at, revoked_at
                """,
                token_hash,
            )
        return PersonalToken(**dict(row)) if row is not None else None

    async def revoke_token(self, token_id: uuid.UUID, *, by: str) -> PersonalToken | None:
        """Revoke a token for good (audited); None when there is no live token of that id."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """
                UPDATE support_console_tokens SET revoked_at = now()
                WHERE id = $1 AND revoked_at IS NULL
                RETURNING id, email, name, created_at, last_used_at, revoked_at
                """,
                token_id,
            )
            if row is None:
                return None
            token = PersonalToken(**dict(row))
            await _audit(
                conn,
                by,
                "console.token_revoked",
                {"token_id": str(token.id), "owner": token.email, "name": token.name},
            )
        return token

    async def tokens(self, *, email: str | None = None) -> list[PersonalToken]:
        """Personal tokens, newest first (of one person when ``email`` is given)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """
                SELECT id, email, name, created_at, last_used_at, revoked_at
                FROM support_console_tokens
                WHERE $1::text IS NULL OR email = $1
                ORDER BY created_at DESC
                """,
                email,
            )
        return [PersonalToken(**dict(row)) for row in rows]


def _session(row: Any) -> SessionRecord:
    return SessionRecord(**{k: row[k] for k in SessionRecord.model_fields})


async def _audit(conn: Conn, actor: str, action: str, details: dict[str, Any]) -> None:
    await audit.append(
        conn, actor=actor, action=action, ticket_id=None, details={"channel": CHANNEL, **details}
    )
