"""The connection pool (``kruxt.adapters.postgres.pool``): a session keeps its role from one
borrower to the next, a transaction left open does not, and no code keeps session state that
the pool's release, which resets nothing of the session, would hand on."""

from __future__ import annotations

import re
from pathlib import Path

from kruxt.adapters.app_db import SUPPORT_ROLE, KruxtApp
from tests.support import pool_on

ROOT = Path(__file__).resolve().parents[1]


async def test_a_session_keeps_its_role_across_borrowers(db_dsn: str, app: KruxtApp) -> None:
    async with pool_on(db_dsn, max_size=1, role=SUPPORT_ROLE) as pool:
        for _ in range(3):
            async with pool.acquire() as conn:
                assert await conn.fetchval("SELECT current_user") == SUPPORT_ROLE
        async with pool.acquire() as conn:
            backend = await conn.fetchval("SELECT pg_backend_pid()")
        async with pool.acquire() as conn:  # the same session: the role was set once
            assert await conn.fetchval("SELECT pg_backend_pid()") == backend


async def test_a_transaction_left_open_is_rolled_back_on_release(db_dsn: str) -> None:
    async with pool_on(db_dsn, max_size=1) as pool:
        async with pool.acquire() as conn:
            await conn.execute("CREATE TABLE pool_probe (n int)")
            await conn.execute("BEGIN")
            await conn.execute("INSERT INTO pool_probe VALUES (1)")
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT count(*) FROM pool_probe") == 0


# Statements whose effect outlives their transaction. Settings go in SET LOCAL, advisory locks
# are the _xact_ kind; the migrator's session lock is on a connection of its own, unpooled.
_SESSION_STATE = re.compile(
    r"\bSET\s+(SESSION\s+)?(ROLE|SESSION\s+AUTHORIZATION|search_path|statement_timeout|"
    r"lock_timeout|idle_in_transaction_session_timeout|work_mem|TIME\s+ZONE|timezone|"
    r"application_name)\b|(?-i:\b(UN)?LISTEN\s)|pg_(try_)?advisory_lock\(|set_config\(|WITH\s+HOLD",
    re.IGNORECASE,
)
_ALLOWED = {
    "kruxt/adapters/postgres/pool.py": "the role, set once per session on purpose",
    "kruxt/adapters/postgres/migrations.py": "its own connection, not a pool's",
}


def test_no_code_keeps_session_state_on_pooled_connections() -> None:
    found = []
    for path in sorted((ROOT / "kruxt").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        if name in _ALLOWED:
            continue
        found += [f"{name}: {m.group(0)}" for m in _SESSION_STATE.finditer(path.read_text())]
    assert found == []


def test_the_guard_finds_what_it_looks_for() -> None:
    samples = [
        "SET statement_timeout = 0",
        "set search_path to x",
        "LISTEN tickets",
        "SELECT pg_advisory_lock(1)",
        "SELECT set_config('a', 'b', false)",
    ]
    assert all(_SESSION_STATE.search(s) for s in samples)
    assert not _SESSION_STATE.search("UPDATE t SET status = 'x'; SET LOCAL statement_timeout = 1")
    assert not _SESSION_STATE.search("SELECT pg_advisory_xact_lock(1)")
