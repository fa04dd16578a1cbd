"""The Triage agent's activities."""

from __future__ import annotations

import hashlib
import time

from temporalio import activity

from kruxt.agents.triage_rules import RULES_VERSION, triage_by_rules
from kruxt.models.triage import TriageInput, TriageOutcome

RULES_MODEL = "rules"


def input_digest(inp: TriageInput) -> str:
    """SHA-256 of what the triager read, so a run can be matched to its input later."""
    return hashlib.sha256(inp.model_dump_json().encode()).hexdigest()


class TriageActivities:
    """Classify, summarize and prioritize a ticket."""

    @activity.defn
    def triage_with_rules(self, inp: TriageInput) -> TriageOutcome:
        """The deterministic rules triager: always available, never needs the network.

        Its answer has been through the severity policy already (``triage_by_rules`` applies it
        before writing its texts), as the LLM's is in ``triage_with_llm``.

        Synchronous: pure CPU work over the ticket's text runs on the worker's thread pool
        (``activity_executor``), never on the event loop the other activities share.
        """
        started = time.perf_counter()
        result = triage_by_rules(inp)
        return TriageOutcome(
            result=result,
            model=RULES_MODEL,
            prompt_version=RULES_VERSION,
            input_digest=input_digest(inp),
            latency_ms=round((time.perf_counter() - started) * 1000),
        )
