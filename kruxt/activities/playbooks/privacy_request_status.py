"""privacy_request_status: read-only. It diagnoses and never proposes a step.

Export and deletion requests are handled by staff outside automation; no registered action
can change them. The diagnosis is for the knowledge-base answer and the person handling it.
"""

from __future__ import annotations

from kruxt.activities.playbooks import base as pb
from kruxt.models.enums import Category
from kruxt.models.playbooks import ApproverRole, Touches


def no_steps(d: pb.Diagnosis) -> str:
    """The requests' state, for the person who answers."""
    requests = d.get("requests") or []
    if not requests:
        return "read-only playbook; the account has no export or deletion request"
    listed = "; ".join(
        f"{r['kind']} request {r['id']} is {r['status'].replace('_', ' ')}, "
        f"due {pb.when(r['due_at'])}" + (" (OVERDUE)" if r.get("overdue") else "")
        for r in requests
    )
    return f"read-only playbook; privacy requests are handled by staff outside automation: {listed}"


DECLARATION = pb.PlaybookDeclaration(
    category=Category.PRIVACY_REQUEST_STATUS,
    touches=(Touches.PRIVACY,),
    approver_role=ApproverRole.STAFF,
    title="Privacy request status",
    diagnose=lambda app, account_id: app.diagnose_privacy_request_status(user_id=account_id),
    no_steps=no_steps,
)
