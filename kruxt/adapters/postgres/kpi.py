"""KPI events: the facts SLA and quality figures are computed from."""

from __future__ import annotations

import uuid
from typing import Any

from kruxt.adapters.postgres.pool import Conn


async def emit(
    conn: Conn,
    *,
    event: str,
    ticket_id: uuid.UUID | None,
    idempotency_key: str,
    priority: str | None = None,
    category: str | None = None,
    value_seconds: float | None = None,
    details: dict[str, Any] | None = None,
) -> bool:
    """Record one KPI event once per idempotency key; False when it was recorded before."""
    status = await conn.execute(
        """
        INSERT INTO support_kpi_events (ticket_id, event, priority, category, value_seconds,
                                        details, idempotency_key)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (idempotency_key) DO NOTHING
        """,
        ticket_id,
        event,
        priority,
        category,
        value_seconds,
        details or {},
        idempotency_key,
    )
    return bool(status.endswith(" 1"))
