"""The approval gate's rules, as pure functions the ticket workflow applies."""

from __future__ import annotations

from datetime import datetime

from kruxt.models.approvals import (
    ApprovalState,
    ApprovalStatus,
    Decision,
    DecisionChannel,
    DirectoryEntry,
    find_entry,
)
from kruxt.models.playbooks import ROLE_RANK, ApproverRole


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
    who = decision.approver.strip().lower()
    if who == req.requester_email.strip().lower():
        return "the requester of a ticket cannot approve its plan"
    if req.requested_by is not None and who == req.requested_by.strip().lower():
        return "whoever asked for a rollback cannot approve it"
    if req.directory is None:
        # Requested before the directory was snapshotted: the starter resolved the roles.
        roles = decision.roles
    else:
        entry = find_entry(req.directory, decision.approver)
        if entry is None:
            return f"{decision.approver} is not in the approvers directory"
        mismatch = _identity_mismatch(entry, decision)
        if mismatch is not None:
            return mismatch
        roles = entry.roles
    return _role_refusal(req.required_role, roles, decision.approver)


def requester_refusal(directory: list[DirectoryEntry] | None, requester: str) -> str | None:
    """None when ``requester`` may ask for a rollback; otherwise why not."""
    if directory is not None and find_entry(directory, requester) is None:
        return f"{requester} is not in the approvers directory: only approvers may ask"
    return None


def _identity_mismatch(entry: DirectoryEntry, decision: Decision) -> str | None:
    # A Slack click is identified by the Slack user: it must be the entry's own.
    if decision.channel is DecisionChannel.SLACK and (
        decision.slack_user_id is None or decision.slack_user_id != entry.slack_user_id
    ):
        return f"Slack user {decision.slack_user_id or '(none)'} is not {decision.approver}"
    return None


def _role_refusal(required: ApproverRole, roles: list[ApproverRole], who: str) -> str | None:
    needed = ROLE_RANK[required]
    if not any(ROLE_RANK[role] >= needed for role in roles):
        held = ", ".join(r.value for r in roles) or "no role"
        return f"needs the {required.value} role ({who} has {held})"
    return None
