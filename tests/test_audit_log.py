"""The audit log holds against its own database roles.

The API and workers (the ``pool`` fixture: the runtime role) can only append. The owner (``db_dsn``:
every power, including switching the triggers off) can rewrite, reorder and delete rows and
recompute plain hashes, and `kruxt audit verify` still names the first bad row: the chain is
keyed with a key the database never holds, and its head is anchored outside the database.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from kruxt.adapters.postgres import audit, migrations
from kruxt.adapters.postgres.pool import Conn
from kruxt.adapters.settings import ConfigurationError, Settings
from kruxt.starter.cli import main as kruxt
from kruxt.starter.dev import DevStack
from tests.conftest import MIGRATIONS, runtime
from tests.support import connection, scratch_database

KEY_A = audit.AuditKeyring.of("a" * 40)
KEY_B = audit.AuditKeyring.of("b" * 40, retired=["a" * 40])


async def _append_some(
    pool: asyncpg.Pool[Any], n: int, *, keyring: audit.AuditKeyring | None = None
) -> uuid.UUID:
    ticket = uuid.uuid4()
    async with pool.acquire() as conn:
        for i in range(n):
            await audit.append(
                conn,
                actor="tester",
                action=f"step.{i}",
                ticket_id=ticket,
                details={"i": i},
                keyring=keyring,
            )
    return ticket


@pytest.fixture
async def owner(db_dsn: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    """The attacker: a session as the role that owns the table (and ran the migrations)."""
    async with connection(db_dsn) as conn:
        yield conn


async def _ids(conn: Conn) -> list[int]:
    return [r["id"] for r in await conn.fetch("SELECT id FROM support_audit_log ORDER BY id")]


AuditCli = Callable[..., Awaitable[int]]


@pytest.fixture
def audit_cli(db_dsn: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AuditCli:
    """``kruxt audit <args>`` on the test's database as the runtime role, its home (and so its
    anchors file) in ``tmp_path``: the exit code."""
    monkeypatch.setenv("DATABASE_URL", runtime(db_dsn))
    monkeypatch.setenv("KRUXT_HOME", str(tmp_path))

    async def run(*args: str) -> int:
        return await asyncio.to_thread(kruxt, ["audit", *args])

    return run


async def _unguarded(
    pool: asyncpg.Pool[Any], owner: asyncpg.Connection[Any], rows: int
) -> list[int]:
    """Append ``rows`` entries, then switch the append-only guard off, as the table's owner
    can; the rows' ids."""
    await _append_some(pool, rows)
    ids = await _ids(owner)
    await owner.execute("ALTER TABLE support_audit_log DISABLE TRIGGER USER")
    return ids


async def _recompute_plain_chain(
    conn: asyncpg.Connection[Any], *, from_id: int, unkeyed: bool = False
) -> None:
    """What the owner can do without the key: re-link every row from ``from_id`` on with
    plain sha256 (the 002 formula), optionally marking the rows as pre-keying (legacy)."""
    rows = await conn.fetch(
        "SELECT id, prev_hash, support_audit_canonical(id, occurred_at, actor, action, "
        "ticket_id, details, idempotency_key) AS canonical FROM support_audit_log ORDER BY id"
    )
    prev = audit.GENESIS_HASH
    for row in rows:
        if row["id"] >= from_id:
            digest = hashlib.sha256((prev + row["canonical"]).encode()).hexdigest()
            await conn.execute(
                "UPDATE support_audit_log SET prev_hash = $2, hash = $3, "
                "key_id = CASE WHEN $4 THEN NULL ELSE key_id END WHERE id = $1",
                row["id"],
                prev,
                digest,
                unkeyed,
            )
        prev = await conn.fetchval("SELECT hash FROM support_audit_log WHERE id = $1", row["id"])


async def test_chain_links_every_row_to_the_one_before(pool: asyncpg.Pool[Any]) -> None:
    ticket = await _append_some(pool, 5)
    async with pool.acquire() as conn:
        rows = await audit.entries_for_ticket(conn, ticket)
        result = await audit.verify(conn)
    assert [r.action for r in rows] == [f"step.{i}" for i in range(5)]
    assert rows[0].prev_hash == audit.GENESIS_HASH
    for before, after in itertools.pairwise(rows):
        assert after.prev_hash == before.hash
    assert result.intact and result.rows_checked == 5


