"""Small helpers for tests (not fixtures)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from kruxt.models.enums import Channel
from kruxt.models.tickets import Requester, TicketIntake, ticket_id_for

T = TypeVar("T")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def intake(
    *,
    subject: str = "Cannot log in",
    body: str = "My account says it is locked after I mistyped my password.",
    external_id: str | None = None,
    channel: Channel = Channel.IN_APP,
    name: str = "Ana Lima",
    email: str = "ana@example.com",
) -> TicketIntake:
    """A ticket as the intake would hand it to the workflow."""
    import uuid

    ext = external_id or uuid.uuid4().hex
    return TicketIntake(
        ticket_id=ticket_id_for(channel, ext),
        channel=channel,
        external_id=ext,
        requester=Requester(id="user-1", email=email, name=name),
        subject=subject,
        body=body,
        received_at=datetime.now(UTC),
    )


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float = 30.0, interval: float = 0.2
) -> T:
    """Poll until ``probe`` returns something truthy; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)
