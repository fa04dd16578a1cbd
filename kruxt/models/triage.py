"""Triage: what the Triage agent reads and what it must produce."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from kruxt.models.context import TriageContext
from kruxt.models.enums import Category, Channel, Priority

# ApplicationError types of the LLM triage activity that retrying cannot fix: the workflow
# falls back to the rules triager at once.
LLM_NON_RETRYABLE = ["LlmRejected", "LlmInvalidOutput"]

Sentence = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]


class TriageResult(BaseModel):
    """The Triage agent's verdict on a ticket (DESIGN.md, step 2)."""

    summary: Sentence = Field(description="One or two sentences a busy founder can read")
    severity: Priority
    category: Category
    playbook: str | None = Field(
        default=None, description="A registered playbook id, or null when none applies"
    )
    probable_root_cause: Sentence
    recommended_action: Sentence
    confidence: float = Field(ge=0.0, le=1.0)
    severity_floor_reasons: list[str] = Field(
        default_factory=list,
        description="Why the severity policy holds the severity at least where it is "
        "(e.g. 'P1: data loss'); empty when no floor applies",
    )
    product_defect: bool = Field(
        default=False,
        description="The probable root cause is a defect in the KRUXT product (a bug or an "
        "outage), not a question or the user's own setup; resolved, it files a GitHub issue",
    )


class TriageInput(BaseModel):
    """What a triager reads: the ticket text is untrusted input."""

    ticket_id: uuid.UUID
    channel: Channel
    account_id: str | None = None
    subject: str
    body: str
    context: TriageContext | None = None


class TriageOutcome(BaseModel):
    """A triager's answer with what the automation-run record needs."""

    result: TriageResult
    agent: str = "triage"
    model: str
    prompt_version: str
    input_digest: str
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: int = 0
    fallback_reason: str | None = None
