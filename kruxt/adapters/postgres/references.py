"""Ids written short: the 8-character reference customers are given (``C8AC88BA``) or any
longer start of a UUID, looked up among tickets, approvals, playbook runs or incidents."""

from __future__ import annotations

import re
import uuid
from enum import StrEnum
from typing import Any

import asyncpg

__all__ = ["MIN_PREFIX", "Kind", "ids_starting_with", "parse_prefix"]

# Shorter than this matches too much to be a reference anyone was given.
MIN_PREFIX = 4
_HEX = re.compile(r"[0-9a-f]{1,32}")


class Kind(StrEnum):
    """What an id names; each kind is one table, named here and nowhere in a query's input."""

    TICKET = "ticket"
    APPROVAL = "approval"
    RUN = "playbook run"
    INCIDENT = "incident"


_TABLES = {
    Kind.TICKET: "support_tickets",
    Kind.APPROVAL: "support_approvals",
    Kind.RUN: "support_playbook_runs",
    Kind.INCIDENT: "support_incidents",
}


def parse_prefix(raw: str) -> str | None:
    """The hex digits of a reference (case and dashes ignored), or None if it is not one."""
    digits = raw.strip().lower().replace("-", "")
    if len(digits) < MIN_PREFIX or _HEX.fullmatch(digits) is None:
        return None
    return digits


async def ids_starting_with(
    pool: asyncpg.Pool[Any], kind: Kind, digits: str, *, limit: int = 10
) -> list[uuid.UUID]:
    """The ids of ``kind`` whose hex digits start with ``digits`` (from :func:`parse_prefix`),
    at most ``limit``, in order; a range scan of the primary key, whatever the table's size."""
    low = uuid.UUID(digits.ljust(32, "0"))
    high = uuid.UUID(digits.ljust(32, "f"))
    rows = await pool.fetch(
        f"SELECT id FROM {_TABLES[kind]} WHERE id BETWEEN $1 AND $2 ORDER BY id LIMIT $3",
        low,
        high,
        limit,
    )
    return [row["id"] for row in rows]
