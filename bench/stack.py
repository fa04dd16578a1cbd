"""The embedded stack the end-to-end benches share: PostgreSQL (migrated, knowledge indexed,
the demo app installed), a Temporal dev server in memory, and a client of it; and what they
do on it (open tickets, wait, count).

Everything is started in this process's run and stopped at the end; nothing of a running
``kruxt dev`` is touched.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import statistics
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import psutil
from temporalio.client import Client, WorkflowHandle

from kruxt.adapters.app_db import SUPPORT_ROLE, KruxtApp, install_app_schema
from kruxt.adapters.embedded_postgres import EmbeddedPostgres, with_database
from kruxt.adapters.payload_codec import EncryptionCodec
from kruxt.adapters.postgres import audit, migrations
from kruxt.adapters.postgres.knowledge import index_knowledge
from kruxt.adapters.postgres.pool import connect, create_pool
from kruxt.adapters.settings import PROJECT_ROOT
from kruxt.adapters.temporal_client import connect as temporal_connect
from kruxt.adapters.temporal_dev_server import TemporalDevServer
from kruxt.models.enums import Channel
from kruxt.models.sla import SlaTargets
from kruxt.models.tickets import (
    Requester,
    RoutingPolicy,
    TicketIntake,
    TicketWorkflowInput,
    ticket_id_for,
)
from kruxt.starter.intake import start_options
from kruxt.starter.waiting import until_found
from kruxt.workflows.ticket import TicketWorkflow

STARTERS = 20  # concurrent start calls
Report = TypeVar("Report")


@dataclass
class Stack:
    """A running embedded stack."""

    dsn: str
    pool: asyncpg.Pool[Any]
    app: KruxtApp
    server: TemporalDevServer
    client: Client
    payload_key: str
    pgdata: Path

    def cpu_seconds(self, others: Mapping[str, int] | None = None) -> dict[str, float]:
        """CPU seconds used so far by this process (workers, load), ``others`` (name: pid),
        the dev server and PostgreSQL (its postmaster, its backends, live and reaped)."""
        assert self.server.process is not None
        # The postmaster's pid is the first line of its pid file.
        postmaster = psutil.Process(int((self.pgdata / "postmaster.pid").read_text().split()[0]))
        backends = postmaster.children(recursive=True)
        return {
            "bench process": _cpu(psutil.Process(), reaped=False),
            **{
                name: _cpu(psutil.Process(pid), reaped=False)
                for name, pid in (others or {}).items()
            },
            "Temporal server": _cpu(psutil.Process(self.server.process.pid), reaped=False),
            "PostgreSQL": _cpu(postmaster, reaped=True)
            + sum(_cpu(p, reaped=False) for p in backends),
        }


def _cpu(process: psutil.Process, *, reaped: bool) -> float:
    """A process's CPU seconds; with ``reaped``, its finished children's too."""
    try:
        times = process.cpu_times()
    except psutil.NoSuchProcess:  # a backend that ended since it was listed
        return 0.0
    own = times.user + times.system
    return own + (times.children_user + times.children_system if reaped else 0.0)


@dataclass
class Tally:
    """One side of an A/B comparison run :func:`in_turns`."""

    count: int = 0
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)

    def add(
        self, count: int, seconds: float, before: dict[str, float], after: dict[str, float]
    ) -> None:
        """One turn: ``count`` workflows in ``seconds``, the ``cpu_seconds`` around it."""
        self.count += count
        self.seconds += seconds
        for name in after:
            self.cpu[name] = self.cpu.get(name, 0.0) + after[name] - before[name]

    @property
    def rate(self) -> float:
        """Workflows per second over the turns."""
        return self.count / self.seconds

    def cpu_line(self) -> str:
        """ "name X ms" for each process: CPU per workflow over the turns."""
        return ", ".join(f"{name} {t / self.count * 1000:.1f} ms" for name, t in self.cpu.items())


async def in_turns(
    n: int, a: Callable[[int], Awaitable[None]], b: Callable[[int], Awaitable[None]]
) -> None:
    """Run the two sides of an A/B comparison in turns, half of ``n`` each time: A, B, B, A.
    The dev server slows as the workflows it holds pile up (3-4% per 150 waiting, measured),
    so a side run wholly second would pay for the first side's workflows."""
    early, late = n // 2, n - n // 2
    await a(early)
    await b(early)
    await b(late)
    await a(late)