async def test_same_idempotency_key_appends_once(pool: asyncpg.Pool[Any]) -> None:
    async with pool.acquire() as conn:
        first = await audit.append(conn, actor="a", action="x", ticket_id=None, idempotency_key="k")
        again = await audit.append(conn, actor="a", action="x", ticket_id=None, idempotency_key="k")
        count = await conn.fetchval("SELECT count(*) FROM support_audit_log")
    assert (first, again, count) == (True, False, 1)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE support_audit_log SET actor = 'mallory'",
        "DELETE FROM support_audit_log",
        "TRUNCATE support_audit_log",
        "ALTER TABLE support_audit_log DISABLE TRIGGER USER",
        "ALTER TABLE support_audit_log DISABLE TRIGGER support_audit_log_no_update_delete",
        "DROP TRIGGER support_audit_log_no_update_delete ON support_audit_log",
        "DROP TABLE support_audit_log",
    ],
)
async def test_the_runtime_role_cannot_change_or_unguard_the_log(
    pool: asyncpg.Pool[Any], statement: str
) -> None:
    await _append_some(pool, 2)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT current_user") == migrations.RUNTIME_ROLE
        with pytest.raises(asyncpg.InsufficientPrivilegeError) as refused:
            await conn.execute(statement)
        assert "permission denied" in str(refused.value) or "must be owner" in str(refused.value)
        assert await conn.fetchval("SELECT count(*) FROM support_audit_log") == 2
        assert (await audit.verify(conn)).intact


async def test_the_runtime_role_owns_nothing_and_may_not_truncate_anything(
    pool: asyncpg.Pool[Any],
) -> None:
    async with pool.acquire() as conn:
        owned = await conn.fetchval(
            "SELECT count(*) FROM pg_class WHERE relowner = "
            "(SELECT oid FROM pg_roles WHERE rolname = current_user)"
        )
        rights = await conn.fetchrow(
            "SELECT has_table_privilege('support_audit_log', 'INSERT') AS ins, "
            "has_table_privilege('support_audit_log', 'SELECT') AS sel, "
            "has_table_privilege('support_audit_log', 'UPDATE') AS upd, "
            "has_table_privilege('support_audit_log', 'DELETE') AS del, "
            "has_table_privilege('support_audit_log', 'TRUNCATE') AS trunc, "
            "has_table_privilege('support_audit_log', 'TRIGGER') AS trig"
        )
    assert owned == 0 and rights is not None
    assert dict(rights) == {
        "ins": True,
        "sel": True,
        "upd": False,
        "del": False,
        "trunc": False,
        "trig": False,
    }


@pytest.mark.parametrize(
    ("statement", "operation"),
    [
        ("UPDATE support_audit_log SET actor = 'mallory'", "UPDATE"),
        ("DELETE FROM support_audit_log", "DELETE"),
        ("TRUNCATE support_audit_log", "TRUNCATE"),
    ],
)
async def test_even_the_owner_meets_the_append_only_triggers(
    pool: asyncpg.Pool[Any], owner: asyncpg.Connection[Any], statement: str, operation: str
) -> None:
    await _append_some(pool, 2)
    with pytest.raises(asyncpg.InsufficientPrivilegeError) as refused:
        await owner.execute(statement)
    assert f"support_audit_log is append-only: {operation} is not allowed" in str(refused.value)
    assert await owner.fetchval("SELECT count(*) FROM support_audit_log") == 2


async def test_rows_that_do_not_extend_the_head_are_refused(pool: asyncpg.Pool[Any]) -> None:
    await _append_some(pool, 2)
    async with pool.acquire() as conn:
        head_id, head_hash = await audit.chain_head(conn)
        insert = (
            "INSERT INTO support_audit_log (id, actor, action, prev_hash, hash, key_id) "
            "VALUES ($1, 'mallory', 'x', $2, $3, $4)"
        )
        # A branch beside the head, a row renumbered below it, an unkeyed row.
        for args in (
            (head_id + 1, audit.GENESIS_HASH, "f" * 64, "k"),
            (head_id, head_hash, "f" * 64, "k"),
            (head_id + 1, head_hash, "f" * 64, None),
        ):
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute(insert, *args)
        assert await conn.fetchval("SELECT count(*) FROM support_audit_log") == 2


