"""The composition root: ``bootstrap(settings, **overrides)`` builds each adapter once.

Real parts throughout: the embedded Postgres and the Temporal dev server of conftest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.client import Client

from kruxt.adapters.app_db import install_app_schema
from kruxt.adapters.postgres.pool import connect
from kruxt.adapters.settings import ConfigurationError, Settings
from kruxt.bootstrap import bootstrap

PAYLOAD_KEY = "ab" * 32


def settings_of(tmp_path: Path, **values: str) -> Settings:
    return Settings(KRUXT_PAYLOAD_KEY=PAYLOAD_KEY, KRUXT_HOME=str(tmp_path), **values)  # type: ignore[arg-type]


async def test_the_worker_sends_every_mail_through_one_mailer(
    runtime_dsn: str, dev_client: Client, tmp_path: Path
) -> None:
    """Approval mail, pages and SLA alerts share the one mailer (the worker built two)."""
    settings = settings_of(tmp_path, DATABASE_URL=runtime_dsn, KRUXT_LINK_SECRET="s" * 32)
    boot = await bootstrap(settings, worker=True, client=dev_client)
    try:
        out = boot.outside
        assert out.email is not None and out.mailer is not None
        assert out.email.mailer is out.mailer
        assert out.mailer is boot.mailer
        assert out.approvers is boot.approvers and out.escalation is boot.escalation
    finally:
        await boot.close()


async def test_only_the_worker_holds_the_kruxt_app_database(
    db_dsn: str, runtime_dsn: str, dev_client: Client, tmp_path: Path
) -> None:
    """The API's bootstrap never connects to the KRUXT app (its credentials stay with the
    worker), nor builds a mailer it would not use."""
    conn = await connect(db_dsn)
    try:
        await install_app_schema(conn, with_demo_data=False)
    finally:
        await conn.close()
    settings = settings_of(tmp_path, DATABASE_URL=runtime_dsn, APP_DATABASE_URL=db_dsn)
    api = await bootstrap(settings, client=dev_client)
    try:
        assert api.app_pool is None and api.outside.app is None
        assert api.mailer is None
    finally:
        await api.close()
    worker = await bootstrap(settings, worker=True, client=dev_client)
    try:
        assert worker.app_pool is not None and worker.outside.app is not None
        assert await worker.app_pool.fetchval("SELECT 1") == 1
    finally:
        await worker.close()
    assert worker.app_pool.is_closing()


async def test_close_closes_what_bootstrap_opened_and_nothing_passed_in(
    pool: asyncpg.Pool[Any], runtime_dsn: str, dev_client: Client, tmp_path: Path
) -> None:
    settings = settings_of(tmp_path, DATABASE_URL=runtime_dsn)
    given = await bootstrap(settings, client=dev_client, pool=pool)
    await given.close()
    assert await pool.fetchval("SELECT 1") == 1
    opened = await bootstrap(settings, client=dev_client)
    assert await opened.pool.fetchval("SELECT 1") == 1
    await opened.close()
    assert opened.pool.is_closing()


async def test_close_closes_the_llm_clients_the_worker_built(
    runtime_dsn: str, dev_client: Client, tmp_path: Path
) -> None:
    """With OPENAI_API_KEY the worker builds the triager, the reply writer and the prevention
    drafter; close() closes their HTTP clients (left open, one is closed by the garbage
    collector on whatever event loop runs then)."""
    settings = settings_of(tmp_path, DATABASE_URL=runtime_dsn, OPENAI_API_KEY="sk-test")
    boot = await bootstrap(settings, worker=True, client=dev_client)
    out = boot.outside
    models = [out.triager, out.reply_writer, out.prevention_drafter]
    assert boot.owned_models == models
    clients = [m._client for m in boot.owned_models]
    assert not any(c.is_closed() for c in clients)
    await boot.close()
    assert all(c.is_closed() for c in clients)


async def test_a_bad_setting_fails_before_any_connection(tmp_path: Path) -> None:
    """Nothing listens on port 1: a connection attempt would fail differently, and later."""
    settings = settings_of(
        tmp_path,
        DATABASE_URL="postgresql://nobody@127.0.0.1:1/none",
        TEMPORAL_ADDRESS="127.0.0.1:1",
        SLACK_BOT_TOKEN="xoxb-test",
    )
    with pytest.raises(ConfigurationError, match="SLACK_APPROVAL_CHANNEL"):
        await bootstrap(settings)


async def test_an_unknown_override_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="mailers"):
        await bootstrap(settings_of(tmp_path), mailers=[])
