"""The append-only audit log: a keyed hash chain, and its head anchored outside the database.

hash = HMAC-SHA256(key, prev_hash || canonical row), with a key the database never holds
(``KRUXT_AUDIT_KEY``): whoever owns the table can rewrite rows, but cannot recompute hashes
that verify. Anchors (the signed chain head, appended to a file outside the database) make a
deleted tail visible too, which no chain can show by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kruxt.adapters.postgres.pool import Conn
from kruxt.models.records import AuditEntry, AuditVerification

GENESIS_HASH = "0" * 64
MIN_KEY_LENGTH = 32


@dataclass(frozen=True)
class AuditKeyring:
    """The key that signs new entries, and retired ones that still verify old entries."""

    current: bytes
    retired: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        for key in (self.current, *self.retired):
            if len(key) < MIN_KEY_LENGTH:
                raise ValueError(f"an audit key has at least {MIN_KEY_LENGTH} bytes")

    @classmethod
    def of(cls, current: str, retired: Iterable[str] = ()) -> AuditKeyring:
        """From the text of the settings (retired keys: any iterable of strings)."""
        return cls(current.encode(), tuple(k.encode() for k in retired if k))

    @property
    def key_id(self) -> str:
        """The id stored with each entry: a fingerprint of the signing key, not the key."""
        return key_id_of(self.current)

    def key(self, key_id: str) -> bytes | None:
        """The key with this id, if it is configured."""
        return next((k for k in (self.current, *self.retired) if key_id_of(k) == key_id), None)


def key_id_of(key: bytes) -> str:
    """A key's id: an HMAC of a constant, so it names the key without revealing it."""
    return hmac.new(key, b"kruxt-audit-key-id", hashlib.sha256).hexdigest()[:16]


