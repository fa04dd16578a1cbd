"""What the staff console shows: the queue's rows and tabs, a ticket's page, an incident's page.

Read models only: the console keeps no state of its own; every figure here comes from the
support schema or from a ticket's workflow (``kruxt.starter.console.queries`` builds them).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from kruxt.models.approvals import ApprovalState, Verdict
from kruxt.models.enums import Channel, Priority, TicketStatus
from kruxt.models.incidents import IncidentRecord, TimelineEntry
from kruxt.models.playbooks import PlaybookPlan
from kruxt.models.records import AuditEntry
from kruxt.models.review import WeeklyReview
from kruxt.models.sla import ClockKind, ClockState
from kruxt.models.tickets import TicketView

__all__ = [
    "ApprovalView",
    "ConsoleIncident",
    "ConsoleReview",
    "ConsoleTicket",
    "QueueBucket",
    "QueueFilter",
    "QueueRow",
    "SearchText",
]

# What the search box takes: plain text, matched as a substring (never as a pattern).
SearchText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]


class QueueBucket(StrEnum):
    """The queue's tabs."""

    AWAITING_APPROVAL = "awaiting_approval"
    AWAITING_HUMAN = "awaiting_human"
    SLA_RISK = "sla_risk"  # open, with an SLA clock at risk or breached
    REOPENED = "reopened"  # reopened by the customer and not solved again
    ALL = "all"


class QueueFilter(BaseModel):
    """Which tickets the queue lists."""

    bucket: QueueBucket = QueueBucket.ALL
    search: SearchText = Field(
        default="",
        description="A substring of the subject, the requester's e-mail or name, or the "
        "channel's id; or a ticket id or its first characters (the customer's reference)",
    )
    priority: Priority | None = None
    channel: Channel | None = None
    limit: int = Field(default=100, ge=1, le=500)


class QueueRow(BaseModel):
    """One ticket in the queue: enough to pick what to open next, without its workflow."""

    ticket_id: uuid.UUID
    short_id: str = Field(description="The 8-character reference customers are given")
    subject: str
    requester_email: str
    requester_name: str = ""
    priority: Priority | None = None
    channel: Channel
    status: TicketStatus
    created_at: datetime
    updated_at: datetime
    age_seconds: float = Field(description="Since the ticket arrived")
    assignee: str | None = None
    incident_id: uuid.UUID | None = None
    reopened: bool = False
    sla_clock: ClockKind | None = Field(
        default=None, description="The clock that matters now (first response, then resolution)"
    )
    sla_state: ClockState | None = Field(default=None, description="None before triage")
    sla_due_at: datetime | None = Field(
        default=None, description="That clock's deadline; None while paused or stopped"
    )


class ApprovalView(BaseModel):
    """An approval on the ticket page: the request (with its plain-language and technical
    explanation and rollback plan), the plan's steps, and what the viewer may do with it."""

    approval: ApprovalState
    plan: PlaybookPlan | None = Field(default=None, description="None if the workflow lost it")
    verdicts: list[Verdict] = Field(
        default_factory=list, description="The decisions the viewer may take now (empty: none)"
    )
    refusal: str | None = Field(
        default=None, description="Why the viewer may not decide it, when it is pending"
    )


class ConsoleTicket(BaseModel):
    """Everything the ticket page shows."""

    view: TicketView = Field(description="The stored ticket, its thread and live state")
    live: bool = Field(description="False when the workflow did not answer: stored data only")
    short_id: str
    severity_reasons: list[str] = Field(
        default_factory=list, description="Why the severity policy holds the severity there"
    )
    incident: IncidentRecord | None = None
    approvals: list[ApprovalView] = Field(default_factory=list)
    rollbackable: list[uuid.UUID] = Field(
        default_factory=list, description="Runs the viewer may ask to roll back"
    )
    audit: list[AuditEntry] = Field(default_factory=list)


class ConsoleIncident(BaseModel):
    """An incident's page: the record and the two ends of its timeline (a large outage's
    runs to thousands of lines)."""

    incident: IncidentRecord
    timeline: list[TimelineEntry] = Field(
        default_factory=list, description="The timeline's first lines, oldest first"
    )
    timeline_left_out: int = Field(
        default=0, description="How many lines between the first and the last are not here"
    )
    timeline_last: list[TimelineEntry] = Field(
        default_factory=list, description="The timeline's last lines, oldest first"
    )


class ConsoleReview(BaseModel):
    """The latest weekly review, and its HTML as the review mail rendered it (our own)."""

    review: WeeklyReview
    html: str
