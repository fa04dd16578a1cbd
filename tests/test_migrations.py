"""Numbered migrations apply once each, under an advisory lock."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kruxt.adapters.app_db import APP_MIGRATIONS
from kruxt.adapters.embedded_postgres import with_database
from kruxt.adapters.postgres import migrations
from kruxt.adapters.postgres.pool import connect
from kruxt.starter.cli import main as kruxt
from tests.conftest import MIGRATIONS, RUNTIME_PASSWORD, runtime


@pytest.fixture
async def empty_db(pg_admin_dsn: str) -> AsyncIterator[str]:
    name = f"kruxt_empty_{uuid.uuid4().hex[:10]}"
    admin = await connect(pg_admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(pg_admin_dsn, name)
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def test_applies_each_migration_once_even_when_racing(empty_db: str) -> None:
    conns = [await connect(empty_db) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrations.apply(c, MIGRATIONS) for c in conns))
        versions = await conns[0].fetch("SELECT version FROM schema_migrations ORDER BY version")
        again = await migrations.apply(conns[0], MIGRATIONS)
    finally:
        for c in conns:
            await c.close()
    expected = [m.version for m in migrations.discover(MIGRATIONS)]
    assert sorted(m.version for batch in results for m in batch) == expected
    assert [r["version"] for r in versions] == expected
    assert again == []


async def test_cli_migrate_then_up_to_date(
    empty_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_db)
    assert await asyncio.to_thread(kruxt, ["migrate"]) == 0
    assert "applied 001_support_tickets" in capsys.readouterr().out
    assert await asyncio.to_thread(kruxt, ["migrate"]) == 0
    assert "schema is up to date" in capsys.readouterr().out


async def test_an_edited_applied_migration_is_refused(empty_db: str, tmp_path: Path) -> None:
    (tmp_path / "001_first.sql").write_text("CREATE TABLE t1 (id int);")
    conn = await connect(empty_db)
    try:
        await migrations.apply(conn, tmp_path)
        (tmp_path / "001_first.sql").write_text("CREATE TABLE t1 (id bigint);")
        with pytest.raises(migrations.MigrationError, match="was edited after it was applied"):
            await migrations.apply(conn, tmp_path)
    finally:
        await conn.close()


async def test_a_failing_migration_leaves_nothing_half_applied(
    empty_db: str, tmp_path: Path
) -> None:
    (tmp_path / "001_ok.sql").write_text("CREATE TABLE ok (id int);")
    (tmp_path / "002_bad.sql").write_text("CREATE TABLE bad (id int); SELECT no_such_fn();")
    conn = await connect(empty_db)
    try:
        with pytest.raises(Exception, match="no_such_fn"):
            await migrations.apply(conn, tmp_path)
        assert await conn.fetchval("SELECT to_regclass('bad')") is None
        assert await conn.fetchval("SELECT max(version) FROM schema_migrations") == 1
    finally:
        await conn.close()


def test_badly_named_files_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "first.sql").write_text("SELECT 1;")
    with pytest.raises(migrations.MigrationError, match=r"NNN_name\.sql"):
        migrations.discover(tmp_path)


async def test_cli_migrate_app_installs_the_app_side_once_without_demo_data(
    empty_db: str,
    db_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_dsn)
    monkeypatch.setenv("APP_DATABASE_URL", empty_db)
    assert await asyncio.to_thread(kruxt, ["migrate", "--app"]) == 0
    applied = len(migrations.discover(APP_MIGRATIONS))  # every file of sql/app/, however many
    assert f"app: {applied} migrations applied" in capsys.readouterr().out
    assert await asyncio.to_thread(kruxt, ["migrate", "--app"]) == 0
    assert "app: up to date" in capsys.readouterr().out
    conn = await connect(empty_db)
    try:
        functions = await conn.fetchval(
            "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'kruxt_admin'"
        )
        users = await conn.fetchval("SELECT count(*) FROM kruxt_app.users")
    finally:
        await conn.close()
    assert functions > 20
    assert users == 0  # no demo data outside `kruxt dev`


async def test_migrate_app_without_an_app_database_is_a_usage_error(
    db_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_dsn)
    monkeypatch.delenv("APP_DATABASE_URL", raising=False)
    monkeypatch.setenv("KRUXT_HOME", "/nonexistent-kruxt-home")
    assert await asyncio.to_thread(kruxt, ["migrate", "--app"]) == 2
    assert "--app needs APP_DATABASE_URL" in capsys.readouterr().err


async def test_cli_migrates_as_the_owner_and_the_runtime_role_cannot(
    empty_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", runtime(empty_db))
    # As the runtime role (no CREATE on the schema, no ownership) migrating is refused...
    assert await asyncio.to_thread(kruxt, ["migrate"]) == 1
    assert "set KRUXT_MIGRATE_DATABASE_URL" in capsys.readouterr().err
    # ...and works through the owner's URL, the runtime role's login set up on the way.
    monkeypatch.setenv("KRUXT_MIGRATE_DATABASE_URL", empty_db)
    monkeypatch.setenv("KRUXT_RUNTIME_DB_PASSWORD", RUNTIME_PASSWORD)
    assert await asyncio.to_thread(kruxt, ["migrate"]) == 0
    assert "applied 010_runtime_role_keyed_audit" in capsys.readouterr().out
    conn = await connect(runtime(empty_db))
    try:
        assert await conn.fetchval("SELECT current_user") == migrations.RUNTIME_ROLE
        assert await conn.fetchval("SELECT count(*) FROM support_tickets") == 0
    finally:
        await conn.close()


_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
# What the runtime role may do, per table; every other table: read and write rows, no more.
_NARROWER = {
    "support_audit_log": {"SELECT", "INSERT"},
    "schema_migrations": {"SELECT"},
}
_READ_WRITE = {"SELECT", "INSERT", "UPDATE", "DELETE"}


async def _runtime_privileges(owner_dsn: str) -> dict[str, set[str]]:
    conn = await connect(owner_dsn)
    try:
        rows = await conn.fetch(
            "SELECT c.relname, p.privilege FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public' "
            "CROSS JOIN unnest($1::text[]) AS p(privilege) "
            "WHERE c.relkind IN ('r', 'p') "
            "AND has_table_privilege($2, c.oid, p.privilege)",
            list(_PRIVILEGES),
            migrations.RUNTIME_ROLE,
        )
        tables = await conn.fetch(
            "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
        )
    finally:
        await conn.close()
    found: dict[str, set[str]] = {r["relname"]: set() for r in tables}
    for row in rows:
        found[row["relname"]].add(row["privilege"])
    return found


async def test_the_runtime_role_has_exactly_its_grants_on_every_table(db_dsn: str) -> None:
    granted = await _runtime_privileges(db_dsn)
    assert "support_tickets" in granted
    wrong = {
        table: privileges
        for table, privileges in granted.items()
        if privileges != _NARROWER.get(table, _READ_WRITE)
    }
    assert wrong == {}, f"tables whose runtime grants are off (fix in a new migration): {wrong}"


async def test_tables_of_later_migrations_are_granted_too(db_dsn: str) -> None:
    conn = await connect(db_dsn)  # the role that ran the migrations, as a later one would
    try:
        await conn.execute("CREATE TABLE later_feature (id bigserial PRIMARY KEY, note text)")
    finally:
        await conn.close()
    assert (await _runtime_privileges(db_dsn))["later_feature"] == _READ_WRITE
    runtime_conn = await connect(runtime(db_dsn))
    try:  # its sequence too
        await runtime_conn.execute("INSERT INTO later_feature (note) VALUES ('x')")
    finally:
        await runtime_conn.close()
