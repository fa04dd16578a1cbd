"""Numbered plain-SQL migrations, applied once each under an advisory lock."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

# The role the API and workers connect as (sql/010 grants it what they need, no ownership).
RUNTIME_ROLE = "kruxt_runtime"
# Any constant works as long as every migrator uses the same one.
MIGRATION_LOCK_KEY = 0x6B7275787431  # "kruxt1"
_FILENAME = re.compile(r"^(\d{3,})_([a-z0-9_]+)\.sql$")
_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Migration:
    """One file of ``sql/``."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file's text, to notice an applied migration that was edited."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(Exception):
    """A migration file is malformed, or an applied one was changed afterwards."""


def discover(directory: Path) -> list[Migration]:
    """The migrations of a directory, in version order; other files are ignored."""
    if not directory.is_dir():
        raise MigrationError(f"migrations directory not found: {directory}")
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILENAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{path.name}: version {version} is used twice")
        found[version] = Migration(version, match.group(2), path.read_text())
    return [found[v] for v in sorted(found)]


async def apply(
    conn: asyncpg.Connection[Any], directory: Path, *, table: str = "schema_migrations"
) -> list[Migration]:
    """Apply the migrations not applied yet; return those applied now.

    A session-level advisory lock makes concurrent migrators (two workers starting at once)
    take turns; each migration runs in its own transaction with its bookkeeping row.
    ``table`` names the bookkeeping table, so two migration sets (the support schema and the
    reference app schema) can share one database without clashing.
    """
    if not _TABLE_NAME.fullmatch(table):
        raise MigrationError(f"invalid migrations table name: {table!r}")
    migrations = discover(directory)
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await conn.execute(
            f"""
            CREATE TABLE IF NOT EXISTS {table} (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        rows = await conn.fetch(f"SELECT version, name, checksum FROM {table}")
        applied = {row["version"]: row for row in rows}
        done: list[Migration] = []
        for migration in migrations:
            row = applied.get(migration.version)
            if row is not None:
                if row["checksum"] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:03d}_{migration.name} was edited after "
                        "it was applied; add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    f"INSERT INTO {table} (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            done.append(migration)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)


async def ensure_runtime_role(conn: asyncpg.Connection[Any], password: str | None = None) -> None:
    """Create the runtime role able to log in (or let an existing one), before migrating.

    Needs CREATEROLE (the embedded superuser of `kruxt dev`, the tests). Roles are
    cluster-wide, so concurrent callers race: a duplicate counts as done.
    """
    # CREATE/ALTER ROLE take no bind parameters; quote_literal does the quoting server-side.
    secret = (
        await conn.fetchval("SELECT 'PASSWORD ' || quote_literal($1::text)", password)
        if password
        else ""
    )
    exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", RUNTIME_ROLE)
    if not exists:
        try:
            await conn.execute(f"CREATE ROLE {RUNTIME_ROLE} LOGIN {secret}")
        except (asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
            pass
        else:
            return
    await conn.execute(f"ALTER ROLE {RUNTIME_ROLE} LOGIN {secret}")