async def test_concurrent_appends_keep_one_chain(pool: asyncpg.Pool[Any]) -> None:
    async def writer(k: int) -> None:
        async with pool.acquire() as conn:
            for i in range(10):
                async with conn.transaction():
                    await audit.append(
                        conn, actor=f"w{k}", action="write", ticket_id=None, details={"i": i}
                    )

    await asyncio.gather(*(writer(k) for k in range(4)))
    async with pool.acquire() as conn:
        result = await audit.verify(conn)
    assert result.intact and result.rows_checked == 40


async def test_a_rewritten_row_with_a_recomputed_plain_chain_is_named(
    pool: asyncpg.Pool[Any], owner: asyncpg.Connection[Any], audit_cli: AuditCli, capsys: Any
) -> None:
    await _append_some(pool, 6)
    assert await audit_cli("verify") == 0
    assert "audit chain intact: 6 rows verified" in capsys.readouterr().out

    bad_id = (await _ids(owner))[3]
    # As the table's owner, an attacker can switch the guard off, rewrite a row and re-link
    # the chain after it: everything but the key.
    await owner.execute("ALTER TABLE support_audit_log DISABLE TRIGGER USER")
    await owner.execute(
        "UPDATE support_audit_log SET details = '{\"i\": 99}' WHERE id = $1", bad_id
    )
    await _recompute_plain_chain(owner, from_id=bad_id)
    await owner.execute("ALTER TABLE support_audit_log ENABLE TRIGGER USER")
    result = await audit.verify(owner)
    assert result.first_bad_id == bad_id
    assert result.problem is not None and "does not match its hash" in result.problem

    assert await audit_cli("verify") == 1
    assert f"audit chain BROKEN at row {bad_id}" in capsys.readouterr().err


async def test_a_rewrite_passed_off_as_pre_keying_rows_is_named(
    pool: asyncpg.Pool[Any], owner: asyncpg.Connection[Any]
) -> None:
    bad_id = (await _unguarded(pool, owner, 5))[2]
    await owner.execute("UPDATE support_audit_log SET actor = 'mallory' WHERE id = $1", bad_id)
    await _recompute_plain_chain(owner, from_id=bad_id, unkeyed=True)
    result = await audit.verify(owner)
    assert result.first_bad_id == bad_id
    assert result.problem is not None and "unkeyed row after keyed" in result.problem


async def _swap_the_second_and_third(owner: asyncpg.Connection[Any], ids: list[int]) -> None:
    # Through a free id: the primary key.
    await owner.execute("UPDATE support_audit_log SET id = -1 WHERE id = $1", ids[1])
    await owner.execute("UPDATE support_audit_log SET id = $1 WHERE id = $2", ids[1], ids[2])
    await owner.execute("UPDATE support_audit_log SET id = $1 WHERE id = -1", ids[2])


async def _close_the_gap_of_the_second(owner: asyncpg.Connection[Any], ids: list[int]) -> None:
    # The gap a deleted row would leave: every row after the first moves down by one.
    await owner.execute("DELETE FROM support_audit_log WHERE id = $1", ids[1])
    for old in ids[2:]:
        await owner.execute("UPDATE support_audit_log SET id = id - 1 WHERE id = $1", old)


@pytest.mark.parametrize(
    ("rows", "move"),
    [(5, _swap_the_second_and_third), (4, _close_the_gap_of_the_second)],
    ids=["reordered", "renumbered"],
)
async def test_moved_rows_are_named(
    pool: asyncpg.Pool[Any],
    owner: asyncpg.Connection[Any],
    rows: int,
    move: Callable[[asyncpg.Connection[Any], list[int]], Awaitable[None]],
) -> None:
    ids = await _unguarded(pool, owner, rows)
    await move(owner, ids)
    await _recompute_plain_chain(owner, from_id=ids[1])
    result = await audit.verify(owner)
    assert result.first_bad_id == ids[1]


