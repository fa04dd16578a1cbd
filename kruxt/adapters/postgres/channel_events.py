"""What the customer channels (Zendesk, Intercom) have handled already, by their own keys.

A webhook event is claimed under its keys (the event id, the comment id) in the transaction
that hands it on: a redelivery, or a concurrent duplicate, finds the keys taken and changes
nothing; a hand-off that fails rolls the claim back, so the channel's retry is handled. The
same table remembers what the autopilot delivered (a comment it posted comes back as an
event and must be known as its own). Only verified requests get here.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from kruxt.models.enums import Channel

__all__ = ["ChannelEventLog"]

# A chain longer than this is not followed further (each link is a customer's late message).
_MAX_CHAIN = 100
_FIRST_OF_CHAIN = """
WITH RECURSIVE chain AS (
    SELECT external_id, previous_ticket_id, 0 AS depth FROM support_tickets WHERE id = $1
    UNION ALL
    SELECT t.external_id, t.previous_ticket_id, c.depth + 1
    FROM support_tickets t JOIN chain c ON t.id = c.previous_ticket_id
    WHERE c.depth < $2
)
SELECT external_id FROM chain ORDER BY depth DESC LIMIT 1
"""

_INSERT = """
INSERT INTO support_channel_events (channel, event_key, ticket_id, detail)
SELECT $1, k, $3, $4 FROM unnest($2::text[]) AS k
ON CONFLICT (channel, event_key) DO NOTHING
RETURNING event_key
"""


class ChannelEventLog:
    """Keys each channel has seen (``support_channel_events``, sql/012)."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool

    @asynccontextmanager
    async def claim(
        self,
        channel: Channel,
        keys: Sequence[str],
        *,
        ticket_id: uuid.UUID | None = None,
        detail: str | None = None,
    ) -> AsyncIterator[bool]:
        """Yield True when none of ``keys`` was seen; the claim commits if the block succeeds.

        A duplicate (any key seen) yields False and writes nothing. Concurrent claims of the
        same key wait for the first to commit or roll back, so exactly one handles the event.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            new = await conn.fetch(_INSERT, channel.value, list(keys), ticket_id, detail)
            if len(new) < len(set(keys)):
                # Some key was seen: undo the keys this attempt did insert, hand nothing on.
                await conn.execute(
                    "DELETE FROM support_channel_events WHERE channel = $1 "
                    "AND event_key = ANY($2::text[])",
                    channel.value,
                    [r["event_key"] for r in new],
                )
                yield False
                return
            yield True

    async def remember(
        self,
        channel: Channel,
        keys: Sequence[str],
        *,
        ticket_id: uuid.UUID | None = None,
        detail: str | None = None,
    ) -> None:
        """Record ``keys`` as handled (a key already there stays as it was)."""
        async with self._pool.acquire() as conn:
            await conn.fetch(_INSERT, channel.value, list(keys), ticket_id, detail)

    async def seen(self, channel: Channel, key: str) -> str | None:
        """The detail recorded with ``key`` ("" when none), or None when it was never seen."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT detail FROM support_channel_events WHERE channel = $1 AND event_key = $2",
                channel.value,
                key,
            )
        return None if row is None else (row["detail"] or "")

    async def external_id(self, ticket_id: uuid.UUID) -> str | None:
        """The channel's own id of a ticket, or None when it is not stored.

        A ticket opened by a message after its predecessor's reopen window (issue 14) has an
        id of ours (``<old>~<comment>``) the channel does not know: its replies go to the
        channel's ticket of the first ticket of its chain.
        """
        async with self._pool.acquire() as conn:
            value: str | None = await conn.fetchval(_FIRST_OF_CHAIN, ticket_id, _MAX_CHAIN)
        return value
