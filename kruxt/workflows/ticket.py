"""TicketWorkflow: one durable workflow per support ticket, from intake to resolution."""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from kruxt.activities.approvals import ApprovalActivities
    from kruxt.activities.context import ContextActivities
    from kruxt.activities.incidents import IncidentActivities
    from kruxt.activities.knowledge import KnowledgeActivities
    from kruxt.activities.llm_triage import LlmTriageActivities
    from kruxt.activities.notifications import NotificationActivities
    from kruxt.activities.playbooks.activities import PlaybookActivities
    from kruxt.activities.tickets import TicketActivities
    from kruxt.activities.triage import TriageActivities
    from kruxt.models import search_attributes as sa
    from kruxt.models.approvals import (
        ApprovalKind,
        ApprovalRecord,
        ApprovalRequest,
        ApprovalState,
        ApprovalStatus,
        CloseApproval,
        Decision,
        DecisionOutcome,
        DirectoryEntry,
        DirectoryInput,
        NotifyApprovers,
        RollbackRequest,
        Verdict,
    )
    from kruxt.models.context import ContextInput
    from kruxt.models.enums import Category, Priority, TicketStatus
    from kruxt.models.incidents import IncidentResolved, OpenIncidentInput, incident_key
    from kruxt.models.playbooks import (
        PlanOutcome,
        PlanRequest,
        PlaybookPlan,
        PreconditionCheck,
        RunRecord,
        RunState,
        RunStatus,
        StepRun,
    )
    from kruxt.models.records import (
        AssignInput,
        DraftReply,
        DraftReplyInput,
        InboundMessageInput,
        MessageKind,
        OutboundMessageInput,
        PersistTicketInput,
        PriorityChangeInput,
        RecordTriageInput,
        StatusChangeInput,
    )
    from kruxt.models.routing import Route, decide_route
    from kruxt.models.sla import ClockKind, SlaEventKind
    from kruxt.models.text import BAD_DATA_ERROR, replace_unstorable
    from kruxt.models.tickets import (
        CustomerMessage,
        Requester,
        StaffAssign,
        StaffPriorityChange,
        StaffResolve,
        TicketCarryOver,
        TicketIntake,
        TicketOutcome,
        TicketState,
        TicketWorkflowInput,
    )
    from kruxt.models.triage import TriageInput, TriageOutcome, TriageResult
    from kruxt.workflows.approvals import refusal, requester_refusal
    from kruxt.workflows.failures import failure_reason
    from kruxt.workflows.policies import (
        DB_RETRY,
        DB_TIMEOUT,
        KNOWLEDGE_TIMEOUT,
        LLM_DEADLINE,
        LLM_RETRY,
        LLM_TIMEOUT,
        LOCAL_RETRY,
        LOCAL_TIMEOUT,
        NOTIFY_RETRY,
        NOTIFY_TIMEOUT,
    )
    from kruxt.workflows.saga import compensate, run_plan
    from kruxt.workflows.sla import SlaTracker

AUTOPILOT = "autopilot"
LLM_NOT_CONFIGURED = "llm not configured (OPENAI_API_KEY is unset)"
# Tickets started before a capability existed replay without it (workflow.patched).
TRIAGE_AGENTS_PATCH = "triage-agents-v1"
PLAYBOOKS_PATCH = "playbooks-v1"
SLA_PATCH = "sla-incidents-v1"
# Approvals carry a snapshot of the approvers directory (roles from there, never the caller);
# rollbacks record who asked. Two ids: each call site decides once, on its own marker.
DIRECTORY_PATCH = "approver-directory-v1"
ROLLBACK_REQUESTER_PATCH = "rollback-requester-v1"
# Text the database refuses goes to a person instead of being retried forever.
BAD_DATA_PATCH = "bad-data-to-human-v1"
# A drafted reply the reply guard refused goes to a person as a note instead of the customer.
REPLY_GUARD_PATCH = "reply-guard-v1"
# Rules triage and drafting retry a bounded number of times; when they give up, a person
# reads the ticket (untriaged, or without a draft) instead of the workflow failing.
LOCAL_FAILURE_PATCH = "local-failure-to-human-v1"


