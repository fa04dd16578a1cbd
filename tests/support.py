"""Small helpers for tests (not fixtures)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import psutil

from kruxt.adapters.temporal_dev_server import TemporalDevServer
from kruxt.models.enums import Channel
from kruxt.models.tickets import Requester, TicketIntake, ticket_id_for

T = TypeVar("T")


def free_port() -> int:
    """A TCP port nobody listens on right now, for a subprocess that must be told a port.

    Racy by nature: the port is released before the subprocess binds it, and anything may
    take it in between. Prefer ``bound_socket`` (a server in this process) or
    ``refusing_port`` (an address that must not answer); where a subprocess needs it, start
    it with a retry on another port, as ``start_temporal_dev_server`` does.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


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


async def start_temporal_dev_server(*, attempts: int = 5) -> TemporalDevServer:
    """A headless Temporal dev server on a port it was told and is known to own.

    The CLI cannot be handed a socket, so the port comes from ``free_port`` and can be taken
    before the server binds it: then the server exits (or another process answers), and it is
    started again on another port. Ownership is checked: the server's own process listens.
    """
    for attempt in range(1, attempts + 1):
        server = TemporalDevServer(port=free_port(), ui_port=None)
        server.start()
        try:
            await server.wait_ready()
            if _listens(server, server.port):
                return server
        except RuntimeError:  # it exited: most likely "address already in use"
            if attempt == attempts:
                raise
        server.stop()
    raise RuntimeError(f"no port for the Temporal dev server after {attempts} attempts")


def _listens(server: TemporalDevServer, port: int) -> bool:
    """True when ``server``'s process (not some other one) listens on ``port``."""
    assert server.process is not None
    try:
        connections = psutil.Process(server.process.pid).net_connections(kind="tcp")
    except psutil.NoSuchProcess:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in connections)


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
