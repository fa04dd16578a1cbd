"""The append-only, hash-chained audit log."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from kruxt.adapters.postgres.pool import Conn
from kruxt.models.records import AuditEntry, AuditVerification

GENESIS_HASH = "0" * 64


async def append(
    conn: Conn,
    *,
    actor: str,
    action: str,
    ticket_id: uuid.UUID | None,
    details: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> bool:
    """Append an entry (the trigger assigns id and hash); False if the key was used before."""
    status = await conn.execute(
        """
        INSERT INTO support_audit_log (id, actor, action, ticket_id, details, idempotency_key,
                                       prev_hash, hash)
        VALUES (0, $1, $2, $3, $4, $5, '', '')
        ON CONFLICT (idempotency_key) DO NOTHING
        """,
        actor,
        action,
        ticket_id,
        details or {},
        idempotency_key,
    )
    return bool(status.endswith(" 1"))


async def entries_for_ticket(conn: Conn, ticket_id: uuid.UUID) -> list[AuditEntry]:
    """A ticket's audit entries, oldest first."""
    rows = await conn.fetch(
        "SELECT id, occurred_at, actor, action, ticket_id, details, prev_hash, hash "
        "FROM support_audit_log WHERE ticket_id = $1 ORDER BY id",
        ticket_id,
    )
    return [AuditEntry(**dict(row)) for row in rows]


async def verify(conn: Conn, *, batch: int = 5000) -> AuditVerification:
    """Walk the whole chain in id order and recompute every hash in Python.

    The canonical text of a row comes from the stored values (rendered by
    ``support_audit_canonical``); the hashing and the linking are checked here, so a row
    edited behind the triggers' back, or removed, breaks the walk at that row.
    """
    expected_prev = GENESIS_HASH
    checked = 0
    last_id = -1
    while True:
        rows = await conn.fetch(
            """
            SELECT id, prev_hash, hash,
                   support_audit_canonical(id, occurred_at, actor, action, ticket_id, details,
                                           idempotency_key) AS canonical
            FROM support_audit_log WHERE id > $1 ORDER BY id LIMIT $2
            """,
            last_id,
            batch,
        )
        if not rows:
            return AuditVerification(rows_checked=checked)
        for row in rows:
            checked += 1
            if row["prev_hash"] != expected_prev:
                return AuditVerification(
                    rows_checked=checked,
                    first_bad_id=row["id"],
                    problem="prev_hash does not match the previous row's hash "
                    "(a row before it was removed or rewritten)",
                )
            digest = hashlib.sha256((row["prev_hash"] + row["canonical"]).encode()).hexdigest()
            if digest != row["hash"]:
                return AuditVerification(
                    rows_checked=checked,
                    first_bad_id=row["id"],
                    problem="the row's content does not match its hash (the row was altered)",
                )
            expected_prev = row["hash"]
            last_id = row["id"]