async def test_a_deleted_row_is_named(
    pool: asyncpg.Pool[Any], owner: asyncpg.Connection[Any]
) -> None:
    ids = await _unguarded(pool, owner, 4)
    await owner.execute("DELETE FROM support_audit_log WHERE id = $1", ids[1])
    result = await audit.verify(owner)
    assert result.first_bad_id == ids[2]
    assert result.problem is not None and "prev_hash" in result.problem


async def test_a_deleted_tail_is_named_by_the_anchor(
    pool: asyncpg.Pool[Any], owner: asyncpg.Connection[Any], audit_cli: AuditCli, capsys: Any
) -> None:
    await _append_some(pool, 3)
    assert await audit_cli("anchor") == 0
    await _append_some(pool, 3)
    assert await audit_cli("anchor") == 0
    assert await audit_cli("verify") == 0
    assert "6 rows verified, 2 anchors" in capsys.readouterr().out

    ids = await _ids(owner)
    await owner.execute("ALTER TABLE support_audit_log DISABLE TRIGGER USER")
    await owner.execute("DELETE FROM support_audit_log WHERE id >= $1", ids[4])
    # The chain that is left is a valid chain: only the anchor knows it was longer.
    assert (await audit.verify(owner)).intact
    assert await audit_cli("verify") == 1
    err = capsys.readouterr().err
    assert f"the newest anchor names row {ids[5]}, which is missing" in err


async def test_a_wholesale_plain_rewrite_is_named_by_the_anchor(
    pool: asyncpg.Pool[Any], owner: asyncpg.Connection[Any], tmp_path: Path
) -> None:
    await _append_some(pool, 4)
    anchors = tmp_path / "anchors.jsonl"
    async with pool.acquire() as conn:
        await audit.write_anchor(conn, anchors)
    ids = await _ids(owner)
    await owner.execute("ALTER TABLE support_audit_log DISABLE TRIGGER USER")
    await owner.execute("UPDATE support_audit_log SET actor = 'mallory' WHERE id = $1", ids[1])
    # Every row passed off as written before keyed hashing: a consistent plain chain.
    await _recompute_plain_chain(owner, from_id=ids[0], unkeyed=True)
    assert (await audit.verify(owner)).intact
    result = await audit.verify_anchors(owner, anchors)
    assert result.first_bad_id == ids[3]
    assert result.problem is not None and "different hash" in result.problem


async def test_an_edited_anchor_is_refused(pool: asyncpg.Pool[Any], tmp_path: Path) -> None:
    await _append_some(pool, 2)
    anchors = tmp_path / "anchors.jsonl"
    async with pool.acquire() as conn:
        await audit.write_anchor(conn, anchors)
        line = json.loads(anchors.read_text())
        anchors.write_text(json.dumps({**line, "id": line["id"] - 1}) + "\n")
        result = await audit.verify_anchors(conn, anchors)
    assert not result.intact
    assert result.problem is not None and "not signed by a configured key" in result.problem


async def test_a_wrong_key_fails_on_the_first_row(pool: asyncpg.Pool[Any]) -> None:
    await _append_some(pool, 3, keyring=KEY_A)
    async with pool.acquire() as conn:
        first = (await _ids(conn))[0]
        assert (await audit.verify(conn, keyring=KEY_A)).intact
        result = await audit.verify(conn, keyring=audit.AuditKeyring.of("c" * 40))
    assert result.first_bad_id == first
    assert result.problem is not None and "not configured" in result.problem


async def test_a_row_forged_under_the_real_key_id_is_named(pool: asyncpg.Pool[Any]) -> None:
    await _append_some(pool, 3, keyring=KEY_A)
    # Another key, but the row claims the real key's id: the hash itself gives it away.
    await _append_some_with_id(pool, audit.AuditKeyring.of("d" * 40), KEY_A.key_id)
    async with pool.acquire() as conn:
        result = await audit.verify(conn, keyring=KEY_A)
        ids = await _ids(conn)
    assert result.first_bad_id == ids[3]
    assert result.problem is not None and "does not match its hash" in result.problem