@asynccontextmanager
async def embedded_stack(*, pool_size: int = 20) -> AsyncIterator[Stack]:
    """Start PostgreSQL and the dev server, migrate, index; stop both on exit."""
    root = Path(tempfile.mkdtemp(prefix="kx-bench-"))
    pg = EmbeddedPostgres(root / "pg")
    server = TemporalDevServer(port=0, ui_port=None)
    try:
        dsn = with_database(pg.start(), "postgres")
        conn = await connect(dsn)
        await migrations.apply(conn, PROJECT_ROOT / "sql")
        await install_app_schema(conn, with_demo_data=True)
        # The demo's u-locked is locked for 30 minutes from seeding; past that its tickets
        # find nothing to fix and go to a person (the 10,000-ticket run got there at 8,875).
        await conn.execute(
            "UPDATE kruxt_app.users SET locked_until = now() + interval '2 days' "
            "WHERE id = 'u-locked'"
        )
        await conn.close()
        audit.use_keyring(audit.AuditKeyring.of(secrets.token_hex(32)))
        pool = await create_pool(dsn, max_size=pool_size)
        app_pool = await create_pool(dsn, max_size=5, role=SUPPORT_ROLE)
        await index_knowledge(pool, PROJECT_ROOT / "knowledge")
        await server.launch()
        key = secrets.token_hex(32)
        client = await temporal_connect(
            server.address, payload_codec=EncryptionCodec.from_settings_text(key)
        )
        try:
            yield Stack(dsn, pool, KruxtApp(app_pool), server, client, key, pg.pgdata)
        finally:
            await app_pool.close()
            await pool.close()
    finally:
        server.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


async def on_own_stack(measure: Callable[..., Awaitable[Report]], *args: Any) -> Report:
    """``measure(stack, *args)`` on a stack of its own."""
    async with embedded_stack() as stack:
        return await measure(stack, *args)


def in_app_ticket(
    requester_id: str, subject: str, body: str, *, account_id: str | None = None
) -> TicketIntake:
    """A new in-app ticket from Ana Lima, as ``requester_id``."""
    ext = uuid.uuid4().hex
    return TicketIntake(
        ticket_id=ticket_id_for(Channel.IN_APP, ext),
        channel=Channel.IN_APP,
        external_id=ext,
        requester=Requester(id=requester_id, email="ana@example.com", name="Ana Lima"),
        subject=subject,
        body=body,
        account_id=account_id,
        received_at=datetime.now(UTC),
    )


async def start_ticket(
    client: Client, ticket: TicketIntake, queue: str, *, sla: SlaTargets | None = None
) -> WorkflowHandle[Any, Any]:
    """Start the ticket's workflow as the intake does, with its start options (``sla``: its
    clocks' targets; None: the defaults)."""
    return await client.start_workflow(
        TicketWorkflow.run,
        TicketWorkflowInput(intake=ticket, policy=RoutingPolicy(), sla=sla or SlaTargets()),
        task_queue=queue,
        **start_options(ticket),
    )


async def bounded(
    n: int, make: Callable[[], Awaitable[WorkflowHandle[Any, Any]]]
) -> list[WorkflowHandle[Any, Any]]:
    """``n`` calls of ``make``, at most STARTERS at a time."""
    gate = asyncio.Semaphore(STARTERS)

    async def one() -> WorkflowHandle[Any, Any]:
        async with gate:
            return await make()

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def until(test: Callable[[], Awaitable[bool]], *, timeout: float) -> None:
    """Poll ``test`` every 50 ms until it holds."""

    async def held() -> bool | None:
        return True if await test() else None

    if await until_found(held, within=timeout) is None:
        raise TimeoutError(f"not done within {timeout:.0f} s")


async def start_tickets(
    stack: Stack,
    n: int,
    make: Callable[[], TicketIntake],
    queue: str,
    *,
    sla: SlaTargets | None = None,
) -> list[WorkflowHandle[Any, Any]]:
    """Start ``n`` tickets of ``make``, at most STARTERS at a time."""
    return await bounded(n, lambda: start_ticket(stack.client, make(), queue, sla=sla))


async def until_tickets(stack: Stack, status: str, n: int, *, timeout: float) -> None:
    """Wait until ``n`` tickets or more have ``status``."""

    async def enough() -> bool:
        count: int = await stack.pool.fetchval(
            "SELECT count(*) FROM support_tickets WHERE status = $1", status
        )
        return count >= n

    await until(enough, timeout=timeout)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of ``values``, interpolated."""
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[min(98, max(0, round(q) - 1))]


def verdict(ok: bool) -> str:
    """PASS or MISS, for a figure against its goal."""
    return "PASS" if ok else "MISS"
