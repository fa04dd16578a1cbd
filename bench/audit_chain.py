"""The hash-chained audit log against a plain append-only table, same server, same run.

The chain serializes every insert on one advisory lock: one round trip takes it and reads the
head (``support_audit_reserve``, sql/022), Python HMACs the row, a second inserts it, and a
trigger checks the row extends the head; the lock is held to the commit. This shows what that
costs relative to an identical table without any of it, with 4 concurrent writers, both as
the runtime role the API and workers use.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from kruxt.adapters.embedded_postgres import EmbeddedPostgres, with_database, with_user
from kruxt.adapters.postgres import audit, migrations
from kruxt.adapters.postgres.pool import Conn, connect, create_pool
from kruxt.adapters.settings import PROJECT_ROOT

Writer = Callable[[Conn, int, int], Awaitable[None]]

WRITERS = 4
PER_WRITER = 250


async def _timed(pool_dsn: str, write: Writer) -> float:
    pool = await create_pool(pool_dsn, max_size=WRITERS)

    async def writer(k: int) -> None:
        async with pool.acquire() as conn:
            for i in range(PER_WRITER):
                await write(conn, k, i)

    started = time.perf_counter()
    await asyncio.gather(*(writer(k) for k in range(WRITERS)))
    elapsed = time.perf_counter() - started
    await pool.close()
    return elapsed


async def _chained(conn: Conn, k: int, i: int) -> None:
    await audit.append(conn, actor=f"w{k}", action="bench", ticket_id=None, details={"i": i})


async def _plain(conn: Conn, k: int, i: int) -> None:
    await conn.execute(
        "INSERT INTO bench_plain (actor, action, details) VALUES ($1, 'bench', $2)",
        f"w{k}",
        {"i": i},
    )


async def run() -> str:
    """Append WRITERS x PER_WRITER rows both ways; return the report line."""
    root = Path(tempfile.mkdtemp(prefix="kx-bench-"))
    server = EmbeddedPostgres(root / "pg")
    try:
        admin = server.start()
        name = f"bench_{uuid.uuid4().hex[:6]}"
        conn = await connect(admin)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        dsn = with_database(admin, name)
        conn = await connect(dsn)
        await migrations.ensure_runtime_role(conn)
        await migrations.apply(conn, PROJECT_ROOT / "sql")
        await conn.execute(
            "CREATE TABLE bench_plain (id bigserial PRIMARY KEY, occurred_at timestamptz "
            "DEFAULT now(), actor text, action text, details jsonb)"
        )
        await conn.close()
        audit.use_keyring(audit.AuditKeyring.of(secrets.token_hex(32)))
        runtime = with_user(dsn, migrations.RUNTIME_ROLE)
        baseline = await _timed(runtime, _plain)
        chained = await _timed(runtime, _chained)
        n = WRITERS * PER_WRITER
        return (
            f"audit chain: {n / chained:,.0f} appends/s vs plain insert {n / baseline:,.0f}/s "
            f"-> {chained / baseline:.2f}x the baseline's time ({WRITERS} writers)"
        )
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
