"""The approval gate's rules, as pure functions the ticket workflow applies."""

from __future__ import annotations

from datetime import datetime

from kruxt.models.approvals import ApprovalState, ApprovalStatus, Decision
from kruxt.models.playbooks import ROLE_RANK


class DecisionRefused(ValueError):
    """Why a decision cannot be taken; the message goes back to whoever tried."""


def refusal(state: ApprovalState | None, decision: Decision, now: datetime) -> str | None:
    """None when ``decision`` may be taken on ``state``; otherwise the reason it may not."""
    if state is None:
        return f"unknown approval {decision.approval_id}"
    req = state.request
    if state.status is not ApprovalStatus.PENDING:
        by = f" by {state.decided_by}" if state.decided_by else ""
        at = f" at {state.decided_at:%Y-%m-%d %H:%M:%S} UTC" if state.decided_at else ""
        return f"already {state.status.value}{by}{at}"
    if now >= req.expires_at:
        return f"expired at {req.expires_at:%Y-%m-%d %H:%M:%S} UTC"
    if decision.approver.strip().lower() == req.requester_email.strip().lower():
        return "the requester of a ticket cannot approve its plan"
    needed = ROLE_RANK[req.required_role]
    if not any(ROLE_RANK[role] >= needed for role in decision.roles):
        held = ", ".join(r.value for r in decision.roles) or "no role"
        return f"needs the {req.required_role.value} role ({decision.approver} has {held})"
    return None
