"""The approval gate of a ticket: its rules as pure functions, and ``ApprovalGate``, the
workflow helper that owns the ticket's approvals, their plans and their timers.

Each approval moves through ``ApprovalPhase`` (requested, announced, decided, closed); half-way
through its window the approvers are reminded, at 75% the next level is asked, and at its
deadline it expires. Usage in a workflow's main loop::

    self._gate = ApprovalGate(approvals=carried, plans=carried_plans)
    await self._gate.open(plan, request)                  # snapshot, record, notify
    deadline = self._gate.next_deadline()                 # None: no timer needed
    async for state in self._gate.expire_overdue(): ...   # the workflow tells the customer
    await self._gate.remind_and_escalate()
    async for state in self._gate.decisions(): ...        # the workflow acts on each
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from kruxt.activities.approvals import ApprovalActivities
    from kruxt.activities.notifications import NotificationActivities
    from kruxt.models.approvals import (
        ApprovalKind,
        ApprovalPhase,
        ApprovalRecord,
        ApprovalRequest,
        ApprovalState,
        ApprovalStatus,
        CloseApproval,
        Decision,
        DecisionChannel,
        DecisionOutcome,
        DirectoryEntry,
        DirectoryInput,
        NotifyApprovers,
        Verdict,
        find_entry,
    )
    from kruxt.models.playbooks import ROLE_RANK, ApproverRole, PlaybookPlan
    from kruxt.models.tickets import RoutingPolicy, TicketIntake
    from kruxt.models.triage import TriageResult
    from kruxt.workflows.failures import failure_reason
    from kruxt.workflows.policies import (
        LOCAL_RETRY,
        LOCAL_TIMEOUT,
        NOTIFY_RETRY,
        NOTIFY_TIMEOUT,
        db_activity,
    )

__all__ = [
    "ESCALATE_AT",
    "REMIND_AT",
    "ApprovalGate",
    "approval_request",
    "refusal",
    "requester_refusal",
]

# When, in an approval's window, approvers are reminded and the next level is asked.
REMIND_AT = 0.5
ESCALATE_AT = 0.75
# What of a decided approval the database records as the workflow holds it.
_RECORDED = {"request", "status", "decided_by", "reason", "channel", "correction", "os_user"}


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


def approval_request(
    approval_id: uuid.UUID,
    plan: PlaybookPlan,
    *,
    kind: ApprovalKind,
    intake: TicketIntake,
    triage: TriageResult,
    policy: RoutingPolicy,
    now: datetime,
    run_id: uuid.UUID | None = None,
) -> ApprovalRequest:
    """What approvers are asked: to run ``plan``, or to undo its run ``run_id``."""
    minutes = policy.approval_window_minutes.get(triage.severity.value, 240)
    return ApprovalRequest(
        approval_id=approval_id,
        ticket_id=intake.ticket_id,
        kind=kind,
        plan_id=plan.plan_id,
        run_id=run_id,
        playbook=plan.playbook,
        required_role=plan.approver_role,
        requester_email=str(intake.requester.email),
        summary=triage.summary,
        severity=triage.severity,
        confidence=triage.confidence,
        plain_explanation=plan.plain_explanation
        if kind is ApprovalKind.PLAN
        else f"Undo the playbook run {run_id}: {plan.rollback_plan}",
        technical_explanation=plan.technical_explanation,
        rollback_plan=plan.rollback_plan,
        preview=[{"step": s.step_id, **s.preview} for s in plan.steps],
        draft_reply=plan.customer_update if kind is ApprovalKind.PLAN else "",
        requested_at=now,
        expires_at=now + timedelta(minutes=minutes),
    )


def _fraction(request: ApprovalRequest, fraction: float) -> datetime:
    return request.requested_at + (request.expires_at - request.requested_at) * fraction


class ApprovalGate:
    """A ticket's approvals and the plans they approve, on workflow time."""

    def __init__(
        self,
        *,
        approvals: Iterable[ApprovalState] = (),
        plans: Iterable[PlaybookPlan] = (),
    ) -> None:
        """Fresh, or restored from a continue-as-new (``approvals``, ``plans``)."""
        self._approvals = {a.request.approval_id: a for a in approvals}
        self._plans = {p.plan_id: p for p in plans}

    @property
    def approvals(self) -> list[ApprovalState]:
        """Every approval, in the order requested (carry them over a continue-as-new)."""
        return list(self._approvals.values())

    @property
    def plans(self) -> list[PlaybookPlan]:
        """Every plan put up for approval."""
        return list(self._plans.values())

    # -- rules, for the updates and their validators --------------------------------------

    def refusal(self, decision: Decision) -> str | None:
        """None when ``decision`` may be taken now; otherwise why not."""
        return refusal(self._approvals.get(decision.approval_id), decision, workflow.now())

    def decide(self, decision: Decision) -> DecisionOutcome:
        """Take a decision (the ``decide`` update); the workflow acts on it next."""
        state = self._approvals.get(decision.approval_id)
        # Two updates in one task both pass the validator: re-check, so the second loses.
        reason = refusal(state, decision, workflow.now())
        if state is None or reason is not None:
            raise ApplicationError(reason or "unknown approval", type="DecisionRefused")
        state.status = (
            ApprovalStatus.APPROVED
            if decision.verdict is Verdict.APPROVE
            else ApprovalStatus.REJECTED
        )
        state.decided_by = decision.approver
        state.decided_at = workflow.now()
        state.reason = decision.reason
        state.channel = decision.channel
        state.correction = decision.correction
        state.os_user = decision.os_user
        state.phase = ApprovalPhase.DECIDED
        return DecisionOutcome(
            approval_id=decision.approval_id,
            status=state.status,
            decided_by=decision.approver,
            decided_at=state.decided_at,
        )

    def rollback_requested(self, run_id: uuid.UUID) -> bool:
        """True when a rollback of this run is pending or approved."""
        return any(
            s.request.run_id == run_id
            and s.request.kind is ApprovalKind.ROLLBACK
            and s.status in (ApprovalStatus.PENDING, ApprovalStatus.APPROVED)
            for s in self._approvals.values()
        )

    def directory_of(self, plan_id: uuid.UUID) -> list[DirectoryEntry] | None:
        """The directory snapshot taken when the plan was put up for approval."""
        for state in self._approvals.values():
            if state.request.kind is ApprovalKind.PLAN and state.request.plan_id == plan_id:
                return state.request.directory
        return None

    def request(self, request: ApprovalRequest, reason: str = "") -> None:
        """Add an approval asked for by an update; the main loop announces it next."""
        self._approvals[request.approval_id] = ApprovalState(request=request, reason=reason)

    # -- the main loop's side ---------------------------------------------------------------

    def needs_action(self) -> bool:
        """True when an approval waits to be announced or a decision to be acted on."""
        return any(
            s.phase in (ApprovalPhase.REQUESTED, ApprovalPhase.DECIDED)
            for s in self._approvals.values()
        )

    def next_deadline(self) -> datetime | None:
        """The next reminder, escalation or expiry of a pending approval; None: none."""
        moments: list[datetime] = []
        for a in self._approvals.values():
            if a.status is not ApprovalStatus.PENDING:
                continue
            moments.append(a.request.expires_at)
            if not a.reminded:
                moments.append(_fraction(a.request, REMIND_AT))
            if not a.escalated:
                moments.append(_fraction(a.request, ESCALATE_AT))
        return min(moments) if moments else None

    async def open(self, plan: PlaybookPlan, request: ApprovalRequest) -> None:
        """Put a plan up for approval: snapshot the directory, record, notify level 1."""
        self._plans[plan.plan_id] = plan
        state = ApprovalState(request=request)
        # Before the request is visible to `decide`: the validator reads roles from here.
        snapshot = await workflow.execute_activity_method(
            NotificationActivities.resolve_directory,
            DirectoryInput(approval_id=request.approval_id),
            start_to_close_timeout=LOCAL_TIMEOUT,
            retry_policy=LOCAL_RETRY,
            summary="Look up who may decide in the approvers directory",
        )
        state.request.directory = snapshot.entries
        self._approvals[request.approval_id] = state
        await self._announce(state)

    def plan(self, plan_id: uuid.UUID) -> PlaybookPlan:
        """A plan put up for approval."""
        return self._plans[plan_id]

    async def expire_overdue(self) -> AsyncIterator[ApprovalState]:
        """Expire each pending approval past its deadline; yields each once recorded."""
        now = workflow.now()
        for state in list(self._approvals.values()):
            if state.status is ApprovalStatus.PENDING and now >= state.request.expires_at:
                state.status = ApprovalStatus.EXPIRED
                state.decided_at = now
                state.reason = "no decision before the deadline"
                state.phase = ApprovalPhase.CLOSED
                await self._record_decision(state)
                yield state

    async def remind_and_escalate(self) -> None:
        """Half-way through the window remind the approvers; at 75% escalate a level."""
        now = workflow.now()
        for state in list(self._approvals.values()):
            if state.status is not ApprovalStatus.PENDING or state.phase is not (
                ApprovalPhase.ANNOUNCED
            ):
                continue
            req = state.request
            if not state.reminded and now >= _fraction(req, REMIND_AT):
                state.reminded = True
                await self._notify(state, level=1, reminder=True)
            if not state.escalated and now >= _fraction(req, ESCALATE_AT):
                state.escalated = True
                await self._notify(state, level=2, reminder=True)

    async def decisions(self) -> AsyncIterator[ApprovalState]:
        """Announce the approvals requested by updates; yield each decision, once recorded,
        for the workflow to act on."""
        for state in list(self._approvals.values()):
            if state.phase is ApprovalPhase.REQUESTED:
                await self._announce(state)  # a rollback request made by an update
            elif state.phase is ApprovalPhase.DECIDED:
                state.phase = ApprovalPhase.CLOSED
                await self._record_decision(state)
                yield state

    async def close_pending(self, reason: str) -> None:
        """Expire every pending approval: the ticket is resolved without them."""
        for state in self._approvals.values():
            if state.status is ApprovalStatus.PENDING:
                state.status = ApprovalStatus.EXPIRED
                state.reason = reason
                state.phase = ApprovalPhase.CLOSED
                await self._record_decision(state)

    # -- activities ---------------------------------------------------------------------------

    async def _announce(self, state: ApprovalState) -> None:
        """Record a new approval request and send it to the first level of approvers."""
        await db_activity(
            ApprovalActivities.record_approval,
            ApprovalRecord(request=state.request, status=ApprovalStatus.PENDING),
            f"Request approval ({state.request.kind.value})",
        )
        if state.status is ApprovalStatus.PENDING:
            state.phase = ApprovalPhase.ANNOUNCED
        await self._notify(state, level=1, reminder=False)

    async def _notify(self, state: ApprovalState, *, level: int, reminder: bool) -> None:
        """Best effort: an approver can always decide with the CLI if Slack and mail fail."""
        try:
            await workflow.execute_activity_method(
                NotificationActivities.notify_approvers,
                NotifyApprovers(request=state.request, level=level, reminder=reminder),
                start_to_close_timeout=NOTIFY_TIMEOUT,
                retry_policy=NOTIFY_RETRY,
                summary=("Remind" if reminder else "Notify") + f" approvers (level {level})",
            )
        except ActivityError as err:
            workflow.logger.warning("notifying approvers failed: %s", failure_reason(err))

    async def _record_decision(self, state: ApprovalState) -> None:
        accepted = None
        if state.request.kind is ApprovalKind.PLAN and state.status in (
            ApprovalStatus.APPROVED,
            ApprovalStatus.REJECTED,
        ):
            accepted = state.correction is None
        await db_activity(
            ApprovalActivities.record_approval,
            ApprovalRecord(**state.model_dump(include=_RECORDED), triage_accepted=accepted),
            f"Record the decision: {state.status.value}",
        )
        await self._close_messages(state)

    async def _close_messages(self, state: ApprovalState) -> None:
        try:
            await workflow.execute_activity_method(
                NotificationActivities.close_approval_messages,
                CloseApproval(
                    **state.model_dump(include={"request", "status", "decided_by", "reason"}),
                    decided_at=state.decided_at or workflow.now(),
                ),
                start_to_close_timeout=NOTIFY_TIMEOUT,
                retry_policy=NOTIFY_RETRY,
                summary=f"Show the decision in Slack ({state.status.value})",
            )
        except ActivityError as err:
            workflow.logger.warning("updating the Slack request failed: %s", failure_reason(err))
