"""Replay: today's workflow code must reproduce recorded histories exactly.

``tests/histories/*.json`` were recorded from the real workflows (``python -m
tests.record_histories``), TicketWorkflow and IncidentWorkflow, one or more per scenario of
``tests/scenarios.py``; a change that would break tickets or incidents already running fails
here. (No test replays a history the code under test just produced: that replays by
construction. The recorded ones were made by older code.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from kruxt.adapters.temporal_client import data_converter
from kruxt.workers.composition import WORKFLOWS, workflow_runner
from kruxt.workflows.incident import IncidentWorkflow
from kruxt.workflows.ticket import TicketWorkflow
from kruxt.workflows.ticket_priority import TaskPriorityInterceptor
from tests.conftest import run_payload_codec
from tests.scenarios import SCENARIOS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def _replayer() -> Replayer:
    # The workers' converter: recorded histories (plain, from before payload encryption) and
    # fresh ones (encrypted) both replay with it.
    return Replayer(
        workflows=list(WORKFLOWS),
        data_converter=data_converter(run_payload_codec()),
        workflow_runner=workflow_runner(),
        interceptors=[TaskPriorityInterceptor()],  # as the workers run them
    )


def test_recorded_histories_exist() -> None:
    recorded = {p.stem.split("__")[0] for p in HISTORIES}
    missing = set(SCENARIOS) - recorded
    assert not missing, f"record them: python -m tests.record_histories TAG {' '.join(missing)}"
    started = [_history(p).events[0].workflow_execution_started_event_attributes for p in HISTORIES]
    types = {a.workflow_type.name for a in started}
    # The audit anchor has no path worth recording; both conversation workflows do.
    assert types >= {TicketWorkflow.__name__, IncidentWorkflow.__name__}, types


def _history(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"recorded-{path.stem}", path.read_text())


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path: Path) -> None:
    history = _history(path)
    # Histories are replayed with today's code: old ones prove running workflows survive it.
    result = await _replayer().replay_workflow(history)
    assert result.replay_failure is None