async def _append_some_with_id(
    pool: asyncpg.Pool[Any], keyring: audit.AuditKeyring, key_id: str
) -> None:
    """Append one row signed with ``keyring`` but labelled ``key_id`` (a forger's row)."""

    class Forged(audit.AuditKeyring):
        @property
        def key_id(self) -> str:
            return key_id

    async with pool.acquire() as conn:
        await audit.append(
            conn, actor="forger", action="x", ticket_id=None, keyring=Forged(keyring.current)
        )


async def test_rows_under_two_keys_verify_after_rotation(pool: asyncpg.Pool[Any]) -> None:
    await _append_some(pool, 3, keyring=KEY_A)
    await _append_some(pool, 3, keyring=KEY_B)
    async with pool.acquire() as conn:
        ids = await _ids(conn)
        key_ids = [
            r["key_id"]
            for r in await conn.fetch("SELECT key_id FROM support_audit_log ORDER BY id")
        ]
        rotated = await audit.verify(conn, keyring=KEY_B)
        old_key_dropped = await audit.verify(conn, keyring=audit.AuditKeyring.of("b" * 40))
    assert key_ids == [KEY_A.key_id] * 3 + [KEY_B.key_id] * 3
    assert rotated.intact and rotated.rows_checked == 6
    assert old_key_dropped.first_bad_id == ids[0]


async def test_rows_from_before_keyed_hashing_still_verify(
    pg_admin_dsn: str, tmp_path: Path
) -> None:
    """A log started under 002's plain sha256 trigger, then migrated to 010 and appended to."""
    old = tmp_path / "sql"
    old.mkdir()
    for path in sorted(MIGRATIONS.glob("*.sql")):
        if int(path.name[:3]) < 10:
            shutil.copy(path, old / path.name)
    legacy = f"kruxt_legacy_{uuid.uuid4().hex[:8]}"
    async with scratch_database(pg_admin_dsn, legacy) as dsn, connection(dsn) as conn:
        await migrations.apply(conn, old)
        for i in range(3):  # the 009-era trigger assigned id and plain hash
            await conn.execute(
                "INSERT INTO support_audit_log (id, actor, action, details, prev_hash, hash) "
                "VALUES (0, 'old', 'legacy', $1, '', '')",
                {"i": i},
            )
        await migrations.apply(conn, MIGRATIONS)
        for i in range(2):
            await audit.append(conn, actor="new", action="keyed", ticket_id=None, details={"i": i})
        result = await audit.verify(conn)
        keyed = await conn.fetchval("SELECT count(key_id) FROM support_audit_log")
    assert result.intact and result.rows_checked == 5
    assert keyed == 2


async def test_without_a_key_nothing_is_appended_and_the_cli_says_why(
    audit_cli: AuditCli, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.delenv("KRUXT_AUDIT_KEY")
    assert await audit_cli("verify") == 2
    assert "KRUXT_AUDIT_KEY is not set" in capsys.readouterr().err
    with pytest.raises(ConfigurationError, match="KRUXT_AUDIT_KEY"):
        Settings().require_audit_keyring()
    with pytest.raises(ConfigurationError, match="at least 32"):
        Settings(KRUXT_AUDIT_KEY="short").require_audit_keyring()


def test_dev_keeps_its_audit_key_in_its_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("KRUXT_AUDIT_KEY")
    monkeypatch.setenv("KRUXT_HOME", str(tmp_path))
    first = DevStack(Settings())._audit_key()
    again = DevStack(Settings())._audit_key()
    key = (tmp_path / "audit_key").read_text().strip()
    assert first == again == {"KRUXT_AUDIT_KEY": key}
    assert len(key) >= audit.MIN_KEY_LENGTH
    assert (tmp_path / "audit_key").stat().st_mode & 0o077 == 0
    monkeypatch.setenv("KRUXT_AUDIT_KEY", "x" * 40)  # configured: used as it is
    assert DevStack(Settings())._audit_key() == {}
