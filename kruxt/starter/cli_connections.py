"""What a one-shot ``kruxt`` command connects to: the builders of :mod:`kruxt.bootstrap`, each
part connected on first use and closed after the command.

A command connects only what it uses, so ``kruxt ticket list`` reads PostgreSQL while Temporal
is down and ``kruxt ticket resolve`` signals Temporal without a database; and it loads only what
it uses: Temporal's SDK and the composition root come with the first client.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import asyncpg

from kruxt.adapters.postgres.pool import connect, create_pool
from kruxt.starter.cli import CliError

if TYPE_CHECKING:
    from temporalio.client import Client

    from kruxt.adapters.approvers import ApproverDirectory
    from kruxt.adapters.settings import Settings

__all__ = ["UNREACHABLE_POSTGRES", "Command", "Connections", "connect_postgres", "connected"]

UNREACHABLE_POSTGRES = (
    "cannot reach PostgreSQL: {exc}\n  is the stack running? start it with `make run`, "
    "or set DATABASE_URL"
)
# How long `ticket show` waits for Temporal's port before showing the stored ticket alone.
PROBE_TIMEOUT = 1.0


class Connections:
    """The composition root of one-shot commands (the CLI)."""

    def __init__(self, settings: Settings, *, pool_size: int = 2) -> None:
        self.settings = settings
        self._pool_size = pool_size
        self._client: Client | None = None
        self._pool: asyncpg.Pool[Any] | None = None

    async def client(self) -> Client:
        """The Temporal client, its payloads encrypted with the settings' key."""
        if self._client is None:
            from kruxt.bootstrap import temporal_from

            self._client = await temporal_from(self.settings)
        return self._client

    async def temporal_listens(self) -> bool:
        """Whether anything accepts connections at TEMPORAL_ADDRESS.

        A command that can do without Temporal asks first: when nothing is there, it never
        loads the SDK (most of its start-up) only to be told so.
        """
        host, _, port = self.settings.temporal_address.rpartition(":")
        if not host or not port.isdigit():
            return True  # not host:port: the SDK judges it, and says what is wrong
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host.strip("[]"), int(port)), PROBE_TIMEOUT
            )
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    async def pool(self) -> asyncpg.Pool[Any]:
        """A small pool on DATABASE_URL."""
        if self._pool is None:
            dsn = self.settings.require_database_url()
            with _reaching_postgres():
                self._pool = await create_pool(dsn, max_size=self._pool_size)
        return self._pool

    def approvers(self) -> ApproverDirectory:
        """The approvers directory of the settings."""
        from kruxt.bootstrap import approvers_from

        return approvers_from(self.settings)

    async def close(self) -> None:
        """Close the pool, if a command opened it (the Temporal client needs no closing)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def __aenter__(self) -> Connections:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def connect_postgres(dsn: str) -> asyncpg.Connection[Any]:
    """One connection on ``dsn`` (migrations), unreachable said as such."""
    with _reaching_postgres():
        return await connect(dsn)


@contextlib.contextmanager
def _reaching_postgres() -> Iterator[None]:
    """A database that cannot be reached is said so at the one place where that is known
    (connecting), not guessed from any OSError later."""
    try:
        yield
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.InvalidCatalogNameError) as exc:
        raise CliError(UNREACHABLE_POSTGRES.format(exc=exc)) from exc


Command = Callable[[argparse.Namespace, Connections], Awaitable[int]]
"""A command's work, on the connections made for it."""


async def connected(command: Command, args: argparse.Namespace, settings: Settings) -> int:
    """Run ``command`` with what it connects to, each part opened on first use, then closed."""
    async with Connections(settings) as parts:
        return await command(args, parts)
