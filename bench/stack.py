"""The embedded stack the end-to-end benches share: PostgreSQL (migrated, knowledge indexed,
the demo app installed), a Temporal dev server in memory, and a client of it.

Everything is started in this process's run and stopped at the end; nothing of a running
``kruxt dev`` is touched.
"""

from __future__ import annotations

import secrets
import shutil
import statistics
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.client import Client

from kruxt.adapters.app_db import SUPPORT_ROLE, KruxtApp, install_app_schema
from kruxt.adapters.embedded_postgres import EmbeddedPostgres, with_database
from kruxt.adapters.payload_codec import EncryptionCodec
from kruxt.adapters.postgres import audit, migrations
from kruxt.adapters.postgres.knowledge import index_knowledge
from kruxt.adapters.postgres.pool import connect, create_pool
from kruxt.adapters.settings import PROJECT_ROOT
from kruxt.adapters.temporal_client import connect as temporal_connect
from kruxt.adapters.temporal_dev_server import TemporalDevServer


@dataclass
class Stack:
    """A running embedded stack."""

    dsn: str
    pool: asyncpg.Pool[Any]
    app: KruxtApp
    server: TemporalDevServer
    client: Client
    payload_key: str


@asynccontextmanager
async def embedded_stack(*, pool_size: int = 20) -> AsyncIterator[Stack]:
    """Start PostgreSQL and the dev server, migrate, index; stop both on exit."""
    root = Path(tempfile.mkdtemp(prefix="kx-bench-"))
    pg = EmbeddedPostgres(root / "pg")
    server = TemporalDevServer(port=0, ui_port=None)
    try:
        dsn = with_database(pg.start(), "postgres")
        conn = await connect(dsn)
        await migrations.apply(conn, PROJECT_ROOT / "sql")
        await install_app_schema(conn, with_demo_data=True)
        await conn.close()
        audit.use_keyring(audit.AuditKeyring.of(secrets.token_hex(32)))
        pool = await create_pool(dsn, max_size=pool_size)
        app_pool = await create_pool(dsn, max_size=5, role=SUPPORT_ROLE)
        await index_knowledge(pool, PROJECT_ROOT / "knowledge")
        await server.launch()
        key = secrets.token_hex(32)
        client = await temporal_connect(
            server.address, payload_codec=EncryptionCodec.from_settings_text(key)
        )
        try:
            yield Stack(dsn, pool, KruxtApp(app_pool), server, client, key)
        finally:
            await app_pool.close()
            await pool.close()
    finally:
        server.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of ``values``, interpolated."""
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[min(98, max(0, round(q) - 1))]


def verdict(ok: bool) -> str:
    """PASS or MISS, for a figure against its goal."""
    return "PASS" if ok else "MISS"
