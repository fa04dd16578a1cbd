"""TicketWorkflow: one durable workflow per support ticket, from intake to resolution."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as TimeoutError_

with workflow.unsafe.imports_passed_through():
    from kruxt.activities.context import ContextActivities
    from kruxt.activities.knowledge import KnowledgeActivities
    from kruxt.activities.llm_triage import LlmTriageActivities
    from kruxt.activities.tickets import TicketActivities
    from kruxt.activities.triage import TriageActivities
    from kruxt.models import search_attributes as sa
    from kruxt.models.context import ContextInput
    from kruxt.models.enums import TicketStatus
    from kruxt.models.records import (
        DraftReply,
        DraftReplyInput,
        InboundMessageInput,
        MessageKind,
        OutboundMessageInput,
        PersistTicketInput,
        RecordTriageInput,
        StatusChangeInput,
    )
    from kruxt.models.tickets import (
        CustomerMessage,
        StaffResolve,
        TicketCarryOver,
        TicketOutcome,
        TicketState,
        TicketWorkflowInput,
    )
    from kruxt.models.triage import TriageInput, TriageOutcome, TriageResult
    from kruxt.workflows.policies import (
        DB_RETRY,
        DB_TIMEOUT,
        LLM_DEADLINE,
        LLM_RETRY,
        LLM_TIMEOUT,
        LOCAL_RETRY,
        LOCAL_TIMEOUT,
    )
    from kruxt.workflows.routing import Route, decide_route

AUTOPILOT = "autopilot"
# Tickets started before the context + LLM triage steps replay without them.
TRIAGE_AGENTS_PATCH = "triage-agents-v1"


@workflow.defn
class TicketWorkflow:
    """Persist, triage, route, then follow the conversation until a person resolves it."""

    @workflow.init
    def __init__(self, inp: TicketWorkflowInput) -> None:
        carry = inp.carry_over or TicketCarryOver(status=TicketStatus.NEW)
        self._intake = inp.intake
        self._status = carry.status
        self._triage: TriageResult | None = carry.triage
        self._first_response_at: datetime | None = carry.first_response_at
        self._messages_received = carry.messages_received
        self._inbox: list[CustomerMessage] = []
        self._resolve_request: StaffResolve | None = None
        self._resolved_at: datetime | None = None
        self._next_step = "persisting the ticket"

    @workflow.run
    async def run(self, inp: TicketWorkflowInput) -> TicketOutcome:
        """Drive the ticket; returns when a staff member resolves it."""
        if inp.carry_over is None:
            await self._persist()
            triage = await self._run_triage()
            await self._route(triage, inp)
        while True:
            self._publish()
            await workflow.wait_condition(
                lambda: (
                    bool(self._inbox)
                    or self._resolve_request is not None
                    or workflow.info().is_continue_as_new_suggested()
                )
            )
            # Messages first: a follow-up that raced the resolve is still recorded.
            while self._inbox:
                await self._take_customer_message(self._inbox.pop(0))
            if self._resolve_request is not None:
                outcome = await self._resolve(self._resolve_request)
                # Follow-ups that arrived while resolving are recorded, never dropped.
                while self._inbox:
                    await self._take_customer_message(self._inbox.pop(0))
                await workflow.wait_condition(workflow.all_handlers_finished)
                return outcome
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._inbox or self._resolve_request is not None:
                    continue  # a signal arrived meanwhile: handle it in this run first
                workflow.continue_as_new(
                    TicketWorkflowInput(
                        intake=inp.intake,
                        policy=inp.policy,
                        carry_over=TicketCarryOver(
                            status=self._status,
                            triage=self._triage,
                            first_response_at=self._first_response_at,
                            messages_received=self._messages_received,
                        ),
                    )
                )

    # -- signals and queries -------------------------------------------------------------

    @workflow.signal
    def customer_message(self, message: CustomerMessage) -> None:
        """A follow-up from the requester."""
        self._inbox.append(message)

    @workflow.signal
    def resolve(self, request: StaffResolve) -> None:
        """A staff member resolves the ticket; the first request wins."""
        if self._resolve_request is None:
            self._resolve_request = request

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
        )

    # -- steps ---------------------------------------------------------------------------

    async def _persist(self) -> None:
        await workflow.execute_activity_method(
            TicketActivities.persist_ticket,
            PersistTicketInput(intake=self._intake, workflow_id=workflow.info().workflow_id),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary="Store the ticket and its first message",
        )
        workflow.upsert_search_attributes([sa.CHANNEL.value_set(self._intake.channel.value)])

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
            return await workflow.execute_activity_method(
                LlmTriageActivities.triage_with_llm,
                inp,
                start_to_close_timeout=LLM_TIMEOUT,
                schedule_to_close_timeout=LLM_DEADLINE,
                retry_policy=LLM_RETRY,
                summary="Triage with the LLM",
            )
        except ActivityError as err:
            reason = _failure_reason(err)
        outcome = await self._triage_with_rules(inp)
        return outcome.model_copy(update={"fallback_reason": reason})

    async def _triage_with_rules(self, inp: TriageInput) -> TriageOutcome:
        return await workflow.execute_activity_method(
            TriageActivities.triage_with_rules,
            inp,
            start_to_close_timeout=LOCAL_TIMEOUT,
            retry_policy=LOCAL_RETRY,
            summary="Triage with the rules triager",
        )

    async def _route(self, triage: TriageResult, inp: TicketWorkflowInput) -> None:
        decision = decide_route(triage, inp.policy)
        if decision.route is Route.AUTO_REPLY:
            self._next_step = "drafting a reply from the knowledge base"
            self._publish()
            draft: DraftReply | None = await workflow.execute_activity_method(
                KnowledgeActivities.draft_reply,
                self._draft_input(),
                start_to_close_timeout=LOCAL_TIMEOUT,
                retry_policy=LOCAL_RETRY,
                summary="Draft a reply from the knowledge base",
            )
            if draft is not None:
                await self._send(MessageKind.AUTO_REPLY, draft)
                await self._set_status(
                    TicketStatus.AWAITING_CUSTOMER,
                    f"auto-replied ({decision.reason}) citing {', '.join(draft.article_ids)}",
                )
                return
            decision_reason = f"{decision.reason}, but no knowledge article covers it"
        else:
            decision_reason = decision.reason
        ack: DraftReply = await workflow.execute_activity_method(
            KnowledgeActivities.draft_acknowledgement,
            self._draft_input(),
            start_to_close_timeout=LOCAL_TIMEOUT,
            retry_policy=LOCAL_RETRY,
            summary="Draft the acknowledgement",
        )
        await self._send(MessageKind.ACKNOWLEDGEMENT, ack)
        await self._set_status(
            TicketStatus.AWAITING_HUMAN, f"routed to a person: {decision_reason}"
        )

    async def _take_customer_message(self, message: CustomerMessage) -> None:
        await workflow.execute_activity_method(
            TicketActivities.record_inbound_message,
            InboundMessageInput(
                ticket_id=self._intake.ticket_id,
                message_id=message.message_id,
                author=str(self._intake.requester.email),
                body=message.body,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary="Record the customer's follow-up",
        )
        self._messages_received += 1
        if self._status is TicketStatus.AWAITING_CUSTOMER:
            # The customer wrote back after an answer: it did not settle it, a person looks.
            await self._set_status(TicketStatus.AWAITING_HUMAN, "the customer replied")

    async def _resolve(self, request: StaffResolve) -> TicketOutcome:
        reason = request.note or "resolved by staff"
        await self._set_status(TicketStatus.RESOLVED, reason, actor=request.actor)
        self._resolved_at = workflow.now()
        self._next_step = "done"
        self._publish()
        return TicketOutcome(
            ticket_id=self._intake.ticket_id,
            status=self._status,
            resolved_by=request.actor,
            resolved_at=self._resolved_at,
        )

    # -- helpers -------------------------------------------------------------------------

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
        self._status = status
        self._next_step = _NEXT_STEP.get(status, status.value)
        workflow.upsert_search_attributes([sa.TICKET_STATUS.value_set(status.value)])

    def _publish(self) -> None:
        """Refresh what the Web UI shows as this workflow's current details."""
        triage = self._triage
        lines = [
            f"**Status:** {self._status.value} — {self._next_step}",
            f"**Requester:** {self._intake.requester.email} via {self._intake.channel.value}",
        ]
        if triage is not None:
            lines += [
                f"**Triage:** {triage.severity.value} · {triage.category.value} · "
                f"playbook {triage.playbook or 'none'} · confidence {triage.confidence:.2f}",
                f"**Summary:** {triage.summary}",
                f"**Recommended:** {triage.recommended_action}",
            ]
        if self._first_response_at is not None:
            lines.append(f"**First response:** {self._first_response_at.isoformat()}")
        if self._messages_received:
            lines.append(f"**Follow-ups received:** {self._messages_received}")
        workflow.set_current_details("\n\n".join(lines))


def _failure_reason(err: ActivityError) -> str:
    """A one-line reason for the record, e.g. ``LlmUnavailable: connection refused``."""
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return f"{cause.type or 'error'}: {cause.message}"[:500]
    if isinstance(cause, TimeoutError_):
        kind = cause.type.name.lower() if cause.type is not None else "unknown"
        return f"timeout ({kind})"
    return f"{type(cause).__name__ if cause else 'error'}: {err.message}"[:500]


_NEXT_STEP = {
    TicketStatus.AWAITING_HUMAN: "waiting for a person to pick it up",
    TicketStatus.AWAITING_CUSTOMER: "answered; waiting for the customer",
    TicketStatus.RESOLVED: "done",
}
