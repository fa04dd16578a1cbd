"""Playbooks as the workflow sees them: a plan to approve, steps to run, what each changed."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from kruxt.models.enums import RiskTier


class Touches(StrEnum):
    """What a playbook step may change in the app."""

    DATA = "data"
    PERMISSIONS = "permissions"
    INTEGRATIONS = "integrations"
    PRIVACY = "privacy"


class ApproverRole(StrEnum):
    """Who may approve; each role includes the ones before it in ``RANK``."""

    APPROVER = "approver"
    MODERATOR = "moderator"
    ADMIN = "admin"
    STAFF = "staff"


# Roles an approver must hold, in increasing strength: an admin may approve what any
# approver may; moderation and privacy/staff decisions need their own role.
ROLE_RANK: dict[ApproverRole, int] = {
    ApproverRole.APPROVER: 1,
    ApproverRole.MODERATOR: 2,
    ApproverRole.ADMIN: 3,
    ApproverRole.STAFF: 4,
}


def strongest(roles: list[ApproverRole]) -> ApproverRole:
    """The role that covers all of ``roles`` (the plan needs its strictest step's role)."""
    return max(roles, key=ROLE_RANK.__getitem__) if roles else ApproverRole.APPROVER


class PlannedStep(BaseModel):
    """One concrete step of a plan: a registered action with its arguments and preview."""

    step_id: str
    action: str = Field(description="A registered action name; nothing else can run")
    target: dict[str, str]
    description: str
    preview: dict[str, Any] = Field(
        default_factory=dict, description="Dry run: {'before': ..., 'after': ...}"
    )
    compensation: str | None = Field(
        default=None, description="The registered compensating action, if one exists"
    )
    rollback_note: str = ""
    touches: list[Touches] = Field(default_factory=list)
    approver_role: ApproverRole = ApproverRole.APPROVER


class Precondition(BaseModel):
    """A fact that must still hold when the approved plan runs."""

    check: str = Field(description="A registered check name")
    target: dict[str, str]
    description: str


class PlaybookPlan(BaseModel):
    """What gets approved: exactly what will run, and how to undo it."""

    plan_id: uuid.UUID
    ticket_id: uuid.UUID
    playbook: str
    risk: RiskTier
    touches: list[Touches]
    approver_role: ApproverRole
    diagnosis: dict[str, Any]
    steps: list[PlannedStep]
    preconditions: list[Precondition] = Field(default_factory=list)
    plain_explanation: str
    technical_explanation: str
    rollback_plan: str
    customer_update: str = Field(description="What the customer is told when the run succeeds")
    rollback_update: str = Field(
        default="", description="What the customer is told when an approved rollback undid it"
    )

    @property
    def read_only(self) -> bool:
        """True when the plan changes nothing."""
        return not self.steps


class PlanRequest(BaseModel):
    """Input of ``plan_playbook``: diagnose read-only, then propose."""

    ticket_id: uuid.UUID
    plan_id: uuid.UUID
    playbook: str
    account_id: str | None = None
    requester_name: str = ""


class PlanOutcome(BaseModel):
    """A plan, or why there is none (nothing to fix, unknown account ...)."""

    plan: PlaybookPlan | None = None
    reason: str = ""


class PreconditionCheck(BaseModel):
    """Input of ``check_preconditions``."""

    ticket_id: uuid.UUID
    plan: PlaybookPlan


class PreconditionResult(BaseModel):
    """Whether every precondition still holds; the failed ones say why."""

    ok: bool
    failures: list[str] = Field(default_factory=list)


class StepRun(BaseModel):
    """Input of ``run_step`` and ``compensate_step``."""

    ticket_id: uuid.UUID
    plan_id: uuid.UUID
    run_id: uuid.UUID
    step: PlannedStep

    @property
    def idempotency_key(self) -> str:
        """The key the app dedupes this step by: one plan, one step, applied once."""
        return f"{self.plan_id}:{self.step.step_id}"

    @property
    def compensation_key(self) -> str:
        """The key of this step's compensation."""
        return f"{self.plan_id}:{self.step.step_id}:undo"


class StepResult(BaseModel):
    """What a step (or its compensation) changed."""

    step_id: str
    before: Any = None
    after: Any = None
    replayed: bool = False
    noop: bool = False


class RunStatus(StrEnum):
    """Lifecycle of a playbook run (``support_playbook_runs.status``)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    COMPENSATED = "compensated"
    REFUSED = "refused"
    ROLLED_BACK = "rolled_back"


class RunRecord(BaseModel):
    """Input of ``record_run``: a playbook run's state change."""

    ticket_id: uuid.UUID
    run_id: uuid.UUID
    plan: PlaybookPlan
    status: RunStatus
    approved_by: str | None = None
    reason: str = ""


class RunState(BaseModel):
    """A playbook run as the ticket's workflow tracks it, for a later rollback."""

    run_id: uuid.UUID
    plan: PlaybookPlan
    status: RunStatus
    approved_by: str
    finished_at: datetime | None = None
    applied: list[str] = Field(default_factory=list, description="Step ids that were applied")
