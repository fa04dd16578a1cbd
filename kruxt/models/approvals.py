"""The approval gate's contracts: what a person is asked, and what they answer."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, model_validator

from kruxt.models.enums import Category, Priority
from kruxt.models.playbooks import ApproverRole


class ApprovalKind(StrEnum):
    """What is being approved."""

    PLAN = "plan"
    ROLLBACK = "rollback"


class ApprovalStatus(StrEnum):
    """Lifecycle of an approval request (``support_approvals.status``)."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


class Verdict(StrEnum):
    """A person's answer."""

    APPROVE = "approve"
    REJECT = "reject"


class DecisionChannel(StrEnum):
    """Where a decision came from."""

    SLACK = "slack"
    EMAIL = "email"
    CLI = "cli"
    API = "api"
    CONSOLE = "console"  # the staff console (web pages and /v1/staff/)


class TriageCorrection(BaseModel):
    """An approver's correction of the triage ("triage wrong")."""

    severity: Priority | None = None
    category: Category | None = None


class DirectoryEntry(BaseModel):
    """One person of the approvers directory, as it stood when an approval was requested."""

    email: str
    name: str = ""
    slack_user_id: str | None = None
    roles: list[ApproverRole] = Field(default_factory=list)


def find_entry(directory: list[DirectoryEntry], email: str) -> DirectoryEntry | None:
    """The entry with this e-mail (case-insensitive), or None."""
    wanted = email.strip().lower()
    return next((e for e in directory if e.email.strip().lower() == wanted), None)


class ApprovalRequest(BaseModel):
    """Everything an approver needs to decide from a phone."""

    approval_id: uuid.UUID
    ticket_id: uuid.UUID
    kind: ApprovalKind
    plan_id: uuid.UUID
    run_id: uuid.UUID | None = Field(default=None, description="The run a rollback undoes")
    playbook: str
    required_role: ApproverRole
    requester_email: str = Field(description="The ticket's requester: never an approver")
    summary: str
    severity: Priority
    confidence: float
    plain_explanation: str
    technical_explanation: str
    rollback_plan: str
    preview: list[dict[str, Any]] = Field(default_factory=list)
    draft_reply: str = ""
    requested_at: datetime
    expires_at: datetime
    # Resolved from the approvers directory by an activity when the request was made: the
    # decide validator takes roles from here, never from the caller. None on requests made
    # before the directory was snapshotted (they fall back to the decision's roles).
    directory: list[DirectoryEntry] | None = None
    requested_by: str | None = Field(
        default=None, description="Who asked for a rollback: never its approver"
    )
    requested_channel: DecisionChannel | None = None
    requested_os_user: str | None = None


class Decision(BaseModel):
    """Input of the ``decide`` update.

    The starter (API, Slack, e-mail, CLI) authenticates the approver; the workflow's
    validator looks them up in the request's directory snapshot for their roles.
    """

    approval_id: uuid.UUID
    approver: str = Field(description="The approver's e-mail")
    # Only read for requests without a directory snapshot (started before it existed).
    roles: list[ApproverRole] = Field(default_factory=list)
    verdict: Verdict
    reason: str = ""
    channel: DecisionChannel
    correction: TriageCorrection | None = None
    slack_user_id: str | None = Field(
        default=None, description="Slack decisions: the clicking user, who must own the e-mail"
    )
    os_user: str | None = Field(
        default=None, description="CLI decisions: the operating-system user who ran it"
    )


class DecisionOutcome(BaseModel):
    """What the ``decide`` update answers: the decision that stands."""

    approval_id: uuid.UUID
    status: ApprovalStatus
    decided_by: str
    decided_at: datetime


class ApprovalRecord(BaseModel):
    """Input of ``record_approval``: a request, or its decision, for the database."""

    request: ApprovalRequest
    status: ApprovalStatus
    decided_by: str | None = None
    reason: str = ""
    channel: DecisionChannel | None = None
    correction: TriageCorrection | None = None
    triage_accepted: bool | None = None
    os_user: str | None = None


class RollbackRequest(BaseModel):
    """Input of the ``request_rollback`` update: undo a completed playbook run."""

    run_id: uuid.UUID
    actor: str = Field(description="Who asks (an approvers-directory e-mail)")
    reason: str = ""
    channel: DecisionChannel | None = None
    os_user: str | None = None


class PendingApproval(BaseModel):
    """One row of ``kruxt approvals list``."""

    approval_id: uuid.UUID
    ticket_id: uuid.UUID
    kind: ApprovalKind
    playbook: str
    required_role: ApproverRole
    summary: str
    severity: Priority
    requested_at: datetime
    expires_at: datetime


class ApprovalStanding(BaseModel):
    """Where a request stands now (``support_approvals``): what a link's page shows."""

    status: ApprovalStatus
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None


class ApprovalPhase(StrEnum):
    """How far the workflow has handled an approval; what was decided is ``ApprovalStatus``."""

    REQUESTED = "requested"  # asked for (a rollback, by an update): not recorded nor sent yet
    ANNOUNCED = "announced"  # recorded and sent to the approvers: waiting for a decision
    DECIDED = "decided"  # a person decided: the workflow acts on it next
    CLOSED = "closed"  # acted on, expired, or closed by the ticket's resolution


class ApprovalState(BaseModel):
    """An approval as the ticket's workflow tracks it (and hands over on continue-as-new)."""

    request: ApprovalRequest
    status: ApprovalStatus = ApprovalStatus.PENDING
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str = ""
    channel: DecisionChannel | None = None
    correction: TriageCorrection | None = None
    os_user: str | None = None
    phase: ApprovalPhase = ApprovalPhase.REQUESTED
    reminded: bool = False
    escalated: bool = False

    @model_validator(mode="before")
    @classmethod
    def _phase_from_handled(cls, data: Any) -> Any:
        """Carry-overs written before the phase existed say ``handled``, whose meaning
        depended on the status: "announced" while pending, "acted on" once decided."""
        if not isinstance(data, dict) or "handled" not in data:
            return data
        data = dict(data)
        handled = bool(data.pop("handled"))
        if "phase" not in data:
            pending = ApprovalStatus(data.get("status", ApprovalStatus.PENDING)) is (
                ApprovalStatus.PENDING
            )
            if pending:
                data["phase"] = ApprovalPhase.ANNOUNCED if handled else ApprovalPhase.REQUESTED
            else:
                data["phase"] = ApprovalPhase.CLOSED if handled else ApprovalPhase.DECIDED
        return data


class NotifyApprovers(BaseModel):
    """Input of ``notify_approvers``: send a request (or a reminder) to one level."""

    request: ApprovalRequest
    level: int = Field(ge=1, description="Escalation level of the approvers to notify")
    reminder: bool = False


class DirectoryInput(BaseModel):
    """Input of ``resolve_directory``: the approval the snapshot is taken for."""

    approval_id: uuid.UUID


class DirectorySnapshot(BaseModel):
    """The approvers directory as it stands now."""

    entries: list[DirectoryEntry] = Field(default_factory=list)


class NotifyResult(BaseModel):
    """Who was notified, and how."""

    slack_posted: bool = False
    emailed: list[str] = Field(default_factory=list)


class CloseApproval(BaseModel):
    """Input of ``close_approval_messages``: the decision (or expiry) to show."""

    request: ApprovalRequest
    status: ApprovalStatus
    decided_by: str | None = None
    decided_at: datetime
    reason: str = ""
