"""The audit log is append-only for real, and `kruxt audit verify` catches an edited row."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

import asyncpg
import pytest

from kruxt.adapters.postgres import audit
from kruxt.starter.cli import main as kruxt


async def _append_some(pool: asyncpg.Pool[Any], n: int) -> uuid.UUID:
    ticket = uuid.uuid4()
    async with pool.acquire() as conn:
        for i in range(n):
            await audit.append(
                conn, actor="tester", action=f"step.{i}", ticket_id=ticket, details={"i": i}
            )
    return ticket


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
    ("statement", "operation"),
    [
        ("UPDATE support_audit_log SET actor = 'mallory'", "UPDATE"),
        ("DELETE FROM support_audit_log", "DELETE"),
        ("TRUNCATE support_audit_log", "TRUNCATE"),
    ],
)
async def test_update_delete_truncate_are_refused(
    pool: asyncpg.Pool[Any], statement: str, operation: str
) -> None:
    await _append_some(pool, 2)
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError) as refused:
            await conn.execute(statement)
        assert f"support_audit_log is append-only: {operation} is not allowed" in str(refused.value)
        assert await conn.fetchval("SELECT count(*) FROM support_audit_log") == 2
        assert (
            await conn.fetchval("SELECT count(*) FROM support_audit_log WHERE actor='mallory'") == 0
        )


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


async def test_verify_names_the_first_altered_row(
    pool: asyncpg.Pool[Any], db_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    await _append_some(pool, 6)
    monkeypatch.setenv("DATABASE_URL", db_dsn)
    assert await asyncio.to_thread(kruxt, ["audit", "verify"]) == 0
    assert "audit chain intact: 6 rows verified" in capsys.readouterr().out

    async with pool.acquire() as conn:
        bad_id = await conn.fetchval(
            "SELECT id FROM support_audit_log ORDER BY id OFFSET 3 LIMIT 1"
        )
        # As the table's owner, an attacker can switch the guard off; the chain still tells.
        await conn.execute("ALTER TABLE support_audit_log DISABLE TRIGGER USER")
        await conn.execute(
            "UPDATE support_audit_log SET details = '{\"i\": 99}' WHERE id = $1", bad_id
        )
        await conn.execute("ALTER TABLE support_audit_log ENABLE TRIGGER USER")
        result = await audit.verify(conn)
    assert result.first_bad_id == bad_id

    assert await asyncio.to_thread(kruxt, ["audit", "verify"]) == 1
    err = capsys.readouterr().err
    assert f"audit chain BROKEN at row {bad_id}" in err


async def test_verify_notices_a_deleted_row(pool: asyncpg.Pool[Any]) -> None:
    await _append_some(pool, 4)
    async with pool.acquire() as conn:
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM support_audit_log ORDER BY id")]
        await conn.execute("ALTER TABLE support_audit_log DISABLE TRIGGER USER")
        await conn.execute("DELETE FROM support_audit_log WHERE id = $1", ids[1])
        await conn.execute("ALTER TABLE support_audit_log ENABLE TRIGGER USER")
        result = await audit.verify(conn)
    assert result.first_bad_id == ids[2]
    assert result.problem is not None and "prev_hash" in result.problem
