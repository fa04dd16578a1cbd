"""Ids as people type them: a whole UUID, or its first characters (the 8-character
reference customers are given, ``C8AC88BA``), resolved to the one id they name."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from kruxt.adapters.postgres.references import Kind, ids_starting_with, parse_prefix
from kruxt.starter.cli import EXIT_USAGE, CliError

__all__ = ["Kind", "resolve_id"]

# Candidates listed when a prefix is ambiguous.
SHOWN = 10


async def resolve_id(
    raw: str, kind: Kind, pool: Callable[[], Awaitable[asyncpg.Pool[Any]]]
) -> uuid.UUID:
    """The id ``raw`` names: a whole UUID as it is, else the one id of ``kind`` starting with it.

    Raises:
        CliError: not an id (usage), no such id, or a prefix several ids start with (listed).
    """
    with contextlib.suppress(ValueError):
        return uuid.UUID(raw)
    digits = parse_prefix(raw)
    if digits is None:
        raise CliError(
            f"not a {kind} id: {raw!r} (expected a UUID or its first 8 characters)", EXIT_USAGE
        )
    found = await ids_starting_with(await pool(), kind, digits, limit=SHOWN)
    if not found:
        raise CliError(f"no {kind} {raw}")
    if len(found) > 1:
        listed = "\n".join(f"  {candidate}" for candidate in found)
        more = " (the first 10)" if len(found) == SHOWN else ""
        raise CliError(
            f"{raw} is the start of several {kind} ids{more}; give more of it:\n{listed}"
        )
    return found[0]