def _mac(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


_keyring: AuditKeyring | None = None


def use_keyring(keyring: AuditKeyring) -> None:
    """Set the process's keyring (the worker and the API do it at startup)."""
    global _keyring
    _keyring = keyring


def current_keyring() -> AuditKeyring:
    """The process's keyring; read from the settings on first use when none was set.

    Raises:
        ConfigurationError: ``KRUXT_AUDIT_KEY`` is not set.
    """
    global _keyring
    if _keyring is None:
        from kruxt.adapters.settings import load_settings

        _keyring = load_settings().require_audit_keyring()
    return _keyring


async def append(
    conn: Conn,
    *,
    actor: str,
    action: str,
    ticket_id: uuid.UUID | None,
    details: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    keyring: AuditKeyring | None = None,
) -> bool:
    """Append an entry at the head of the chain; False if the key was used before.

    The advisory lock the trigger also takes makes id order chain order under concurrent
    writers; it is held until the caller's transaction ends, like the trigger's always was.
    """
    ring = keyring or current_keyring()
    # Inside the caller's transaction the lock holds to its end; a savepoint of our own would
    # cost two round trips and guard nothing (an error here fails that transaction anyway).
    own = contextlib.nullcontext() if conn.is_in_transaction() else conn.transaction()
    async with own:
        # The lock, then the head read after it, in one round trip (sql/022).
        head = await conn.fetchrow(
            "SELECT * FROM support_audit_reserve($1, $2, $3, $4, $5)",
            actor,
            action,
            ticket_id,
            details or {},
            idempotency_key,
        )
        if head is None:
            return False
        await conn.execute(
            """
            INSERT INTO support_audit_log (id, occurred_at, actor, action, ticket_id, details,
                                           idempotency_key, prev_hash, hash, key_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            """,
            head["new_id"],
            head["new_at"],
            actor,
            action,
            ticket_id,
            details or {},
            idempotency_key,
            head["head_hash"],
            _mac(ring.current, head["head_hash"] + head["canonical"]),
            ring.key_id,
        )
    return True


async def entries_for_ticket(conn: Conn, ticket_id: uuid.UUID) -> list[AuditEntry]:
    """A ticket's audit entries, oldest first."""
    rows = await conn.fetch(
        "SELECT id, occurred_at, actor, action, ticket_id, details, prev_hash, hash "
        "FROM support_audit_log WHERE ticket_id = $1 ORDER BY id",
        ticket_id,
    )
    return [AuditEntry(**dict(row)) for row in rows]


async def verify(
    conn: Conn, *, keyring: AuditKeyring | None = None, batch: int = 5000
) -> AuditVerification:
    """Walk the whole chain in id order and recompute every hash in Python.

    The canonical text of a row comes from the stored values (rendered by
    ``support_audit_canonical``, which includes the id); the keyed hashing and the linking
    are checked here, so a row edited, renumbered or reordered behind the triggers' back, or
    removed from the middle, breaks the walk at that row. Rows from before keyed hashing
    (no key id) verify with plain sha256, and only before the first keyed row.
    """
    ring = keyring or current_keyring()
    expected_prev = GENESIS_HASH
    checked = 0
    last_id = -1
    keyed_seen = False

    def broken(row_id: int, problem: str) -> AuditVerification:
        return AuditVerification(rows_checked=checked, first_bad_id=row_id, problem=problem)

    while True:
        rows = await conn.fetch(
            """
            SELECT id, prev_hash, hash, key_id,
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
                return broken(
                    row["id"],
                    "prev_hash does not match the previous row's hash "
                    "(a row before it was removed, rewritten or moved)",
                )
            text = row["prev_hash"] + row["canonical"]
            if row["key_id"] is None:
                if keyed_seen:
                    return broken(
                        row["id"],
                        "an unkeyed row after keyed ones (rewritten by someone without the key)",
                    )
                digest = hashlib.sha256(text.encode()).hexdigest()
            else:
                keyed_seen = True
                key = ring.key(row["key_id"])
                if key is None:
                    return broken(
                        row["id"],
                        f"the row is signed with key {row['key_id']}, which is not configured "
                        "(a wrong KRUXT_AUDIT_KEY, or a retired key missing from "
                        "KRUXT_AUDIT_RETIRED_KEYS)",
                    )
                digest = _mac(key, text)
            if not hmac.compare_digest(digest, row["hash"]):
                return broken(
                    row["id"],
                    "the row's content does not match its hash "
                    "(the row was altered, renumbered or moved)",
                )
            expected_prev = row["hash"]
            last_id = row["id"]


# -- anchors ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Anchor:
    """The chain head at a moment, signed: one line of the anchor file."""

    row_id: int
    hash: str
    at: str
    key_id: str
    mac: str

    @staticmethod
    def signed_text(row_id: int, hash_: str, at: str) -> str:
        """What the anchor's MAC covers."""
        return f"kruxt-audit-anchor\n{row_id}\n{hash_}\n{at}"


async def chain_head(conn: Conn) -> tuple[int, str]:
    """The newest row's id and hash; (0, genesis) for an empty log."""
    row = await conn.fetchrow("SELECT id, hash FROM support_audit_log ORDER BY id DESC LIMIT 1")
    return (row["id"], row["hash"]) if row is not None else (0, GENESIS_HASH)


async def write_anchor(conn: Conn, path: Path, *, keyring: AuditKeyring | None = None) -> Anchor:
    """Append the signed chain head to ``path`` (a JSON line; the file is only appended to)."""
    ring = keyring or current_keyring()
    row_id, head = await chain_head(conn)
    at = datetime.now(UTC).isoformat()
    anchor = Anchor(
        row_id, head, at, ring.key_id, _mac(ring.current, Anchor.signed_text(row_id, head, at))
    )
    line = json.dumps(
        {"id": row_id, "hash": head, "at": at, "key_id": anchor.key_id, "mac": anchor.mac}
    )
    await asyncio.to_thread(_append_line, path, line)
    return anchor


def _append_line(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.is_file() else []


async def verify_anchors(
    conn: Conn, path: Path, *, keyring: AuditKeyring | None = None
) -> AuditVerification:
    """Check every anchor of ``path`` against the table, newest first.

    ``rows_checked`` counts the anchors checked. A missing file is no anchors. The newest
    anchor that names a missing row, or a row whose hash changed, is reported: that is the
    tail deletion (or rewrite) that the chain alone cannot show.
    """
    ring = keyring or current_keyring()
    lines = await asyncio.to_thread(_read_lines, path)
    checked = 0
    for number in range(len(lines), 0, -1):
        raw = lines[number - 1].strip()
        if not raw:
            continue
        checked += 1
        try:
            data = json.loads(raw)
            anchor = Anchor(
                int(data["id"]), str(data["hash"]), str(data["at"]), data["key_id"], data["mac"]
            )
        except (ValueError, KeyError, TypeError):
            return AuditVerification(
                rows_checked=checked,
                first_bad_id=0,
                problem=f"{path} line {number} is not an anchor",
            )
        key = ring.key(anchor.key_id)
        expected = (
            _mac(key, Anchor.signed_text(anchor.row_id, anchor.hash, anchor.at)) if key else ""
        )
        if not hmac.compare_digest(expected, anchor.mac):
            return AuditVerification(
                rows_checked=checked,
                first_bad_id=anchor.row_id,
                problem=f"the anchor of {anchor.at} ({path} line {number}) is not signed by a "
                "configured key: the anchor file was edited, or the key is wrong",
            )
        if anchor.row_id == 0:
            continue
        stored = await conn.fetchval(
            "SELECT hash FROM support_audit_log WHERE id = $1", anchor.row_id
        )
        if stored is None or stored != anchor.hash:
            newest = "the newest anchor" if checked == 1 else f"the anchor of {anchor.at}"
            what = (
                "which is missing (the log's tail was deleted)"
                if stored is None
                else ("which has a different hash (the row was rewritten)")
            )
            return AuditVerification(
                rows_checked=checked,
                first_bad_id=anchor.row_id,
                problem=f"{newest} names row {anchor.row_id}, {what}",
            )
    return AuditVerification(rows_checked=checked)
