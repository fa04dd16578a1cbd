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
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from kruxt.workers.composition import WORKFLOWS, build_worker, workflow_runner
from tests.conftest import KNOWLEDGE
from tests.scenarios import SCENARIOS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def _replayer() -> Replayer:
    return Replayer(
        workflows=list(WORKFLOWS),
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),
    )


def test_recorded_histories_exist() -> None:
    assert {p.stem.split("__")[0] for p in HISTORIES} >= set(SCENARIOS)


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(f"ticket-{path.stem}", path.read_text())
    # Histories are replayed with today's code: old ones prove running tickets survive it.
    result = await _replayer().replay_workflow(history)
    assert result.replay_failure is None


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_fresh_history_replays(
    name: str, ts_env: WorkflowEnvironment, pool: asyncpg.Pool[Any], task_queue: str
) -> None:
    async with build_worker(
        ts_env.client, task_queue=task_queue, pool=pool, knowledge_dir=KNOWLEDGE
    ):
        handle = await SCENARIOS[name](ts_env.client, task_queue)
    history = await handle.fetch_history()
    result = await _replayer().replay_workflow(history)
    assert result.replay_failure is None
