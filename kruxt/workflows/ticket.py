"""TicketWorkflow: one durable workflow per support ticket, from intake to resolution."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import Priority as TaskPriority
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from kruxt.activities.incidents import IncidentActivities
    from kruxt.activities.tickets import TicketActivities
    from kruxt.models import search_attributes as sa
    from kruxt.models.approvals import (
        ApprovalKind,
        ApprovalStatus,
        Decision,
        DecisionChannel,
        DecisionOutcome,
        RollbackRequest,
    )
    from kruxt.models.defects import ticket_defect
    from kruxt.models.enums import Priority, TicketStatus
    from kruxt.models.incidents import (
        IncidentJoin,
        IncidentResolved,
        OpenIncidentInput,
        incident_key,
    )
    from kruxt.models.lifecycle import SolvedHow, is_confirmation, is_thanks
    from kruxt.models.playbooks import PlaybookPlan, RunStatus
    from kruxt.models.records import (
        AssignInput,
        DraftReply,
        InboundMessageInput,
        MessageKind,
        OutboundMessageInput,
        PersistTicketInput,
        PriorityChangeInput,
        RecordTriageInput,
    )
    from kruxt.models.sla import ClockKind, SlaEventKind, SlaSummary
    from kruxt.models.text import replace_unstorable
    from kruxt.models.tickets import (
        CustomerMessage,
        StaffAssign,
        StaffMessage,
        StaffPriorityChange,
        StaffResolve,
        TicketIntake,
        TicketOutcome,
        TicketState,
        TicketWorkflowInput,
        TicketWorkflowState,
        ticket_state,
    )
    from kruxt.models.triage import TriageResult
    from kruxt.workflows.approvals import ApprovalGate, approval_request, requester_refusal
    from kruxt.workflows.defect_issue import (
        FILES_DEFECT_ISSUES,
        SOLVED_TICKETS_REPORT_DEFECTS,
        report_defect,
    )
    from kruxt.workflows.failures import failure_reason
    from kruxt.workflows.policies import db_activity
    from kruxt.workflows.revisions import Patches, Revision
    from kruxt.workflows.runs import ROLLBACK_TOLD, RunLedger
    from kruxt.workflows.sla import SlaTracker
    from kruxt.workflows.ticket_details import render_details
    from kruxt.workflows.ticket_lifecycle import CLOSING_TEXT, TICKET_LIFECYCLE, Due, Lifecycle
    from kruxt.workflows.ticket_news import (
        INCIDENT_NEWS_AS_IT_IS,
        ONE_NEWS_PER_INCIDENT,
        tell_incident_news,
    )
    from kruxt.workflows.ticket_priority import PRIORITY_BY_SEVERITY, task_priority
    from kruxt.workflows.ticket_repair import bad_data, repaired
    from kruxt.workflows.ticket_routing import route
    from kruxt.workflows.ticket_steps import AUTOPILOT, DELIVERY_REFUSED, TicketSteps
    from kruxt.workflows.ticket_triage import triage as triage_ticket

T = TypeVar("T")

# workflow.patched: the channel a ticket came by is searchable from its start (the intake's
# start options set it), so the workflow upserts it only when its starter did not.
CHANNEL_SET_AT_START = "channel-searchable-from-start"

# A ticket started on this revision takes all these changes with one marker in its history
# (kruxt.workflows.revisions); a change after it gets its own patch until the next revision.
REVISION_2026_12 = Revision(
    "ticket-revision-2026-12",
    frozenset(
        {
            CHANNEL_SET_AT_START,
            DELIVERY_REFUSED,
            FILES_DEFECT_ISSUES,
            INCIDENT_NEWS_AS_IT_IS,
            ONE_NEWS_PER_INCIDENT,
            PRIORITY_BY_SEVERITY,
            ROLLBACK_TOLD,
            SOLVED_TICKETS_REPORT_DEFECTS,
            TICKET_LIFECYCLE,
        }
    ),
)


def _drain(queue: list[T]) -> Iterator[T]:
    """The items of ``queue`` oldest first, each taken off as it comes (signals may add more)."""
    while queue:
        yield queue.pop(0)


@workflow.defn
class TicketWorkflow:
    """Persist, triage, route; then follow the conversation, approvals and playbook runs
    until a person resolves the ticket."""

    @workflow.init
    def __init__(self, inp: TicketWorkflowInput) -> None:
        # First: the revision's marker belongs to the run's first workflow task.
        self._patches = Patches(REVISION_2026_12)
        # One state, carried whole; the approvals and the SLA clocks are run by their helpers
        # and put back into it whenever it is handed out (query, details, continuation).
        self._state = inp.carry_over or TicketWorkflowState()
        self._intake = inp.intake
        self._policy = inp.policy
        self._gate = ApprovalGate(approvals=self._state.approvals, plans=self._state.plans)
        self._sla = SlaTracker(
            inp.intake.ticket_id,
            inp.sla,
            clocks=self._state.sla_clocks,
            priority=self._state.sla_priority,
        )
        self._steps = TicketSteps(
            inp.intake.ticket_id, self._state, self._sla, self._publish, self._patches
        )
        self._runs = RunLedger(inp.intake.ticket_id, self._state.runs, self._steps, self._patches)
        self._lifecycle = Lifecycle(
            inp.intake.ticket_id, inp.policy, self._state.lifecycle, self._patches
        )
        # Signals waiting for the main loop; always drained before a continue-as-new.
        self._priority_changes: list[StaffPriorityChange] = []
        self._assignments: list[StaffAssign] = []
        self._incident_news: list[IncidentResolved] = []
        self._news_heard: set[uuid.UUID] = set()
        self._inbox: list[CustomerMessage] = []
        # Staff replies (to the customer) and internal notes, in the order they were written.
        self._staff_messages: list[tuple[MessageKind, StaffMessage]] = []
        self._resolve_request: StaffResolve | None = None
        # The customer pressed the confirm link of an answer (kruxt.adapters.email_tokens).
        self._confirmed_by_link = False
        self._history_limit = inp.history_limit
        # Activities carry the ticket's severity as their task priority (patched, once triaged).
        self._by_severity = False

    def task_priority(self) -> TaskPriority | None:
        """The task priority of the activities scheduled now: the ticket's severity once
        triaged (``kruxt.workflows.ticket_priority.TaskPriorityInterceptor`` applies it)."""
        return task_priority(self._sla.priority) if self._by_severity else None

    @workflow.run
    async def run(self, inp: TicketWorkflowInput) -> TicketOutcome:
        """Drive the ticket; returns when a staff member resolves it."""
        if inp.carry_over is None:
            refused = await self._persist()
            if refused is not None:
                await self._to_a_person_unread(refused)
            else:
                triage = await self._run_triage()
                # The clocks run from the ticket's arrival, not from the end of triage.
                self._sla.start(triage.severity, self._intake.received_at)
                if triage.severity in (Priority.P1, Priority.P2):
                    await self._open_or_join_incident(triage)
                await route(triage, self._intake, self._policy, self._steps, self._request_approval)
        else:
            self._by_severity = self._patches.patched(PRIORITY_BY_SEVERITY)
        while True:
            self._lifecycle.observe(self._state.status)
            self._publish()
            await self._wait_for_work()
            # Messages first: a follow-up that raced the resolve is still recorded.
            while self._inbox:
                await self._take_customer_message(self._inbox.pop(0))
            await self._take_staff_messages()
            if self._confirmed_by_link:
                await self._confirm_by_link()
            await self._check_sla()
            await self._apply_priority_changes()
            await self._apply_assignments()
            await self._share_incident_news()
            await self._expire_overdue_approvals()
            await self._gate.remind_and_escalate()
            await self._act_on_decisions()
            if self._resolve_request is not None:
                outcome = await self._resolve(self._resolve_request)
                # Follow-ups that arrived while resolving are recorded, never dropped.
                while self._inbox:
                    await self._take_customer_message(self._inbox.pop(0))
                if not self._lifecycle.on:
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    return outcome
            closed = await self._settle()
            if closed is not None:
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self._has_work():
                    return closed
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
    def confirm(self, source: str) -> None:
        """The customer confirmed that the answer worked (``source``: how, for the log)."""
        self._confirmed_by_link = True
        workflow.logger.info("confirmed by the customer with %s", source[:40])

    @workflow.signal
    def resolve(self, request: StaffResolve) -> None:
        """A staff member resolves the ticket; the first request wins (a solved one stays so)."""
        if self._resolve_request is None and self._state.status is not TicketStatus.RESOLVED:
            self._resolve_request = request
            self._state.resolved_by = request.actor

    @workflow.signal
    def staff_reply(self, message: StaffMessage) -> None:
        """A staff member's reply to the customer, sent through the ticket's channel."""
        self._staff_messages.append((MessageKind.AGENT_REPLY, message))

    @workflow.signal
    def staff_note(self, message: StaffMessage) -> None:
        """A staff member's internal note: kept in the thread for staff, never sent out."""
        self._staff_messages.append((MessageKind.STAFF_NOTE, message))

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
        if news.incident_id in self._news_heard and self._patches.patched(ONE_NEWS_PER_INCIDENT):
            return
        self._news_heard.add(news.incident_id)
        self._incident_news.append(news)

    @workflow.signal
    def incident_attached(self, join: IncidentJoin) -> None:
        """A later ticket of this one's cause made their cluster an incident: it is ours too."""
        if self._state.incident_id is None:
            self._state.incident_id = join.incident_id

    @workflow.update
    def decide(self, decision: Decision) -> DecisionOutcome:
        """An approver's decision on a pending approval; the first decision wins."""
        return self._gate.decide(decision)

    @decide.validator
    def _validate_decide(self, decision: Decision) -> None:
        reason = self._gate.refusal(decision)
        if reason is not None:
            raise ValueError(reason)

    @workflow.update
    def request_rollback(self, request: RollbackRequest) -> uuid.UUID:
        """Ask to undo a completed playbook run; returns the approval that must decide it."""
        run = self._state.run(request.run_id)
        assert run is not None  # the validator checked it
        assert self._state.triage is not None  # a run follows a triaged, approved plan
        approval_id = workflow.uuid4()
        rollback = approval_request(
            approval_id,
            run.plan,
            kind=ApprovalKind.ROLLBACK,
            intake=self._intake,
            triage=self._state.triage,
            policy=self._policy,
            now=workflow.now(),
            run_id=run.run_id,
        )
        # Whoever asked may not approve it; approvers come from the plan's snapshot.
        rollback.requested_by = request.actor
        rollback.requested_channel = request.channel
        rollback.requested_os_user = request.os_user
        rollback.directory = self._gate.directory_of(run.plan.plan_id)
        self._gate.request(rollback, request.reason)
        return approval_id

    @request_rollback.validator
    def _validate_rollback(self, request: RollbackRequest) -> None:
        run = self._state.run(request.run_id)
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
        if self._gate.rollback_requested(request.run_id):
            raise ValueError(f"a rollback of run {request.run_id} is already requested")
        refused = requester_refusal(self._gate.directory_of(run.plan.plan_id), request.actor)
        if refused is not None:
            raise ValueError(refused)

    @workflow.query
    def state(self) -> TicketState:
        """Where the ticket stands."""
        return ticket_state(self._intake.ticket_id, self._snapshot(), self._sla_summary())

    # -- the main loop's helpers ---------------------------------------------------------

    def _has_work(self) -> bool:
        return bool(
            self._inbox
            or self._staff_messages
            or self._confirmed_by_link
            or self._resolve_request is not None
            or self._priority_changes
            or self._assignments
            or self._incident_news
            or self._gate.needs_action()
        )

    def _continue_due(self) -> bool:
        """Time to continue-as-new: the server suggests it, or the test limit is reached."""
        info = workflow.info()
        limit = self._history_limit
        # Without a limit (production) this is the server's suggestion alone, as before.
        return info.is_continue_as_new_suggested() or (
            limit is not None and info.get_current_history_length() >= limit
        )

    async def _wait_for_work(self) -> None:
        """Sleep until a signal, an update or the next approval deadline."""
        condition = lambda: self._has_work() or self._continue_due()  # noqa: E731
        deadline = self._gate.next_deadline()
        sla_timeout = self._sla.timeout()
        lifecycle = self._lifecycle.timeout(self._state.status) if self._lifecycle.on else None
        if deadline is None and sla_timeout is None and lifecycle is None:
            await workflow.wait_condition(condition)
            return
        candidates = [t for t in (sla_timeout, lifecycle) if t is not None]
        if deadline is not None:
            candidates.append(deadline - workflow.now())
        remaining = max(min(candidates), timedelta(seconds=1))
        # Reaching the deadline is itself the work: expiry is checked next.
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(condition, timeout=remaining)

    # -- SLA, priority and incidents -----------------------------------------------------

    async def _check_sla(self) -> None:
        """Send the SLA warnings and breaches that are due; flag at-risk tickets for search."""
        if not self._sla.started or self._state.triage is None:
            return
        events = await self._sla.check(summary=self._state.triage.summary)
        if any(e.kind is SlaEventKind.WARNING for e in events):
            workflow.upsert_search_attributes([sa.SLA_AT_RISK.value_set(True)])

    async def _apply_priority_changes(self) -> None:
        for change in _drain(self._priority_changes):
            await db_activity(
                TicketActivities.change_priority,
                PriorityChangeInput(
                    ticket_id=self._intake.ticket_id,
                    priority=change.priority,
                    actor=change.actor,
                    reason=change.reason,
                    via=change.channel,
                ),
                f"Set priority {change.priority.value}",
            )
            if self._state.triage is not None:
                self._state.triage = self._state.triage.model_copy(
                    update={"severity": change.priority}
                )
            self._sla.retarget(change.priority)
            workflow.upsert_search_attributes([sa.TICKET_PRIORITY.value_set(change.priority.value)])

    async def _apply_assignments(self) -> None:
        for assignment in _drain(self._assignments):
            assignee = str(assignment.assignee)
            await db_activity(
                TicketActivities.assign,
                AssignInput(
                    ticket_id=self._intake.ticket_id,
                    assignee=assignee,
                    actor=assignment.actor,
                    via=assignment.channel,
                ),
                f"Assign to {assignment.assignee}",
            )
            self._state.assignee = assignee

    async def _open_or_join_incident(self, triage: TriageResult) -> None:
        """A P1 opens an incident, or joins the open one with the same cause; a P2 joins it,
        or counts toward its cause's cluster (``IncidentStore.place`` decides)."""
        join = await db_activity(
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
            f"Open or join the {triage.severity.value} incident",
        )
        self._state.incident_id = join.incident_id

    async def _share_incident_news(self) -> None:
        while self._incident_news:
            news = self._incident_news.pop(0)
            if self._patches.patched(INCIDENT_NEWS_AS_IT_IS):
                await tell_incident_news(news, self._state, self._steps)
                continue
            note = f" {news.note}" if news.note else ""
            await self._steps.send_text(
                MessageKind.INCIDENT_UPDATE,
                "Good news: the problem behind your ticket has been fixed." + note + " If "
                "anything still looks wrong, reply here and we will pick it up.",
            )
            if self._state.status is not TicketStatus.RESOLVED:
                await self._steps.set_status(
                    TicketStatus.AWAITING_CUSTOMER,
                    f"incident {news.incident_id} resolved by {news.by}",
                    actor=news.by,
                )

    # -- intake, triage and routing ------------------------------------------------------

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
            if not bad_data(err):
                raise
            refused = failure_reason(err)
            self._intake = repaired(self._intake)
            await self._store_intake()
        started_with = workflow.info().typed_search_attributes.get(sa.CHANNEL)
        if started_with is None or not self._patches.patched(CHANNEL_SET_AT_START):
            workflow.upsert_search_attributes([sa.CHANNEL.value_set(self._intake.channel.value)])
        return refused

    async def _store_intake(self) -> None:
        await db_activity(
            TicketActivities.persist_ticket,
            PersistTicketInput(intake=self._intake, workflow_id=workflow.info().workflow_id),
            "Store the ticket and its first message",
        )

    async def _to_a_person_unread(self, refused: str) -> None:
        """A ticket whose text was repaired is not triaged on it: a person reads it first."""
        await self._steps.hold_for_a_person(
            "Thanks for your message. A member of the KRUXT team will read it and get back to "
            "you here.",
            f"routed to a person: the ticket's text could not be stored as sent ({refused}); "
            "the characters refused were replaced with U+FFFD",
        )

    async def _run_triage(self, intake: TicketIntake | None = None) -> TriageResult:
        """Triage the ticket (``intake``: a reopened ticket's new message instead)."""
        self._steps.announce("triaging")
        intake = intake or self._intake
        outcome = await triage_ticket(intake)
        await db_activity(
            TicketActivities.record_triage,
            RecordTriageInput(ticket_id=intake.ticket_id, outcome=outcome),
            "Record the triage run",
        )
        triage = outcome.result
        self._state.triage = triage
        self._state.status = TicketStatus.TRIAGED
        self._by_severity = self._patches.patched(PRIORITY_BY_SEVERITY)
        workflow.upsert_search_attributes(
            [
                sa.TICKET_STATUS.value_set(self._state.status.value),
                sa.TICKET_PRIORITY.value_set(triage.severity.value),
                sa.PLAYBOOK.value_set(triage.playbook)
                if triage.playbook
                else sa.PLAYBOOK.value_unset(),
            ]
        )
        return triage

    # -- approvals and playbook runs -----------------------------------------------------

    async def _request_approval(self, plan: PlaybookPlan) -> None:
        """Open the approval of a proposed plan; routing calls this for a playbook ticket."""
        assert self._state.triage is not None
        request = approval_request(
            workflow.uuid4(),
            plan,
            kind=ApprovalKind.PLAN,
            intake=self._intake,
            triage=self._state.triage,
            policy=self._policy,
            now=workflow.now(),
        )
        await self._gate.open(plan, request)
        await self._steps.set_status(
            TicketStatus.AWAITING_APPROVAL,
            f"plan {plan.plan_id} ({plan.playbook}, {len(plan.steps)} steps) needs "
            f"{plan.approver_role.value} approval",
        )

    async def _act_on_decisions(self) -> None:
        async for state in self._gate.decisions():
            req = state.request
            approved = state.status is ApprovalStatus.APPROVED
            if req.kind is ApprovalKind.PLAN:
                plan = self._gate.plan(req.plan_id)
                if approved and state.decided_by is not None:
                    await self._runs.execute(plan, state.decided_by)
                else:
                    await self._steps.set_status(
                        TicketStatus.AWAITING_HUMAN,
                        f"plan rejected by {state.decided_by}: {state.reason or 'no reason'}",
                        actor=state.decided_by or AUTOPILOT,
                    )
            elif approved and req.run_id is not None:
                run = self._state.run(req.run_id)
                assert run is not None  # rollbacks are only requested for this ticket's runs
                await self._runs.rollback(run, state.decided_by or AUTOPILOT)

    async def _expire_overdue_approvals(self) -> None:
        async for state in self._gate.expire_overdue():
            if state.request.kind is ApprovalKind.PLAN:
                await self._steps.hold_for_a_person(
                    "Thanks for your patience. A member of the KRUXT team is handling your "
                    "request and will get back to you here.",
                    f"approval {state.request.approval_id} expired without a decision",
                )

    # -- the conversation and the end ----------------------------------------------------

    async def _take_customer_message(self, message: CustomerMessage) -> None:
        try:
            await self._record_inbound(message.message_id, message.body)
        except ActivityError as err:
            if not bad_data(err):
                raise
            # Stored repaired, and a person reads it: the ticket goes on.
            await self._record_inbound(message.message_id, replace_unstorable(message.body))
            self._state.messages_received += 1
            await self._steps.set_status(
                TicketStatus.AWAITING_HUMAN,
                f"a follow-up could not be stored as sent ({failure_reason(err)}); the "
                "characters refused were replaced with U+FFFD",
            )
            return
        self._state.messages_received += 1
        if self._lifecycle.on and await self._lifecycle_message(message):
            return
        if self._state.status is TicketStatus.AWAITING_CUSTOMER:
            # The customer wrote back after an answer: it did not settle it, a person looks.
            await self._steps.set_status(TicketStatus.AWAITING_HUMAN, "the customer replied")

    async def _take_staff_messages(self) -> None:
        """Send the staff's replies through the ticket's channel and keep their notes; a reply
        to a ticket waiting on a person now waits on the customer."""
        while self._staff_messages:
            kind, message = self._staff_messages.pop(0)
            if kind is MessageKind.STAFF_NOTE:
                await db_activity(
                    TicketActivities.attach_draft,  # an internal note, as drafts are kept
                    OutboundMessageInput(
                        ticket_id=self._intake.ticket_id,
                        message_id=message.message_id,
                        kind=kind,
                        body=message.body,
                        author=message.actor,
                        via=message.channel,
                    ),
                    "Keep a staff note",
                )
                continue
            await self._steps.send(
                kind, DraftReply(body=message.body, article_ids=[]), staff=message
            )
            if self._state.status in (TicketStatus.AWAITING_HUMAN, TicketStatus.REOPENED):
                await self._steps.set_status(
                    TicketStatus.AWAITING_CUSTOMER,
                    f"answered by {message.actor}",
                    actor=message.actor,
                    via=message.channel,
                )

    async def _record_inbound(self, message_id: uuid.UUID, body: str) -> None:
        await db_activity(
            TicketActivities.record_inbound_message,
            InboundMessageInput(
                ticket_id=self._intake.ticket_id,
                message_id=message_id,
                author=str(self._intake.requester.email),
                body=body,
            ),
            "Record the customer's follow-up",
        )

    async def _resolve(self, request: StaffResolve) -> TicketOutcome:
        await self._resolved(
            SolvedHow.STAFF,
            request.note or "resolved by staff",
            actor=request.actor,
            marked=request.defect,
            prevention=request.prevention,
            via=request.channel,
        )
        if self._lifecycle.on:
            self._resolve_request = None
        self._steps.announce("done")
        return TicketOutcome(
            ticket_id=self._intake.ticket_id,
            status=self._state.status,
            resolved_by=request.actor,
            resolved_at=self._state.resolved_at,
        )

    async def _resolved(
        self,
        how: SolvedHow,
        reason: str,
        *,
        actor: str = AUTOPILOT,
        marked: bool = False,
        prevention: str = "",
        via: DecisionChannel | None = None,
    ) -> None:
        """Every resolution, by staff or by the customer's side (confirmed, assumed): pending
        approvals closed, resolved, the clock stopped, a product defect reported (triage
        called it one, or the resolver marked it), the reopen window opened."""
        by_staff = how is SolvedHow.STAFF
        await self._gate.close_pending(
            "the ticket was resolved first" if by_staff else "the ticket was solved first"
        )
        await self._steps.set_status(TicketStatus.RESOLVED, reason, actor=actor, via=via)
        self._state.resolved_at = workflow.now()
        await self._sla.stop(ClockKind.RESOLUTION)
        defect = ticket_defect(
            self._intake.ticket_id,
            self._state.triage,
            marked=marked,
            resolved_by=actor,
            prevention=prevention,
            at=workflow.now(),
        )
        files = FILES_DEFECT_ISSUES if by_staff else SOLVED_TICKETS_REPORT_DEFECTS
        if defect is not None and self._patches.patched(files):
            await report_defect(defect)
        if self._lifecycle.on:
            self._state.resolved_by = actor
            await self._lifecycle.solved(how, actor)

    # -- the lifecycle after the answer (kruxt.workflows.ticket_lifecycle) ---------------

    async def _settle(self) -> TicketOutcome | None:
        """Solve a ticket the customer left silent; the outcome once the reopen window ended."""
        if not self._lifecycle.on:
            return None
        due = self._lifecycle.due(self._state.status)
        if due is Due.AUTO_SOLVE:
            await self._steps.send_text(MessageKind.CLOSING, CLOSING_TEXT)
            if self._state.status is TicketStatus.AWAITING_CUSTOMER:  # not refused on the way
                await self._resolved(SolvedHow.ASSUMED, "no reply from the customer: assumed")
        elif due is Due.CLOSE:
            self._steps.announce("closed")
            return TicketOutcome(
                ticket_id=self._intake.ticket_id,
                status=self._state.status,
                resolved_by=self._state.resolved_by,
                resolved_at=self._state.resolved_at,
            )
        return None

    async def _confirm_by_link(self) -> None:
        """A confirmation by link solves a ticket waiting on the customer, as their message
        would; on any other status it changes nothing (the API told them so)."""
        self._confirmed_by_link = False
        if self._lifecycle.on and self._state.status is TicketStatus.AWAITING_CUSTOMER:
            self._lifecycle.replied()
            await self._resolved(SolvedHow.CONFIRMED, "the customer confirmed with the link")

    async def _lifecycle_message(self, message: CustomerMessage) -> bool:
        """A customer message the lifecycle takes: a confirmation solves the ticket, one
        within the reopen window reopens it; False when it is an ordinary follow-up."""
        status = self._state.status
        self._lifecycle.replied()
        if status is TicketStatus.AWAITING_CUSTOMER and is_confirmation(message.body):
            await self._resolved(SolvedHow.CONFIRMED, "the customer confirmed the answer worked")
            return True
        if not self._lifecycle.reopens(status):
            return False
        if is_thanks(message.body):
            return True  # recorded; a thank-you after the solve reopens nothing
        requester = str(self._intake.requester.email)
        await self._lifecycle.reopened(requester)
        await self._steps.set_status(
            TicketStatus.REOPENED, "the customer wrote within the reopen window", actor=requester
        )
        self._state.resolved_at = self._state.resolved_by = None
        # The new exchange is triaged on the new message; its clocks run from now.
        intake = self._intake.model_copy(
            update={"body": message.body, "received_at": message.received_at}
        )
        triage = await self._run_triage(intake)
        self._sla.restart(triage.severity, workflow.now())
        if triage.severity in (Priority.P1, Priority.P2):
            await self._open_or_join_incident(triage)
        await route(triage, intake, self._policy, self._steps, self._request_approval)
        return True

    # -- helpers -------------------------------------------------------------------------

    def _continuation(self, inp: TicketWorkflowInput) -> TicketWorkflowInput:
        return TicketWorkflowInput(
            intake=self._intake,  # as stored: repaired if its text was refused
            policy=inp.policy,
            carry_over=self._snapshot(),
            sla=inp.sla,
            history_limit=inp.history_limit,
        )

    def _snapshot(self) -> TicketWorkflowState:
        """The whole state, with the approvals' and the clocks' parts as they stand."""
        return self._state.model_copy(
            update={
                "approvals": self._gate.approvals,
                "plans": self._gate.plans,
                "sla_clocks": self._sla.clocks,
                "sla_priority": self._sla.priority,
            }
        )

    def _sla_summary(self) -> SlaSummary | None:
        return self._sla.summary() if self._sla.started else None

    def _publish(self) -> None:
        """Refresh what the Web UI shows as this workflow's current details."""
        details = render_details(self._intake, self._snapshot(), self._sla_summary())
        workflow.set_current_details(details)


__all__ = ["TicketWorkflow"]
