"""Small helpers for tests (not fixtures)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from kruxt.adapters.temporal_dev_server import TemporalDevServer
from kruxt.models.enums import Channel
from kruxt.models.tickets import Requester, TicketIntake, ticket_id_for

T = TypeVar("T")


def bound_socket() -> socket.socket:
    """A TCP socket bound to a port the OS chose on 127.0.0.1, for a server in this process.

    Hand it to the server (``uvicorn.Server(config).serve(sockets=[sock])``) and read the
    port from ``sock.getsockname()[1]``: the port is held from the moment it is chosen, so no
    other process can take it before the server listens.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


# Held open until the process exits: a port handed out by refusing_port stays refused.
_REFUSING: list[socket.socket] = []


def refusing_port() -> int:
    """A port on 127.0.0.1 that refuses every connection, for an address that must not answer.

    The socket is bound and never listens, so the kernel refuses connections to it; it stays
    open for the rest of the run, so no other process can bind the port and start answering.
    """
    sock = bound_socket()
    _REFUSING.append(sock)
    port: int = sock.getsockname()[1]
    return port


async def start_temporal_dev_server() -> TemporalDevServer:
    """A headless Temporal dev server on a port it chose and is known to own (see ``launch``)."""
    server = TemporalDevServer(port=0, ui_port=None)
    await server.launch()
    return server


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
