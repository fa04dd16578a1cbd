"""Inputs and outputs of the bookkeeping activities: messages, statuses, triage runs, audit."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from kruxt.models.enums import Category, Priority, TicketStatus
from kruxt.models.tickets import StaffChannel, TicketIntake
from kruxt.models.triage import TriageOutcome


class MessageKind(StrEnum):
    """What an outbound or inbound message is."""

    CUSTOMER = "customer"
    AUTO_REPLY = "auto_reply"
    ACKNOWLEDGEMENT = "acknowledgement"
    AGENT_REPLY = "agent_reply"
    PLAYBOOK_UPDATE = "playbook_update"
    HOLDING = "holding"
    DRAFT = "draft"
    INCIDENT_UPDATE = "incident_update"
    CLOSING = "closing"  # the ticket was solved on the customer's silence
    STAFF_NOTE = "staff_note"  # an internal note a staff member wrote (never sent out)


class PersistTicketInput(BaseModel):
    """Input of ``persist_ticket``."""

    intake: TicketIntake
    workflow_id: str


class PersistTicketResult(BaseModel):
    """Whether ``persist_ticket`` wrote the ticket or found it there already."""

    created: bool


class RecordTriageInput(BaseModel):
    """Input of ``record_triage``."""

    ticket_id: uuid.UUID
    outcome: TriageOutcome


class InboundMessageInput(BaseModel):
    """Input of ``record_inbound_message``: a customer's follow-up."""

    ticket_id: uuid.UUID
    message_id: uuid.UUID
    author: str
    body: str


class ThreadMessage(BaseModel):
    """A message the autopilot or staff writes into a ticket's thread (reply, note, draft)."""

    ticket_id: uuid.UUID
    message_id: uuid.UUID
    kind: MessageKind
    body: str
    author: str = "kruxt-support"
    article_ids: list[str] = Field(default_factory=list)
    via: StaffChannel = None


class OutboundMessageInput(ThreadMessage):
    """Input of ``send_customer_message``: a reply or acknowledgement to the requester."""

    confirmable: bool = Field(
        default=True,
        description="Whether an answer of a confirmable kind ends with the confirm link; not "
        "one saying a fix was undone (nothing is solved then)",
    )


class OutboundMessageResult(BaseModel):
    """When the message went out, and whether it was the ticket's first response."""

    sent_at: datetime
    first_response: bool
    refused: str | None = Field(
        default=None,
        description="Why the ticket's channel refused it for good (then it was not sent: "
        "a note in the thread says so, and a person must reach the customer)",
    )


class TicketChangeInput(BaseModel):
    """A change to one ticket: by whom, and where a staff member made it (``via``)."""

    ticket_id: uuid.UUID
    actor: str
    via: StaffChannel = None


class ReasonedChangeInput(TicketChangeInput):
    """A change whose audit entry keeps why it was made."""

    reason: str = ""


class StatusChangeInput(ReasonedChangeInput):
    """Input of ``change_status``."""

    status: TicketStatus


class PriorityChangeInput(ReasonedChangeInput):
    """Input of ``change_priority``: a staff member's new priority for a ticket."""

    priority: Priority


class AssignInput(TicketChangeInput):
    """Input of ``assign``: a ticket's new owner on the support team."""

    assignee: str


class StatusChangeResult(BaseModel):
    """When the status changed."""

    changed_at: datetime


class DraftReplyInput(BaseModel):
    """Input of the Knowledge agent: the ticket and its triaged category."""

    ticket_id: uuid.UUID
    category: Category
    requester_name: str = ""
    subject: str
    body: str


class DraftReply(BaseModel):
    """A reply drafted from knowledge articles, with the articles it cites.

    ``model`` is the LLM that wrote it, or ``template`` when an article's reply template did;
    ``fallback_reason`` says why the template was used instead of the LLM. ``refusal`` says
    why the reply guard refused it: a refused draft is never sent, only shown to a person.
    """

    body: str
    article_ids: list[str]
    model: str = "template"
    fallback_reason: str | None = None
    refusal: str | None = None


class AuditEntry(BaseModel):
    """A row of ``support_audit_log``."""

    id: int
    occurred_at: datetime
    actor: str
    action: str
    ticket_id: uuid.UUID | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    prev_hash: str
    hash: str


class AuditVerification(BaseModel):
    """Outcome of walking the audit hash chain."""

    rows_checked: int
    first_bad_id: int | None = None
    problem: str | None = None

    @property
    def intact(self) -> bool:
        """True when every row's hash matched."""
        return self.first_bad_id is None
