"""Approvals carried over before ``ApprovalPhase`` existed (a ``handled`` flag) still decode."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from kruxt.models.approvals import ApprovalPhase, ApprovalState, ApprovalStatus
from kruxt.models.tickets import TicketWorkflowInput

# Recorded by the code before the one baseline (tests/histories/), kept for their carry-overs.
HISTORIES = Path(__file__).parent / "data" / "legacy_carry_overs"


def _carried_approvals(history: str) -> list[ApprovalState]:
    """The approvals a recorded continue-as-new run started with, decoded by today's models."""
    events = json.loads((HISTORIES / history).read_text())["events"]
    started = events[0]["workflowExecutionStartedEventAttributes"]
    raw = json.loads(base64.b64decode(started["input"]["payloads"][0]["data"]))
    assert "handled" in json.dumps(raw["carry_over"]["approvals"])  # written with the old flag
    carry = TicketWorkflowInput.model_validate(raw).carry_over
    assert carry is not None
    return carry.approvals


@pytest.mark.parametrize(
    ("history", "phases"),
    [
        # Sent and still waiting: announced, not to be sent again.
        ("continued_as_new__all-paths-v1-run2.json", [ApprovalPhase.ANNOUNCED]),
        # Approved and acted on: closed, not to be run again.
        ("continued_as_new__all-paths-v1-run5.json", [ApprovalPhase.CLOSED] * 2),
    ],
)
def test_a_recorded_carry_over_decodes_handled_as_its_phase(
    history: str, phases: list[ApprovalPhase]
) -> None:
    assert [a.phase for a in _carried_approvals(history)] == phases


@pytest.mark.parametrize(
    ("status", "handled", "phase"),
    [
        (ApprovalStatus.PENDING, False, ApprovalPhase.REQUESTED),
        (ApprovalStatus.PENDING, True, ApprovalPhase.ANNOUNCED),
        (ApprovalStatus.APPROVED, False, ApprovalPhase.DECIDED),
        (ApprovalStatus.REJECTED, True, ApprovalPhase.CLOSED),
        (ApprovalStatus.EXPIRED, True, ApprovalPhase.CLOSED),
    ],
)
def test_handled_meant_announced_while_pending_and_acted_on_once_decided(
    status: ApprovalStatus, handled: bool, phase: ApprovalPhase
) -> None:
    carried = _carried_approvals("continued_as_new__all-paths-v1-run2.json")[0]
    old = carried.model_dump(mode="json", exclude={"phase"}) | {
        "status": status.value,
        "handled": handled,
    }
    state = ApprovalState.model_validate(old)
    assert state.phase is phase
    assert "handled" not in state.model_dump()
