"""What the console's pages and its JSON API need, built by the entrypoint (or a test)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kruxt.starter.console.actions import ConsoleActions
    from kruxt.starter.console.auth import ConsoleAuth
    from kruxt.starter.console.queries import ConsoleQueries

__all__ = ["ConsoleContext"]


@dataclass
class ConsoleContext:
    """The console's three parts: who is signed in (``auth``), what it shows (``queries``) and
    what it does (``actions``, through the tickets' workflows: the console keeps no state).

    ``public_url`` is where staff reach the API (``KRUXT_PUBLIC_URL``): the sign-in links and
    ``kruxt dev`` name the console under it.
    """

    auth: ConsoleAuth
    queries: ConsoleQueries
    actions: ConsoleActions
    public_url: str

    @property
    def console_url(self) -> str:
        """The console's front page: the queue."""
        return f"{self.public_url.rstrip('/')}/console"
