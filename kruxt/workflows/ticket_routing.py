"""Where a triaged ticket goes: an answer from the knowledge base, a playbook plan for an
approver, or a person (always with a drafted reply to start from, never sent by itself)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from kruxt.activities.knowledge import KnowledgeActivities
    from kruxt.activities.playbooks.activities import PlaybookActivities
    from kruxt.activities.tickets import TicketActivities
    from kruxt.models.enums import TicketStatus
    from kruxt.models.playbooks import PlanOutcome, PlanRequest, PlaybookPlan
    from kruxt.models.records import (
        DraftReply,
        DraftReplyInput,
        MessageKind,
        OutboundMessageInput,
    )
    from kruxt.models.routing import Route, decide_route
    from kruxt.models.tickets import RoutingPolicy, TicketIntake
    from kruxt.models.triage import TriageResult
    from kruxt.workflows.failures import failure_reason
    from kruxt.workflows.policies import (
        DB_RETRY,
        DB_TIMEOUT,
        KNOWLEDGE_TIMEOUT,
        LOCAL_RETRY,
        LOCAL_TIMEOUT,
    )
    from kruxt.workflows.ticket_steps import TicketSteps

__all__ = ["route"]


async def route(
    triage: TriageResult,
    intake: TicketIntake,
    policy: RoutingPolicy,
    steps: TicketSteps,
    request_approval: Callable[[PlaybookPlan], Awaitable[None]],
) -> None:
    """Answer, plan or hand over the ticket, as the routing policy decides for its triage."""
    decision = decide_route(triage, policy)
    if decision.route is Route.AUTO_REPLY:
        steps.announce("drafting a reply from the knowledge base")
        draft = await _draft_reply(intake, triage)
        if draft is not None and draft.refusal:
            # Never sent: the person who answers reads the refused draft and why.
            await _acknowledge(intake, triage, steps)
            await _attach(intake, draft)
            await steps.set_status(
                TicketStatus.AWAITING_HUMAN,
                f"routed to a person: the drafted reply was refused ({draft.refusal})",
            )
            return
        if draft is not None:
            await steps.send(MessageKind.AUTO_REPLY, draft)
            await steps.set_status(
                TicketStatus.AWAITING_CUSTOMER,
                f"auto-replied ({decision.reason}) citing {', '.join(draft.article_ids)}",
            )
            return
        reason = f"{decision.reason}, but no knowledge article covers it"
    elif decision.route is Route.PLAYBOOK:
        plan = await _plan(intake, triage, steps)
        await _acknowledge(intake, triage, steps)
        await _attach_draft(intake, triage)
        if plan.plan is not None:
            await request_approval(plan.plan)
            return
        reason = f"no plan: {plan.reason}"
        await steps.set_status(TicketStatus.AWAITING_HUMAN, f"routed to a person: {reason}")
        return
    else:
        reason = decision.reason
    await _acknowledge(intake, triage, steps)
    await _attach_draft(intake, triage)
    await steps.set_status(TicketStatus.AWAITING_HUMAN, f"routed to a person: {reason}")


async def _acknowledge(intake: TicketIntake, triage: TriageResult, steps: TicketSteps) -> None:
    """Tell the customer the ticket is in hand (drafted for its category)."""
    ack: DraftReply = await workflow.execute_activity_method(
        KnowledgeActivities.draft_acknowledgement,
        _draft_input(intake, triage),
        start_to_close_timeout=LOCAL_TIMEOUT,
        retry_policy=LOCAL_RETRY,
        summary="Draft the acknowledgement",
    )
    await steps.send(MessageKind.ACKNOWLEDGEMENT, ack)


def _draft_input(intake: TicketIntake, triage: TriageResult) -> DraftReplyInput:
    return DraftReplyInput(
        ticket_id=intake.ticket_id,
        category=triage.category,
        requester_name=intake.requester.name,
        subject=intake.subject,
        body=intake.body,
    )


async def _draft_reply(intake: TicketIntake, triage: TriageResult) -> DraftReply | None:
    try:
        return await workflow.execute_activity_method(
            KnowledgeActivities.draft_reply,
            _draft_input(intake, triage),
            start_to_close_timeout=KNOWLEDGE_TIMEOUT,
            retry_policy=LOCAL_RETRY,
            summary="Draft a reply from the knowledge base",
        )
    except ActivityError as err:
        workflow.logger.warning("no draft: %s", failure_reason(err))
        return None  # a person answers without one


async def _attach_draft(intake: TicketIntake, triage: TriageResult) -> None:
    """A drafted reply for the person who picks the ticket up; never sent by itself."""
    draft = await _draft_reply(intake, triage)
    if draft is not None:
        await _attach(intake, draft)


async def _attach(intake: TicketIntake, draft: DraftReply) -> None:
    body = draft.body
    if draft.refusal:
        body = f"Not sent: the reply guard refused this draft ({draft.refusal}).\n\n{body}"
    await workflow.execute_activity_method(
        TicketActivities.attach_draft,
        OutboundMessageInput(
            ticket_id=intake.ticket_id,
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


async def _plan(intake: TicketIntake, triage: TriageResult, steps: TicketSteps) -> PlanOutcome:
    """Diagnose read-only and propose concrete steps; nothing changes here."""
    assert triage.playbook is not None
    steps.announce(f"diagnosing with playbook {triage.playbook}")
    return await workflow.execute_activity_method(
        PlaybookActivities.plan_playbook,
        PlanRequest(
            ticket_id=intake.ticket_id,
            plan_id=workflow.uuid4(),
            playbook=triage.playbook,
            account_id=intake.account_id,
            requester_name=intake.requester.name,
        ),
        start_to_close_timeout=DB_TIMEOUT,
        retry_policy=DB_RETRY,
        summary=f"Diagnose and plan ({triage.playbook})",
    )
