"""Where a row was posted in Slack: the ``slack_channel``/``slack_ts`` columns that approval
requests and incidents both carry."""

from __future__ import annotations

import uuid
from typing import Any, Literal

import asyncpg

# The tables with those columns; a name is put into the SQL, so the type admits only these.
SlackPostedTable = Literal["support_approvals", "support_incidents"]


async def slack_message(
    pool: asyncpg.Pool[Any], table: SlackPostedTable, row_id: uuid.UUID
) -> tuple[str, str] | None:
    """The Slack channel and message ts of row ``row_id`` of ``table``, if it was posted."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            f"SELECT slack_channel, slack_ts FROM {table} WHERE id = $1", row_id
        )
    if row is None or row["slack_ts"] is None:
        return None
    return row["slack_channel"], row["slack_ts"]
