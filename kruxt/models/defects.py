"""Product defects: one GitHub issue per defect, found again by its fingerprint.

A resolved ticket or incident whose root cause is a product defect is *reported*; reports of
one defect share a fingerprint (the scheme versioned, so a better normalization later does not
silently split old defects), which our database maps to its issue number. The issue carries
ticket ids and summaries only, never a customer's personal data (:func:`redact_personal`).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from kruxt.models.catalog import playbook_for
from kruxt.models.enums import Category, Priority
from kruxt.models.incidents import IncidentInput, incident_key
from kruxt.models.triage import TriageResult

__all__ = [
    "FINGERPRINT_SCHEME",
    "ISSUE_LABEL",
    "REGRESSED_LABEL",
    "DefectIssueInput",
    "DefectIssueLink",
    "DefectIssueOutcome",
    "DefectReport",
    "DefectReported",
    "DefectSource",
    "DefectSync",
    "DefectSyncResult",
    "PreventionDraft",
    "RecurringCause",
    "component_of",
    "defect_fingerprint",
    "defect_workflow_id",
    "incident_defect",
    "looks_like_defect",
    "marked_occurrences",
    "marker",
    "occurrence_marker",
    "redact_personal",
    "ticket_defect",
]

# The fingerprinting scheme: bump it (and keep reading the old one) when normalization changes.
FINGERPRINT_SCHEME = "v1"
# Every issue the autopilot files has this label; a recurrence of a closed one gets the other.
ISSUE_LABEL = "kruxt"
REGRESSED_LABEL = "regressed"
# Words our own root-cause texts use for a fault in the product (never read in ticket text).
_DEFECT_WORDS = ("bug", "defect", "regression", "crash", "outage")
_REDACTED_EMAIL = "[email redacted]"
_REDACTED_NUMBER = "[number redacted]"
# Digit runs this long are phone, card or account numbers rather than counts or versions.
_LONG_NUMBER = 7


def defect_fingerprint(category: Category, root_cause: str, component: str) -> str:
    """``v1:<category>:<normalized root cause>:<component>``: one defect, one fingerprint.

    The root cause is normalized as incidents group tickets (case, punctuation and spacing do
    not matter), so a defect's tickets and its incident land on the same issue.
    """
    comp = "".join(c if c.isascii() and (c.isalnum() or c in "_-") else "_" for c in component)
    return f"{FINGERPRINT_SCHEME}:{incident_key(category, root_cause)}:{comp.lower() or 'app'}"


def component_of(category: Category) -> str:
    """The part of the product a category's defects are in: its playbook, else the category."""
    return playbook_for(category) or category.value


def _digest(fingerprint: str) -> str:
    return hashlib.sha256(fingerprint.encode()).hexdigest()[:40]


def defect_workflow_id(fingerprint: str) -> str:
    """The DefectIssueWorkflow id of a fingerprint: one workflow serializes its issue."""
    return f"defect-{_digest(fingerprint)}"


def marker(fingerprint: str) -> str:
    """The hidden line an issue's body carries, for people and for recovery: a digest of the
    fingerprint, whose root cause (an LLM's words) may quote a customer."""
    return f"<!-- kruxt:fingerprint={FINGERPRINT_SCHEME}:{_digest(fingerprint)} -->"


# The hidden line a comment carries: the occurrences it tells of (ids only), so a retry whose
# first answer was lost finds them posted instead of commenting twice.
_OCCURRENCES_MARK = "<!-- kruxt:occurrences="
_MARK_END = " -->"


def occurrence_marker(source_ids: list[uuid.UUID]) -> str:
    """``<!-- kruxt:occurrences=<id>,<id> -->``: the occurrences a comment tells of."""
    return f"{_OCCURRENCES_MARK}{','.join(str(i) for i in source_ids)}{_MARK_END}"


def marked_occurrences(texts: list[str]) -> set[str]:
    """The occurrence ids the markers in ``texts`` (comments) name; linear in the text."""
    found: set[str] = set()
    for text in texts:
        start = text.find(_OCCURRENCES_MARK)
        while start >= 0:
            start += len(_OCCURRENCES_MARK)
            end = text.find(_MARK_END, start)
            if end < 0:
                break
            found.update(text[start:end].split(","))
            start = text.find(_OCCURRENCES_MARK, end)
    return found


def looks_like_defect(severity: Priority, root_cause: str) -> bool:
    """The rules triager's call: an outage (P1), or a cause its own texts name as a fault."""
    lowered = root_cause.lower()
    return severity is Priority.P1 or any(word in lowered for word in _DEFECT_WORDS)


