"""What the Temporal Web UI shows as a ticket workflow's current details: a pure rendering.

The workflow passes its state (and the SLA summary it computed on workflow time) and sets
the text with ``workflow.set_current_details``; nothing here reads a clock or does I/O.
"""

from __future__ import annotations

from kruxt.models.approvals import ApprovalState, ApprovalStatus
from kruxt.models.lifecycle import lifecycle_line
from kruxt.models.sla import SlaSummary
from kruxt.models.tickets import TicketIntake, TicketWorkflowState

__all__ = ["render_details"]


def render_details(intake: TicketIntake, state: TicketWorkflowState, sla: SlaSummary | None) -> str:
    """The details text (Markdown) of a ticket in ``state`` (``sla``: its clocks now)."""
    lines = [
        f"**Status:** {state.status.value} — {state.next_step}",
        f"**Requester:** {intake.requester.email} via {intake.channel.value}",
    ]
    if state.assignee:
        lines.append(f"**Assignee:** {state.assignee}")
    triage = state.triage
    if triage is not None:
        lines += [
            f"**Triage:** {triage.severity.value} · {triage.category.value} · "
            f"playbook {triage.playbook or 'none'} · confidence {triage.confidence:.2f}",
            f"**Summary:** {triage.summary}",
            f"**Recommended:** {triage.recommended_action}",
        ]
    lines += [_approval_line(a) for a in state.approvals]
    lines += [
        f"**Run {str(run.run_id)[:8]}** ({run.plan.playbook}): {run.status.value}, "
        f"approved by {run.approved_by}"
        for run in state.runs
    ]
    if sla is not None:
        lines.append(f"**SLA:** {sla.line()}")
    lifecycle = lifecycle_line(state.lifecycle)
    if lifecycle is not None:
        lines.append(f"**Lifecycle:** {lifecycle}")
    if state.incident_id is not None:
        lines.append(f"**Incident:** {state.incident_id}")
    if state.first_response_at is not None:
        lines.append(f"**First response:** {state.first_response_at.isoformat()}")
    if state.messages_received:
        lines.append(f"**Follow-ups received:** {state.messages_received}")
    return "\n\n".join(lines)


def _approval_line(state: ApprovalState) -> str:
    req = state.request
    by = f" by {state.decided_by}" if state.decided_by else ""
    expires = (
        f", expires {req.expires_at:%Y-%m-%d %H:%M} UTC"
        if state.status is ApprovalStatus.PENDING
        else ""
    )
    return (
        f"**Approval {str(req.approval_id)[:8]}** ({req.kind.value}, "
        f"{req.required_role.value}): {state.status.value}{by}{expires}"
    )
