"""Replay: today's workflow code must reproduce recorded histories exactly.

``tests/histories/*.json`` were recorded from the real workflow (``python -m
tests.record_histories``); a change that would break tickets already running fails here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from kruxt.adapters.app_db import SUPPORT_ROLE, KruxtApp, install_app_schema
from kruxt.adapters.postgres.pool import connect, create_pool
from kruxt.adapters.temporal_client import data_converter
from kruxt.workers.composition import WORKFLOWS, Outside, build_worker, workflow_runner
from tests.conftest import run_payload_codec
from tests.scenarios import APPROVERS, SCENARIOS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def _replayer() -> Replayer:
    # The workers' converter: recorded histories (plain, from before payload encryption) and
    # fresh ones (encrypted) both replay with it.
    return Replayer(
        workflows=list(WORKFLOWS),
        data_converter=data_converter(run_payload_codec()),
        workflow_runner=workflow_runner(),
    )


def test_recorded_histories_exist() -> None:
    recorded = {p.stem.split("__")[0] for p in HISTORIES}
    assert recorded >= set(SCENARIOS), f"record {set(SCENARIOS) - recorded}"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(f"ticket-{path.stem}", path.read_text())
    # Histories are replayed with today's code: old ones prove running tickets survive it.
    result = await _replayer().replay_workflow(history)
    assert result.replay_failure is None


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_fresh_history_replays(
    name: str,
    ts_env: WorkflowEnvironment,
    db_dsn: str,
    pool: asyncpg.Pool[Any],
    task_queue: str,
) -> None:
    conn = await connect(db_dsn)
    try:
        await install_app_schema(conn, with_demo_data=True)
    finally:
        await conn.close()
    app_pool = await create_pool(db_dsn, max_size=2, role=SUPPORT_ROLE)
    try:
        async with build_worker(
            ts_env.client,
            task_queue=task_queue,
            pool=pool,
            outside=Outside(app=KruxtApp(app_pool), approvers=APPROVERS),
        ):
            handle = await SCENARIOS[name](ts_env.client, task_queue)
    finally:
        await app_pool.close()
    history = await handle.fetch_history()
    result = await _replayer().replay_workflow(history)
    assert result.replay_failure is None