def redact_personal(text: str) -> str:
    """``text`` with e-mail addresses and long digit runs (phones, cards) replaced.

    One pass over whitespace-separated words: linear whatever the (hostile) text.
    """
    words = []
    for word in text.split():
        if "@" in word:
            word = _REDACTED_EMAIL
        elif sum(c.isdigit() for c in word) >= _LONG_NUMBER:
            word = _REDACTED_NUMBER
        words.append(word)
    return " ".join(words)


class DefectSource(StrEnum):
    """What was resolved with a product defect as its cause."""

    TICKET = "ticket"
    INCIDENT = "incident"


class DefectReport(BaseModel):
    """Input of ``report_defect``: a resolution whose root cause is a product defect."""

    fingerprint: str
    category: Category
    root_cause: str
    component: str
    severity: Priority
    source: DefectSource
    source_id: uuid.UUID
    summary: str = Field(description="The triage summary; redacted before it reaches GitHub")
    prevention: str = Field(default="", description="The resolver's prevention notes")
    prevention_draft: str = Field(
        default="", description="Drafted by the triage (not reviewed); used when none is given"
    )
    resolved_by: str
    at: datetime


class DefectReported(BaseModel):
    """Signal ``reported`` of DefectIssueWorkflow: a new occurrence is stored for it."""

    source_id: uuid.UUID


class DefectIssueInput(BaseModel):
    """Input of DefectIssueWorkflow (id :func:`defect_workflow_id`)."""

    fingerprint: str


class DefectSync(BaseModel):
    """Input of ``sync_defect_issue``: bring the defect's issue up to date."""

    fingerprint: str
    prevention_draft: str = Field(
        default="", description="Prevention notes the LLM drafted (not reviewed), if any"
    )


class PreventionDraft(BaseModel):
    """Result of ``draft_prevention``: the LLM's notes, or empty (none needed, none drafted)."""

    text: str = ""


class DefectSyncResult(BaseModel):
    """What ``sync_defect_issue`` did: created, commented, reopened, would_create or nothing."""

    action: str
    issue_number: int | None = None
    occurrences: int = 0


class DefectIssueOutcome(BaseModel):
    """Result of DefectIssueWorkflow: the issue as the last sync left it."""

    fingerprint: str
    issue_number: int | None = None
    syncs: int = 0
    failed: str | None = None


class DefectIssueLink(BaseModel):
    """The issue a ticket's defect is filed as (``kruxt ticket show``)."""

    fingerprint: str
    issue_number: int | None = None
    issue_url: str | None = None
    state: str | None = None
    occurrences: int = 0


class RecurringCause(DefectIssueLink):
    """One row of the KPI report's recurring root causes: a defect and its issue."""

    category: str
    root_cause: str
    tickets: int


def ticket_defect(
    ticket_id: uuid.UUID,
    triage: TriageResult | None,
    *,
    marked: bool,
    resolved_by: str,
    prevention: str,
    at: datetime,
) -> DefectReport | None:
    """The defect report of a resolved ticket: when triage found a product defect or the
    resolver marked one; None otherwise. Untriaged, a marked ticket files under ``other``."""
    if not marked and (triage is None or not triage.product_defect):
        return None
    said = {"resolved_by": resolved_by, "prevention": prevention, "at": at}
    if triage is None:
        return _report(DefectSource.TICKET, ticket_id, Category.OTHER, "Not triaged", **said)
    return _report(
        DefectSource.TICKET,
        ticket_id,
        triage.category,
        triage.probable_root_cause,
        severity=triage.severity,
        summary=triage.summary,
        prevention_draft=triage.recommended_action,
        **said,
    )


def incident_defect(
    incident: IncidentInput, *, resolved_by: str, prevention: str, at: datetime
) -> DefectReport:
    """The defect report of an incident its resolver marked as a product defect; its key
    holds the normalized cause its tickets share, so they land on the same issue."""
    cause = incident.key.partition(":")[2] or "unknown"
    said = {"resolved_by": resolved_by, "prevention": prevention, "at": at}
    what = {"severity": incident.priority, "summary": incident.title}
    return _report(
        DefectSource.INCIDENT, incident.incident_id, incident.category, cause, **what, **said
    )


def _report(
    source: DefectSource, source_id: uuid.UUID, category: Category, cause: str, **fields: Any
) -> DefectReport:
    """A report whose fingerprint and component derive from its category and cause (an
    untriaged ticket: P3, no summary)."""
    component = component_of(category)
    fingerprint = defect_fingerprint(category, cause, component)
    derived = {"fingerprint": fingerprint, "component": component, "root_cause": cause}
    where = {"source": source, "source_id": source_id, "category": category}
    defaults = {"severity": Priority.P3, "summary": "(not triaged)"}
    return DefectReport.model_validate(defaults | fields | derived | where)
