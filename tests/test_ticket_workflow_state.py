"""The TicketWorkflow's one state model: old carry-overs decode, the query is derived from it."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from kruxt.models.approvals import ApprovalStatus
from kruxt.models.enums import TicketStatus
from kruxt.models.tickets import (
    FIRST_STEP,
    TicketWorkflowInput,
    TicketWorkflowState,
    ticket_state,
)

# Recorded by the code before the one baseline (tests/histories/), kept for their carry-overs.
HISTORIES = Path(__file__).parent / "data" / "legacy_carry_overs"


def _recorded_input(history: str) -> dict[str, Any]:
    """The input a recorded TicketWorkflow run started with, as JSON."""
    events = json.loads((HISTORIES / history).read_text())["events"]
    payload = events[0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0]
    decoded: dict[str, Any] = json.loads(base64.b64decode(payload["data"]))
    return decoded


def test_a_carry_over_without_a_next_step_starts_from_the_first_step() -> None:
    raw = _recorded_input("continued_as_new__all-paths-v1-run2.json")
    carry = dict(raw["carry_over"])
    carry["next_step"] = None  # as written before the next step was carried
    state = TicketWorkflowState.model_validate(carry)
    assert state.next_step == FIRST_STEP
    del carry["next_step"]
    assert TicketWorkflowState.model_validate(carry).next_step == FIRST_STEP


def test_the_query_answer_is_derived_from_the_carried_state() -> None:
    inp = TicketWorkflowInput.model_validate(
        _recorded_input("continued_as_new__all-paths-v1-run5.json")
    )
    state = inp.carry_over
    assert state is not None and state.triage is not None
    answer = ticket_state(inp.intake.ticket_id, state, sla=None)
    assert answer.status is state.status is TicketStatus.AWAITING_HUMAN
    assert (answer.priority, answer.category, answer.playbook) == (
        state.triage.severity,
        state.triage.category,
        state.triage.playbook,
    )
    assert [a.status for a in answer.approvals] == [ApprovalStatus.APPROVED] * 2
    assert [r.run_id for r in answer.runs] == [r.run_id for r in state.runs]
    assert state.run(state.runs[0].run_id) is state.runs[0]
    assert state.assignee == "maya@kruxt.app"  # carried whole, with the assignee
