"""The LLM Triage agent's activity: the adapter's typed errors become Temporal's retry decisions.

Rate limits and outages are retried by the activity's retry policy (a 429 after the server's
``Retry-After``); what retrying cannot fix fails at once with a non-retryable type, so the
workflow can fall back to the rules triager.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from kruxt.adapters.llm_triage import (
    LlmInvalidOutput,
    LlmRateLimited,
    LlmRejected,
    LlmUnavailable,
    OpenAITriager,
)
from kruxt.agents.severity_policy import apply_triage_policy
from kruxt.models.triage import LLM_NON_RETRYABLE, TriageInput, TriageOutcome

__all__ = ["LLM_NON_RETRYABLE", "LlmTriageActivities"]


class LlmTriageActivities:
    """Triage a ticket with the configured LLM."""

    def __init__(self, triager: OpenAITriager | None) -> None:
        self._triager = triager

    @activity.defn
    async def triage_with_llm(self, inp: TriageInput) -> TriageOutcome | None:
        """One structured-output LLM call; failures raise typed ApplicationErrors.

        The model's answer goes through the same policy as the rules triager's (severity
        floors, privacy how-tos to a person): the prompt asks, the policy makes sure. None means
        no LLM is configured: not a failure, the rules triager answers.
        """
        if self._triager is None:
            return None
        context = inp.context.render() if inp.context else ""
        try:
            outcome = await self._triager.triage(inp, context=context)
        except LlmRateLimited as exc:
            delay = timedelta(seconds=exc.retry_after) if exc.retry_after is not None else None
            activity.logger.warning("LLM rate limited, retry after %s s", exc.retry_after)
            raise ApplicationError(str(exc), type="LlmRateLimited", next_retry_delay=delay) from exc
        except LlmUnavailable as exc:
            activity.logger.warning("LLM unavailable: %s", exc)
            raise ApplicationError(str(exc), type="LlmUnavailable") from exc
        except LlmRejected as exc:
            activity.logger.warning("LLM rejected the request: %s", exc.reason)
            raise ApplicationError(exc.reason, type="LlmRejected", non_retryable=True) from exc
        except LlmInvalidOutput as exc:
            activity.logger.warning("LLM answer invalid: %s", exc.reason)
            raise ApplicationError(exc.reason, type="LlmInvalidOutput", non_retryable=True) from exc
        return outcome.model_copy(update={"result": apply_triage_policy(inp, outcome.result)})