@workflow.defn
class TicketWorkflow:
    """Persist, triage, route; then follow the conversation, approvals and playbook runs
    until a person resolves the ticket."""

    @workflow.init
    def __init__(self, inp: TicketWorkflowInput) -> None:
        carry = inp.carry_over or TicketCarryOver(status=TicketStatus.NEW)
        self._intake = inp.intake
        self._policy = inp.policy
        self._status = carry.status
        self._triage: TriageResult | None = carry.triage
        self._first_response_at: datetime | None = carry.first_response_at
        self._messages_received = carry.messages_received
        self._approvals: dict[uuid.UUID, ApprovalState] = {
            a.request.approval_id: a for a in carry.approvals
        }
        self._plans: dict[uuid.UUID, PlaybookPlan] = {p.plan_id: p for p in carry.plans}
        self._runs: dict[uuid.UUID, RunState] = {r.run_id: r for r in carry.runs}
        self._sla = SlaTracker(
            inp.intake.ticket_id, inp.sla, clocks=carry.sla_clocks, priority=carry.sla_priority
        )
        self._incident_id: uuid.UUID | None = carry.incident_id
        self._priority_changes: list[StaffPriorityChange] = []
        self._assignments: list[StaffAssign] = []
        self._assignee: str | None = carry.assignee
        self._incident_news: list[IncidentResolved] = []
        self._inbox: list[CustomerMessage] = []
        self._resolve_request: StaffResolve | None = None
        self._resolved_at: datetime | None = None
        self._next_step = carry.next_step or "persisting the ticket"
        self._history_limit = inp.history_limit

    @workflow.run
    async def run(self, inp: TicketWorkflowInput) -> TicketOutcome:
        """Drive the ticket; returns when a staff member resolves it."""
        if inp.carry_over is None:
            refused = await self._persist()
            if refused is not None:
                await self._to_a_person_unread(refused)
            else:
                triage = await self._run_triage()
                if workflow.patched(SLA_PATCH):
                    # The clocks run from the ticket's arrival, not from the end of triage.
                    self._sla.start(triage.severity, self._intake.received_at)
                    if triage.severity in (Priority.P1, Priority.P2):
                        await self._open_or_join_incident(triage)
                await self._route(triage, inp)
        while True:
            self._publish()
            await self._wait_for_work()
            # Messages first: a follow-up that raced the resolve is still recorded.
            while self._inbox:
                await self._take_customer_message(self._inbox.pop(0))
            await self._check_sla()
            await self._apply_priority_changes()
            await self._apply_assignments()
            await self._share_incident_news()
            await self._expire_overdue_approvals()
            await self._remind_and_escalate()
            await self._act_on_decisions()
            if self._resolve_request is not None:
                outcome = await self._resolve(self._resolve_request)
                # Follow-ups that arrived while resolving are recorded, never dropped.
                while self._inbox:
                    await self._take_customer_message(self._inbox.pop(0))
                await workflow.wait_condition(workflow.all_handlers_finished)
                return outcome
            if self._continue_due():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._has_work():
                    continue  # a signal or update arrived meanwhile: handle it in this run
                workflow.continue_as_new(self._continuation(inp))

    # -- signals, updates and queries ----------------------------------------------------

    @workflow.signal
    def customer_message(self, message: CustomerMessage) -> None:
        """A follow-up from the requester."""
        self._inbox.append(message)

    @workflow.signal
    def resolve(self, request: StaffResolve) -> None:
        """A staff member resolves the ticket; the first request wins."""
        if self._resolve_request is None:
            self._resolve_request = request

    @workflow.signal
    def change_priority(self, change: StaffPriorityChange) -> None:
        """A staff member sets the priority: the SLA deadlines are recomputed from the start."""
        self._priority_changes.append(change)

    @workflow.signal
    def reassign(self, assignment: StaffAssign) -> None:
        """A staff member gives the ticket to someone on the team."""
        self._assignments.append(assignment)

    @workflow.signal
    def incident_resolved(self, news: IncidentResolved) -> None:
        """The incident this ticket is attached to was resolved."""
        self._incident_news.append(news)

    @workflow.update
    def decide(self, decision: Decision) -> DecisionOutcome:
        """An approver's decision on a pending approval; the first decision wins."""
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
        state.handled = False  # the main loop acts on it next
        return DecisionOutcome(
            approval_id=decision.approval_id,
            status=state.status,
            decided_by=decision.approver,
            decided_at=state.decided_at,
        )

    @decide.validator
    def _validate_decide(self, decision: Decision) -> None:
        reason = refusal(self._approvals.get(decision.approval_id), decision, workflow.now())
        if reason is not None:
            raise ValueError(reason)

    @workflow.update
    def request_rollback(self, request: RollbackRequest) -> uuid.UUID:
        """Ask to undo a completed playbook run; returns the approval that must decide it."""
        run = self._runs[request.run_id]
        approval_id = workflow.uuid4()
        now = workflow.now()
        rollback = self._approval_request(
            approval_id, run.plan, kind=ApprovalKind.ROLLBACK, run_id=run.run_id, now=now
        )
        if workflow.patched(ROLLBACK_REQUESTER_PATCH):
            # Whoever asked may not approve it; approvers come from the plan's snapshot.
            rollback.requested_by = request.actor
            rollback.requested_channel = request.channel
            rollback.requested_os_user = request.os_user
            rollback.directory = self._directory_of(run.plan.plan_id)
        self._approvals[approval_id] = ApprovalState(request=rollback, reason=request.reason)
        return approval_id

    @request_rollback.validator
    def _validate_rollback(self, request: RollbackRequest) -> None:
        run = self._runs.get(request.run_id)
        if run is None:
            raise ValueError(f"ticket {self._intake.ticket_id} has no run {request.run_id}")
        if run.status is not RunStatus.SUCCEEDED or run.finished_at is None:
            raise ValueError(f"run {request.run_id} is {run.status.value}: nothing to roll back")
        window = timedelta(days=self._policy.reopen_window_days)
        if workflow.now() > run.finished_at + window:
            raise ValueError(
                f"run {request.run_id} finished more than {self._policy.reopen_window_days} "
                "days ago: past the reopen window"
            )
        for state in self._approvals.values():
            if (
                state.request.run_id == request.run_id
                and state.request.kind is ApprovalKind.ROLLBACK
                and state.status in (ApprovalStatus.PENDING, ApprovalStatus.APPROVED)
            ):
                raise ValueError(f"a rollback of run {request.run_id} is already requested")
        refused = requester_refusal(self._directory_of(run.plan.plan_id), request.actor)
        if refused is not None:
            raise ValueError(refused)

    def _directory_of(self, plan_id: uuid.UUID) -> list[DirectoryEntry] | None:
        """The directory snapshot taken when the plan was put up for approval."""
        for state in self._approvals.values():
            if state.request.kind is ApprovalKind.PLAN and state.request.plan_id == plan_id:
                return state.request.directory
        return None

    @workflow.query
    def state(self) -> TicketState:
        """Where the ticket stands."""
        triage = self._triage
        return TicketState(
            ticket_id=self._intake.ticket_id,
            status=self._status,
            priority=triage.severity if triage else None,
            category=triage.category if triage else None,
            playbook=triage.playbook if triage else None,
            triage=triage,
            first_response_at=self._first_response_at,
            resolved_at=self._resolved_at,
            resolved_by=self._resolve_request.actor if self._resolve_request else None,
            messages_received=self._messages_received,
            approvals=list(self._approvals.values()),
            runs=list(self._runs.values()),
            sla=self._sla.summary() if self._sla.started else None,
            incident_id=self._incident_id,
        )

    # -- the main loop's helpers ---------------------------------------------------------

    def _has_work(self) -> bool:
        return bool(
            self._inbox
            or self._resolve_request is not None
            or self._priority_changes
            or self._assignments
            or self._incident_news
            or any(self._needs_action(a) for a in self._approvals.values())
        )

    def _continue_due(self) -> bool:
        """Time to continue-as-new: the server suggests it, or the test limit is reached."""
        info = workflow.info()
        limit = self._history_limit
        # Without a limit (production) this is the server's suggestion alone, as before.
        return info.is_continue_as_new_suggested() or (
            limit is not None and info.get_current_history_length() >= limit
        )

    @staticmethod
    def _needs_action(state: ApprovalState) -> bool:
        # Decided but not acted on yet, or requested by an update and not yet announced.
        return not state.handled

    async def _wait_for_work(self) -> None:
        """Sleep until a signal, an update or the next approval deadline."""
        condition = lambda: self._has_work() or self._continue_due()  # noqa: E731
        deadline = self._next_deadline()
        sla_timeout = self._sla.timeout()
        if deadline is None and sla_timeout is None:
            await workflow.wait_condition(condition)
            return
        candidates = [t for t in (sla_timeout,) if t is not None]
        if deadline is not None:
            candidates.append(deadline - workflow.now())
        remaining = max(min(candidates), timedelta(seconds=1))
        # Reaching the deadline is itself the work: expiry is checked next.
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(condition, timeout=remaining)

    def _next_deadline(self) -> datetime | None:
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

    # -- SLA, priority and incidents ------------------------------------------------------

    async def _check_sla(self) -> None:
        """Send the SLA warnings and breaches that are due; flag at-risk tickets for search."""
        if not self._sla.started or self._triage is None:
            return
        events = await self._sla.check(summary=self._triage.summary)
        if any(e.kind is SlaEventKind.WARNING for e in events):
            workflow.upsert_search_attributes([sa.SLA_AT_RISK.value_set(True)])

    async def _apply_priority_changes(self) -> None:
        while self._priority_changes:
            change = self._priority_changes.pop(0)
            await workflow.execute_activity_method(
                TicketActivities.change_priority,
                PriorityChangeInput(
                    ticket_id=self._intake.ticket_id,
                    priority=change.priority,
                    actor=change.actor,
                    reason=change.reason,
                ),
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=DB_RETRY,
                summary=f"Set priority {change.priority.value}",
            )
            if self._triage is not None:
                self._triage = self._triage.model_copy(update={"severity": change.priority})
            self._sla.retarget(change.priority)
            workflow.upsert_search_attributes([sa.TICKET_PRIORITY.value_set(change.priority.value)])

    async def _apply_assignments(self) -> None:
        while self._assignments:
            assignment = self._assignments.pop(0)
            await workflow.execute_activity_method(
                TicketActivities.assign,
                AssignInput(
                    ticket_id=self._intake.ticket_id,
                    assignee=str(assignment.assignee),
                    actor=assignment.actor,
                ),
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=DB_RETRY,
                summary=f"Assign to {assignment.assignee}",
            )
            self._assignee = str(assignment.assignee)

    async def _open_or_join_incident(self, triage: TriageResult) -> None:
        """A P1/P2 ticket opens an incident, or joins the open one with the same cause."""
        join = await workflow.execute_activity_method(
            IncidentActivities.open_or_join_incident,
            OpenIncidentInput(
                ticket_id=self._intake.ticket_id,
                ticket_workflow_id=workflow.info().workflow_id,
                key=incident_key(triage.category, triage.probable_root_cause),
                priority=triage.severity,
                category=triage.category,
                title=triage.summary,
                at=workflow.now(),
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=f"Open or join the {triage.severity.value} incident",
        )
        self._incident_id = join.incident_id

    async def _share_incident_news(self) -> None:
        while self._incident_news:
            news = self._incident_news.pop(0)
            note = f" {news.note}" if news.note else ""
            await self._send_text(
                MessageKind.INCIDENT_UPDATE,
                "Good news: the problem behind your ticket has been fixed." + note + " If "
                "anything still looks wrong, reply here and we will pick it up.",
            )
            if self._status is not TicketStatus.RESOLVED:
                await self._set_status(
                    TicketStatus.AWAITING_CUSTOMER,
                    f"incident {news.incident_id} resolved by {news.by}",
                    actor=news.by,
                )

    # -- steps ---------------------------------------------------------------------------

    async def _persist(self) -> str | None:
        """Store the ticket; returns why its text was refused (then stored repaired), or None.

        Intake refuses what Postgres cannot store, but a ticket that got past it (an older
        client, a new channel) must not retry forever: its unstorable characters are replaced
        with U+FFFD, it is stored so, and a person reads it.
        """
        refused: str | None = None
        try:
            await self._store_intake()
        except ActivityError as err:
            if not _bad_data(err) or not workflow.patched(BAD_DATA_PATCH):
                raise
            refused = failure_reason(err)
            self._intake = _repaired(self._intake)
            await self._store_intake()
        workflow.upsert_search_attributes([sa.CHANNEL.value_set(self._intake.channel.value)])
        return refused

    async def _store_intake(self) -> None:
        await workflow.execute_activity_method(
            TicketActivities.persist_ticket,
            PersistTicketInput(intake=self._intake, workflow_id=workflow.info().workflow_id),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary="Store the ticket and its first message",
        )

    async def _to_a_person_unread(self, refused: str) -> None:
        """A ticket whose text was repaired is not triaged on it: a person reads it first."""
        await self._send_text(
            MessageKind.HOLDING,
            "Thanks for your message. A member of the KRUXT team will read it and get back to "
            "you here.",
        )
        await self._set_status(
            TicketStatus.AWAITING_HUMAN,
            f"routed to a person: the ticket's text could not be stored as sent ({refused}); "
            "the characters refused were replaced with U+FFFD",
        )

    async def _run_triage(self) -> TriageResult:
        self._next_step = "triaging"
        self._publish()
        intake = self._intake
        inp = TriageInput(
            ticket_id=intake.ticket_id,
            channel=intake.channel,
            account_id=intake.account_id,
            subject=intake.subject,
            body=intake.body,
        )
        if workflow.patched(TRIAGE_AGENTS_PATCH):
            outcome = await self._triage_with_agents(inp)
        else:  # tickets that started before the LLM triager existed
            outcome = await self._triage_with_rules(inp)
        await workflow.execute_activity_method(
            TicketActivities.record_triage,
            RecordTriageInput(ticket_id=intake.ticket_id, outcome=outcome),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary="Record the triage run",
        )
        triage = outcome.result
        self._triage = triage
        self._status = TicketStatus.TRIAGED
        workflow.upsert_search_attributes(
            [
                sa.TICKET_STATUS.value_set(self._status.value),
                sa.TICKET_PRIORITY.value_set(triage.severity.value),
                sa.PLAYBOOK.value_set(triage.playbook)
                if triage.playbook
                else sa.PLAYBOOK.value_unset(),
            ]
        )
        return triage

    async def _triage_with_agents(self, inp: TriageInput) -> TriageOutcome:
        """Context, then the LLM; the rules triager answers whenever the LLM cannot."""
        context = await workflow.execute_activity_method(
            ContextActivities.gather_context,
            ContextInput(ticket_id=inp.ticket_id, account_id=inp.account_id),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary="Gather account context and recent incidents",
        )
        inp = inp.model_copy(update={"context": context})
        try:
            llm = await workflow.execute_activity_method(
                LlmTriageActivities.triage_with_llm,
                inp,
                start_to_close_timeout=LLM_TIMEOUT,
                schedule_to_close_timeout=LLM_DEADLINE,
                retry_policy=LLM_RETRY,
                summary="Triage with the LLM",
            )
        except ActivityError as err:
            llm, reason = None, failure_reason(err)
        else:
            reason = LLM_NOT_CONFIGURED
        if llm is not None:
            return llm
        outcome = await self._triage_with_rules(inp)
        return outcome.model_copy(update={"fallback_reason": reason})

    async def _triage_with_rules(self, inp: TriageInput) -> TriageOutcome:
        try:
            return await workflow.execute_activity_method(
                TriageActivities.triage_with_rules,
                inp,
                start_to_close_timeout=LOCAL_TIMEOUT,
                retry_policy=LOCAL_RETRY,
                summary="Triage with the rules triager",
            )
        except ActivityError as err:
            # Only reached after the bounded retries: the marker is written on this path alone.
            if not workflow.patched(LOCAL_FAILURE_PATCH):
                raise
            return _untriaged(failure_reason(err))

    async def _route(self, triage: TriageResult, inp: TicketWorkflowInput) -> None:
        decision = decide_route(triage, inp.policy)
        # Tickets from before playbooks existed keep their old path: straight to a person.
        with_playbooks = workflow.patched(PLAYBOOKS_PATCH)
        if decision.route is Route.AUTO_REPLY:
            self._next_step = "drafting a reply from the knowledge base"
            self._publish()
            draft = await self._draft_reply()
            if draft is not None and draft.refusal and workflow.patched(REPLY_GUARD_PATCH):
                # Never sent: the person who answers reads the refused draft and why.
                await self._acknowledge()
                await self._attach(draft)
                await self._set_status(
                    TicketStatus.AWAITING_HUMAN,
                    f"routed to a person: the drafted reply was refused ({draft.refusal})",
                )
                return
            if draft is not None:
                await self._send(MessageKind.AUTO_REPLY, draft)
                await self._set_status(
                    TicketStatus.AWAITING_CUSTOMER,
                    f"auto-replied ({decision.reason}) citing {', '.join(draft.article_ids)}",
                )
                return
            reason = f"{decision.reason}, but no knowledge article covers it"
        elif decision.route is Route.PLAYBOOK and with_playbooks:
            plan = await self._plan(triage)
            await self._acknowledge()
            await self._attach_draft()
            if plan.plan is not None:
                await self._request_approval(plan.plan)
                return
            reason = f"no plan: {plan.reason}"
            await self._set_status(TicketStatus.AWAITING_HUMAN, f"routed to a person: {reason}")
            return
        else:
            reason = decision.reason
        await self._acknowledge()
        if with_playbooks:
            await self._attach_draft()
        await self._set_status(TicketStatus.AWAITING_HUMAN, f"routed to a person: {reason}")

    async def _draft_reply(self) -> DraftReply | None:
        try:
            return await workflow.execute_activity_method(
                KnowledgeActivities.draft_reply,
                self._draft_input(),
                start_to_close_timeout=KNOWLEDGE_TIMEOUT,
                retry_policy=LOCAL_RETRY,
                summary="Draft a reply from the knowledge base",
            )
        except ActivityError as err:
            if not workflow.patched(LOCAL_FAILURE_PATCH):
                raise
            workflow.logger.warning("no draft: %s", failure_reason(err))
            return None  # a person answers without one

    async def _attach_draft(self) -> None:
        """A drafted reply for the person who picks the ticket up; never sent by itself."""
        draft = await self._draft_reply()
        if draft is not None:
            await self._attach(draft)

    async def _attach(self, draft: DraftReply) -> None:
        body = draft.body
        if draft.refusal:
            body = f"Not sent: the reply guard refused this draft ({draft.refusal}).\n\n{body}"
        await workflow.execute_activity_method(
            TicketActivities.attach_draft,
            OutboundMessageInput(
                ticket_id=self._intake.ticket_id,
                message_id=workflow.uuid4(),
                kind=MessageKind.DRAFT,
                body=body,
                article_ids=draft.article_ids,
                author="agent:knowledge",
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary="Attach the drafted reply for staff",
        )

    async def _plan(self, triage: TriageResult) -> PlanOutcome:
        """Diagnose read-only and propose concrete steps; nothing changes here."""
        assert triage.playbook is not None
        self._next_step = f"diagnosing with playbook {triage.playbook}"
        self._publish()
        return await workflow.execute_activity_method(
            PlaybookActivities.plan_playbook,
            PlanRequest(
                ticket_id=self._intake.ticket_id,
                plan_id=workflow.uuid4(),
                playbook=triage.playbook,
                account_id=self._intake.account_id,
                requester_name=self._intake.requester.name,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=f"Diagnose and plan ({triage.playbook})",
        )

    async def _request_approval(self, plan: PlaybookPlan) -> None:
        approval_id = workflow.uuid4()
        self._plans[plan.plan_id] = plan
        state = ApprovalState(
            request=self._approval_request(
                approval_id, plan, kind=ApprovalKind.PLAN, now=workflow.now()
            )
        )
        if workflow.patched(DIRECTORY_PATCH):
            # Before the request is visible to `decide`: the validator reads roles from here.
            snapshot = await workflow.execute_activity_method(
                NotificationActivities.resolve_directory,
                DirectoryInput(approval_id=approval_id),
                start_to_close_timeout=LOCAL_TIMEOUT,
                retry_policy=LOCAL_RETRY,
                summary="Look up who may decide in the approvers directory",
            )
            state.request.directory = snapshot.entries
        self._approvals[approval_id] = state
        await self._announce(state)
        await self._set_status(
            TicketStatus.AWAITING_APPROVAL,
            f"plan {plan.plan_id} ({plan.playbook}, {len(plan.steps)} steps) needs "
            f"{plan.approver_role.value} approval",
        )

    def _approval_request(
        self,
        approval_id: uuid.UUID,
        plan: PlaybookPlan,
        *,
        kind: ApprovalKind,
        now: datetime,
        run_id: uuid.UUID | None = None,
    ) -> ApprovalRequest:
        triage = self._triage
        assert triage is not None
        minutes = self._policy.approval_window_minutes.get(triage.severity.value, 240)
        return ApprovalRequest(
            approval_id=approval_id,
            ticket_id=self._intake.ticket_id,
            kind=kind,
            plan_id=plan.plan_id,
            run_id=run_id,
            playbook=plan.playbook,
            required_role=plan.approver_role,
            requester_email=str(self._intake.requester.email),
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

    async def _announce(self, state: ApprovalState) -> None:
        """Record a new approval request and send it to the first level of approvers."""
        await workflow.execute_activity_method(
            ApprovalActivities.record_approval,
            ApprovalRecord(request=state.request, status=ApprovalStatus.PENDING),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=f"Request approval ({state.request.kind.value})",
        )
        state.handled = state.status is ApprovalStatus.PENDING
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

    async def _close_messages(self, state: ApprovalState) -> None:
        try:
            await workflow.execute_activity_method(
                NotificationActivities.close_approval_messages,
                CloseApproval(
                    request=state.request,
                    status=state.status,
                    decided_by=state.decided_by,
                    decided_at=state.decided_at or workflow.now(),
                    reason=state.reason,
                ),
                start_to_close_timeout=NOTIFY_TIMEOUT,
                retry_policy=NOTIFY_RETRY,
                summary=f"Show the decision in Slack ({state.status.value})",
            )
        except ActivityError as err:
            workflow.logger.warning("updating the Slack request failed: %s", failure_reason(err))

    async def _remind_and_escalate(self) -> None:
        """Half-way through the window remind the approvers; at 75% escalate a level."""
        now = workflow.now()
        for state in list(self._approvals.values()):
            if state.status is not ApprovalStatus.PENDING or not state.handled:
                continue
            req = state.request
            if not state.reminded and now >= _fraction(req, REMIND_AT):
                state.reminded = True
                await self._notify(state, level=1, reminder=True)
            if not state.escalated and now >= _fraction(req, ESCALATE_AT):
                state.escalated = True
                await self._notify(state, level=2, reminder=True)

    async def _act_on_decisions(self) -> None:
        for state in list(self._approvals.values()):
            if state.handled:
                continue
            if state.status is ApprovalStatus.PENDING:
                await self._announce(state)  # a rollback request made by an update
                continue
            state.handled = True
            await self._record_decision(state)
            req = state.request
            approved = state.status is ApprovalStatus.APPROVED
            if req.kind is ApprovalKind.PLAN:
                plan = self._plans[req.plan_id]
                if approved and state.decided_by is not None:
                    await self._execute(plan, state.decided_by)
                else:
                    await self._set_status(
                        TicketStatus.AWAITING_HUMAN,
                        f"plan rejected by {state.decided_by}: {state.reason or 'no reason'}",
                        actor=state.decided_by or AUTOPILOT,
                    )
            elif approved and req.run_id is not None:
                await self._rollback(self._runs[req.run_id], state.decided_by or AUTOPILOT)

    async def _record_decision(self, state: ApprovalState) -> None:
        accepted = None
        if state.request.kind is ApprovalKind.PLAN and state.status in (
            ApprovalStatus.APPROVED,
            ApprovalStatus.REJECTED,
        ):
            accepted = state.correction is None
        await workflow.execute_activity_method(
            ApprovalActivities.record_approval,
            ApprovalRecord(
                request=state.request,
                status=state.status,
                decided_by=state.decided_by,
                reason=state.reason,
                channel=state.channel,
                correction=state.correction,
                triage_accepted=accepted,
                os_user=state.os_user,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=f"Record the decision: {state.status.value}",
        )
        await self._close_messages(state)

    async def _expire_overdue_approvals(self) -> None:
        now = workflow.now()
        for state in list(self._approvals.values()):
            if state.status is ApprovalStatus.PENDING and now >= state.request.expires_at:
                state.status = ApprovalStatus.EXPIRED
                state.decided_at = now
                state.reason = "no decision before the deadline"
                state.handled = True
                await self._record_decision(state)
                if state.request.kind is ApprovalKind.PLAN:
                    await self._send_text(
                        MessageKind.HOLDING,
                        "Thanks for your patience. A member of the KRUXT team is handling your "
                        "request and will get back to you here.",
                    )
                    await self._set_status(
                        TicketStatus.AWAITING_HUMAN,
                        f"approval {state.request.approval_id} expired without a decision",
                    )

    async def _execute(self, plan: PlaybookPlan, approved_by: str) -> None:
        """Run the approved plan exactly as approved, or refuse if the facts changed."""
        run_id = workflow.uuid4()
        ticket_id = self._intake.ticket_id
        run = RunState(run_id=run_id, plan=plan, status=RunStatus.RUNNING, approved_by=approved_by)
        self._runs[run_id] = run
        await self._set_status(
            TicketStatus.IN_PROGRESS, f"running plan {plan.plan_id}", actor=approved_by
        )
        await self._record_run(run, "approved")
        check = await workflow.execute_activity_method(
            PlaybookActivities.check_preconditions,
            PreconditionCheck(ticket_id=ticket_id, plan=plan),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary="Check the plan's preconditions",
        )
        if not check.ok:
            run.status = RunStatus.REFUSED
            await self._record_run(run, "; ".join(check.failures))
            await self._set_status(
                TicketStatus.AWAITING_HUMAN,
                f"plan refused, facts changed since approval: {'; '.join(check.failures)}",
            )
            return
        result = await run_plan(ticket_id, run_id, plan)
        run.finished_at = workflow.now()
        run.applied = [r.step_id for r in result.applied]
        if result.ok:
            run.status = RunStatus.SUCCEEDED
            await self._record_run(run, "all steps applied")
            await self._send_text(MessageKind.PLAYBOOK_UPDATE, plan.customer_update)
            await self._set_status(
                TicketStatus.AWAITING_CUSTOMER, f"plan {plan.plan_id} applied; customer told"
            )
            return
        run.status = RunStatus.COMPENSATED if result.compensated else RunStatus.FAILED
        await self._record_run(run, f"step {result.failed_step} failed: {result.reason}")
        await self._set_status(
            TicketStatus.AWAITING_HUMAN,
            f"plan {plan.plan_id} failed at {result.failed_step} ({result.reason}); "
            + ("earlier steps undone" if result.compensated else "UNDO INCOMPLETE"),
        )

    async def _rollback(self, run: RunState, approved_by: str) -> None:
        """Undo a completed run, after its rollback was approved."""
        runs = [
            StepRun(
                ticket_id=self._intake.ticket_id,
                plan_id=run.plan.plan_id,
                run_id=run.run_id,
                step=s,
            )
            for s in run.plan.steps
            if s.step_id in run.applied
        ]
        done = await compensate(runs)
        run.status = RunStatus.ROLLED_BACK if done else RunStatus.FAILED
        await self._record_run(run, f"rollback approved by {approved_by}")
        await self._set_status(
            TicketStatus.AWAITING_HUMAN,
            f"run {run.run_id} rolled back" + ("" if done else " INCOMPLETELY"),
            actor=approved_by,
        )

    async def _record_run(self, run: RunState, reason: str) -> None:
        await workflow.execute_activity_method(
            PlaybookActivities.record_run,
            RunRecord(
                ticket_id=self._intake.ticket_id,
                run_id=run.run_id,
                plan=run.plan,
                status=run.status,
                approved_by=run.approved_by,
                reason=reason,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=f"Record run {run.status.value}",
        )

    async def _take_customer_message(self, message: CustomerMessage) -> None:
        try:
            await self._record_inbound(message.message_id, message.body)
        except ActivityError as err:
            if not _bad_data(err) or not workflow.patched(BAD_DATA_PATCH):
                raise
            # Stored repaired, and a person reads it: the ticket goes on.
            await self._record_inbound(message.message_id, replace_unstorable(message.body))
            self._messages_received += 1
            await self._set_status(
                TicketStatus.AWAITING_HUMAN,
                f"a follow-up could not be stored as sent ({failure_reason(err)}); the "
                "characters refused were replaced with U+FFFD",
            )
            return
        self._messages_received += 1
        if self._status is TicketStatus.AWAITING_CUSTOMER:
            # The customer wrote back after an answer: it did not settle it, a person looks.
            await self._set_status(TicketStatus.AWAITING_HUMAN, "the customer replied")

    async def _record_inbound(self, message_id: uuid.UUID, body: str) -> None:
        await workflow.execute_activity_method(
            TicketActivities.record_inbound_message,
            InboundMessageInput(
                ticket_id=self._intake.ticket_id,
                message_id=message_id,
                author=str(self._intake.requester.email),
                body=body,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary="Record the customer's follow-up",
        )

    async def _resolve(self, request: StaffResolve) -> TicketOutcome:
        for state in self._approvals.values():
            if state.status is ApprovalStatus.PENDING:
                state.status = ApprovalStatus.EXPIRED
                state.reason = "the ticket was resolved first"
                state.handled = True
                await self._record_decision(state)
        reason = request.note or "resolved by staff"
        await self._set_status(TicketStatus.RESOLVED, reason, actor=request.actor)
        self._resolved_at = workflow.now()
        await self._sla.stop(ClockKind.RESOLUTION)
        self._next_step = "done"
        self._publish()
        return TicketOutcome(
            ticket_id=self._intake.ticket_id,
            status=self._status,
            resolved_by=request.actor,
            resolved_at=self._resolved_at,
        )

    # -- helpers -------------------------------------------------------------------------

    def _continuation(self, inp: TicketWorkflowInput) -> TicketWorkflowInput:
        return TicketWorkflowInput(
            intake=self._intake,  # as stored: repaired if its text was refused
            policy=inp.policy,
            carry_over=TicketCarryOver(
                status=self._status,
                triage=self._triage,
                first_response_at=self._first_response_at,
                messages_received=self._messages_received,
                approvals=list(self._approvals.values()),
                runs=list(self._runs.values()),
                plans=list(self._plans.values()),
                sla_clocks=self._sla.clocks,
                sla_priority=self._sla.priority,
                incident_id=self._incident_id,
                assignee=self._assignee,
                next_step=self._next_step,
            ),
            sla=inp.sla,
            history_limit=inp.history_limit,
        )

    def _draft_input(self) -> DraftReplyInput:
        intake = self._intake
        assert self._triage is not None
        return DraftReplyInput(
            ticket_id=intake.ticket_id,
            category=self._triage.category,
            requester_name=intake.requester.name,
            subject=intake.subject,
            body=intake.body,
        )

    async def _acknowledge(self) -> None:
        ack: DraftReply = await workflow.execute_activity_method(
            KnowledgeActivities.draft_acknowledgement,
            self._draft_input(),
            start_to_close_timeout=LOCAL_TIMEOUT,
            retry_policy=LOCAL_RETRY,
            summary="Draft the acknowledgement",
        )
        await self._send(MessageKind.ACKNOWLEDGEMENT, ack)

    async def _send_text(self, kind: MessageKind, body: str) -> None:
        await self._send(kind, DraftReply(body=body, article_ids=[]))

    async def _send(self, kind: MessageKind, draft: DraftReply) -> None:
        sent = await workflow.execute_activity_method(
            TicketActivities.send_customer_message,
            OutboundMessageInput(
                ticket_id=self._intake.ticket_id,
                message_id=workflow.uuid4(),
                kind=kind,
                body=draft.body,
                article_ids=draft.article_ids,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=f"Send the {kind.value.replace('_', ' ')} to the customer",
        )
        if sent.first_response and self._first_response_at is None:
            self._first_response_at = sent.sent_at
            await self._sla.stop(ClockKind.FIRST_RESPONSE)

    async def _set_status(self, status: TicketStatus, reason: str, actor: str = AUTOPILOT) -> None:
        await workflow.execute_activity_method(
            TicketActivities.change_status,
            StatusChangeInput(
                ticket_id=self._intake.ticket_id, status=status, actor=actor, reason=reason
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=f"Set status {status.value}",
        )
        previous, self._status = self._status, status
        self._next_step = _NEXT_STEP.get(status, status.value)
        workflow.upsert_search_attributes([sa.TICKET_STATUS.value_set(status.value)])
        # Zendesk's "requester wait": the resolution clock stops while the customer owes us.
        if status is TicketStatus.AWAITING_CUSTOMER:
            self._sla.pause()
        elif previous is TicketStatus.AWAITING_CUSTOMER:
            self._sla.resume()

    def _publish(self) -> None:
        """Refresh what the Web UI shows as this workflow's current details."""
        triage = self._triage
        lines = [
            f"**Status:** {self._status.value} — {self._next_step}",
            f"**Requester:** {self._intake.requester.email} via {self._intake.channel.value}",
        ]
        if self._assignee:
            lines.append(f"**Assignee:** {self._assignee}")
        if triage is not None:
            lines += [
                f"**Triage:** {triage.severity.value} · {triage.category.value} · "
                f"playbook {triage.playbook or 'none'} · confidence {triage.confidence:.2f}",
                f"**Summary:** {triage.summary}",
                f"**Recommended:** {triage.recommended_action}",
            ]
        for state in self._approvals.values():
            req = state.request
            lines.append(
                f"**Approval {str(req.approval_id)[:8]}** ({req.kind.value}, "
                f"{req.required_role.value}): {state.status.value}"
                + (f" by {state.decided_by}" if state.decided_by else "")
                + (
                    f", expires {req.expires_at:%Y-%m-%d %H:%M} UTC"
                    if state.status is ApprovalStatus.PENDING
                    else ""
                )
            )
        for run in self._runs.values():
            lines.append(
                f"**Run {str(run.run_id)[:8]}** ({run.plan.playbook}): {run.status.value}, "
                f"approved by {run.approved_by}"
            )
        if self._sla.started:
            lines.append(f"**SLA:** {self._sla.summary().line()}")
        if self._incident_id is not None:
            lines.append(f"**Incident:** {self._incident_id}")
        if self._first_response_at is not None:
            lines.append(f"**First response:** {self._first_response_at.isoformat()}")
        if self._messages_received:
            lines.append(f"**Follow-ups received:** {self._messages_received}")
        workflow.set_current_details("\n\n".join(lines))


# When, in an approval's window, approvers are reminded and the next level is asked.
REMIND_AT = 0.5
ESCALATE_AT = 0.75


def _untriaged(reason: str) -> TriageOutcome:
    """What routing reads when the rules triager gave up: nothing known, so a person decides."""
    return TriageOutcome(
        result=TriageResult(
            summary="Not triaged: the rules triager failed on this ticket.",
            severity=Priority.P3,
            category=Category.OTHER,
            probable_root_cause="unknown (triage failed)",
            recommended_action="A person reads and triages the ticket.",
            confidence=0.0,
        ),
        model="none",
        prompt_version="none",
        input_digest="",
        fallback_reason=f"triage failed: {reason}",
    )


def _bad_data(err: ActivityError) -> bool:
    """The activity refused its input as data no retry can store (``BadTicketData``)."""
    cause = err.cause
    return isinstance(cause, ApplicationError) and cause.type == BAD_DATA_ERROR


def _repaired(intake: TicketIntake) -> TicketIntake:
    """The intake with every character Postgres (or intake) refuses replaced by U+FFFD."""
    requester = intake.requester
    return intake.model_copy(
        update={
            "external_id": replace_unstorable(intake.external_id),
            "account_id": replace_unstorable(intake.account_id) if intake.account_id else None,
            "subject": replace_unstorable(intake.subject),
            "body": replace_unstorable(intake.body),
            "requester": Requester.model_construct(
                id=replace_unstorable(requester.id),
                email=requester.email,
                name=replace_unstorable(requester.name),
            ),
        }
    )


def _fraction(request: ApprovalRequest, fraction: float) -> datetime:
    return request.requested_at + (request.expires_at - request.requested_at) * fraction


_NEXT_STEP = {
    TicketStatus.AWAITING_HUMAN: "waiting for a person to pick it up",
    TicketStatus.AWAITING_APPROVAL: "waiting for an approver",
    TicketStatus.AWAITING_CUSTOMER: "answered; waiting for the customer",
    TicketStatus.IN_PROGRESS: "running an approved playbook",
    TicketStatus.RESOLVED: "done",
}

__all__ = [
    "BAD_DATA_PATCH",
    "PLAYBOOKS_PATCH",
    "SLA_PATCH",
    "TRIAGE_AGENTS_PATCH",
    "TicketWorkflow",
]
