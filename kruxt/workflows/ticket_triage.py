"""How a ticket workflow triages a ticket: account context, then the LLM, with the rules
triager answering whenever the LLM cannot, and a person when the rules triager gives up."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from kruxt.activities.context import ContextActivities
    from kruxt.activities.llm_triage import LlmTriageActivities
    from kruxt.activities.triage import TriageActivities
    from kruxt.models.context import ContextInput
    from kruxt.models.enums import Category, Priority
    from kruxt.models.tickets import TicketIntake
    from kruxt.models.triage import TriageInput, TriageOutcome, TriageResult
    from kruxt.workflows.failures import failure_reason
    from kruxt.workflows.policies import (
        LLM_DEADLINE,
        LLM_RETRY,
        LLM_TIMEOUT,
        LOCAL_RETRY,
        LOCAL_TIMEOUT,
        db_activity,
    )

__all__ = ["LLM_NOT_CONFIGURED", "triage"]

LLM_NOT_CONFIGURED = "llm not configured (OPENAI_API_KEY is unset)"


async def triage(intake: TicketIntake) -> TriageOutcome:
    """Triage the ticket; never fails for a reason a person could handle instead."""
    fields = {"ticket_id", "channel", "account_id", "subject", "body"}
    return await _with_agents(TriageInput(**intake.model_dump(include=fields)))


async def _with_agents(inp: TriageInput) -> TriageOutcome:
    """Context, then the LLM; the rules triager answers whenever the LLM cannot."""
    context = await db_activity(
        ContextActivities.gather_context,
        ContextInput(ticket_id=inp.ticket_id, account_id=inp.account_id),
        "Gather account context and recent incidents",
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
    outcome = await _with_rules(inp)
    return outcome.model_copy(update={"fallback_reason": reason})


async def _with_rules(inp: TriageInput) -> TriageOutcome:
    try:
        return await workflow.execute_activity_method(
            TriageActivities.triage_with_rules,
            inp,
            start_to_close_timeout=LOCAL_TIMEOUT,
            retry_policy=LOCAL_RETRY,
            summary="Triage with the rules triager",
        )
    except ActivityError as err:
        # Only reached after the bounded retries: a person reads the ticket, untriaged,
        # instead of the workflow failing.
        return _untriaged(failure_reason(err))


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
