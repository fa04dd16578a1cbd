"""Connection pools with the codecs the repositories rely on."""

from __future__ import annotations

import json
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# What repositories accept: a plain connection or one borrowed from a pool.
Conn: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"


async def _init_connection(conn: asyncpg.Connection[Any]) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def _keep_session(conn: asyncpg.Connection[Any]) -> None:
    """The pool's reset on release: nothing beyond asyncpg's own, which rolls back a
    transaction left open and drops listeners.

    asyncpg's default reset (``RESET ALL``, ``UNLISTEN *``, ``CLOSE ALL``, advisory unlock) is
    one more round trip on every release, and would drop the role each time. Nothing here
    keeps session state: settings are ``SET LOCAL``, advisory locks are ``_xact_``, cursors
    live in their transaction (``tests/test_pool.py`` holds the sources to that).
    """


async def create_pool(
    dsn: str, *, max_size: int = 10, role: str | None = None
) -> asyncpg.Pool[Any]:
    """Open a pool whose connections decode json/jsonb as Python objects.

    With ``role``, each session runs ``SET ROLE`` once, when it opens: the login may hold more
    rights (in `kruxt dev` it is the superuser) but the sessions act with that role's only.
    """

    async def init(conn: asyncpg.Connection[Any]) -> None:
        await _init_connection(conn)
        if role is not None:
            await conn.execute(f'SET ROLE "{role}"')

    pool = await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=max_size,
        init=init,
        reset=_keep_session,
        command_timeout=60,
    )
    assert pool is not None
    return pool


async def connect(dsn: str) -> asyncpg.Connection[Any]:
    """Open one connection with the same codecs as the pool's."""
    conn: asyncpg.Connection[Any] = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn
