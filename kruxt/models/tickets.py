"""Tickets, messages and the TicketWorkflow's inputs, signals, query and result."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, field_validator

from kruxt.models.approvals import ApprovalState, DecisionChannel
from kruxt.models.continuation import HistoryLimit
from kruxt.models.enums import Category, Channel, MessageDirection, Priority, TicketStatus
from kruxt.models.lifecycle import (
    DEFAULT_AUTO_SOLVE_AFTER,
    DEFAULT_REOPEN_WINDOW,
    LifecycleState,
)
from kruxt.models.playbooks import PlaybookPlan, RunState
from kruxt.models.sla import SlaClock, SlaSummary, SlaTargets
from kruxt.models.text import REFUSE_UNSTORABLE
from kruxt.models.triage import TriageResult

# The namespace of every ticket id: uuid5(TICKET_NAMESPACE, "<channel>:<external_id>").
TICKET_NAMESPACE = uuid.UUID("5b0c6a52-9a3e-4c43-8d0a-6f1c2f8e7a10")

# Request fields refuse what Postgres cannot store (kruxt.models.text). The workflow contracts
# (TicketIntake, Requester, CustomerMessage) keep decoding what they always decoded, so running
# tickets replay and stored rows load; refusing happens at intake, once. REFUSE_UNSTORABLE goes
# last in Annotated: it then sees the raw string before stripping and length checks.
ShortText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=300),
    REFUSE_UNSTORABLE,
]
ExternalId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^\S+$")
]
IncomingId = Annotated[ExternalId, REFUSE_UNSTORABLE]
# The longest message a customer (or a staff member) may write.
MESSAGE_LIMIT = 20_000
MessageBody = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MESSAGE_LIMIT),
    REFUSE_UNSTORABLE,
]
PersonName = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=200), REFUSE_UNSTORABLE
]


def ticket_id_for(channel: Channel, external_id: str) -> uuid.UUID:
    """The ticket id for a channel's own id: the same pair always gives the same id."""
    return uuid.uuid5(TICKET_NAMESPACE, f"{channel.value}:{external_id}")


def workflow_id_for(ticket_id: uuid.UUID) -> str:
    """The TicketWorkflow id of a ticket."""
    return f"ticket-{ticket_id}"


def inbound_message_id_for(ticket_id: uuid.UUID, message_key: str) -> uuid.UUID:
    """A stable id for an inbound message, so a redelivered message is stored once."""
    return uuid.uuid5(TICKET_NAMESPACE, f"{ticket_id}:in:{message_key}")


class StrictModel(BaseModel):
    """Base for request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Requester(StrictModel):
    """The person who opened the ticket."""

    id: ExternalId
    email: EmailStr
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""


class NewRequester(Requester):
    """The requester as a request body gives it: every field refuses unstorable text."""

    id: IncomingId
    email: Annotated[EmailStr, REFUSE_UNSTORABLE]
    name: PersonName = ""


class NewTicketRequest(StrictModel):
    """Body of ``POST /v1/tickets`` (the in-app channel)."""

    external_id: IncomingId
    requester: NewRequester
    account_id: IncomingId | None = None
    subject: ShortText
    body: MessageBody


class NewMessageRequest(StrictModel):
    """Body of ``POST /v1/tickets/{ticket_id}/messages``: a customer's follow-up."""

    external_id: IncomingId = Field(description="The channel's id of this message; dedupes retries")
    body: MessageBody


class TicketAccepted(BaseModel):
    """Answer of the intake endpoints."""

    ticket_id: uuid.UUID
    workflow_id: str


class TicketIntake(BaseModel):
    """Everything the intake knew about a new ticket; the TicketWorkflow's input core."""

    ticket_id: uuid.UUID
    channel: Channel
    external_id: str
    requester: Requester
    account_id: str | None = None
    subject: str
    body: str
    received_at: datetime
    # A message after an earlier ticket's reopen window opens this one, linked to that one.
    previous_ticket_id: uuid.UUID | None = None


class CustomerMessage(BaseModel):
    """Signal ``customer_message``: a follow-up from the requester."""

    message_id: uuid.UUID
    body: str
    received_at: datetime


# Where a staff member acted (the console, the CLI ...), for the audit log; None: not said
# (signals sent before it was recorded).
StaffChannel = Annotated[DecisionChannel | None, Field(description="Where the staff member acted")]


class StaffResolve(BaseModel):
    """Signal ``resolve``: a staff member closes the ticket."""

    actor: str
    note: str = ""
    defect: bool = Field(default=False, description="The cause is a product defect: file it")
    prevention: str = Field(default="", description="How to keep the defect from coming back")
    channel: StaffChannel = None


class StaffMessage(BaseModel):
    """Signals ``staff_reply`` (to the customer, through the ticket's channel) and
    ``staff_note`` (internal: staff only): a message a staff member wrote."""

    message_id: uuid.UUID = Field(description="Chosen by the sender: a resent signal stores once")
    actor: str
    body: str
    channel: StaffChannel = None


FIRST_STEP = "persisting the ticket"


class TicketWorkflowState(BaseModel):
    """Everything a TicketWorkflow run knows about its ticket, carried whole across
    continue-as-new; the ``state`` query and the Web UI details are derived from it."""

    status: TicketStatus = TicketStatus.NEW
    triage: TriageResult | None = None
    first_response_at: datetime | None = None
    messages_received: int = 0
    approvals: list[ApprovalState] = Field(default_factory=list)
    runs: list[RunState] = Field(default_factory=list)
    plans: list[PlaybookPlan] = Field(default_factory=list)
    sla_clocks: list[SlaClock] = Field(default_factory=list)
    sla_priority: Priority | None = None
    incident_id: uuid.UUID | None = None
    assignee: str | None = None
    next_step: str = Field(default=FIRST_STEP, description="What the Web UI says comes next")
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    lifecycle: LifecycleState = Field(default_factory=LifecycleState)

    @field_validator("next_step", mode="before")
    @classmethod
    def _first_step_when_unset(cls, value: object) -> object:
        # Carry-overs written before the next step was carried say null.
        return FIRST_STEP if value is None else value

    def run(self, run_id: uuid.UUID) -> RunState | None:
        """One playbook run of this ticket, if it has it."""
        return next((r for r in self.runs if r.run_id == run_id), None)


# The name continue-as-new inputs were written under: the same model, carried whole.
TicketCarryOver = TicketWorkflowState


DEFAULT_APPROVAL_WINDOWS = {"P1": 60, "P2": 240, "P3": 1440, "P4": 4320}


class RoutingPolicy(BaseModel):
    """The thresholds a TicketWorkflow routes by, fixed when the ticket arrives."""

    auto_reply_min_confidence: float = Field(default=0.75, ge=0.0, le=1.0)
    approval_window_minutes: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_APPROVAL_WINDOWS),
        description="How long an approval request stays open, by priority",
    )
    reopen_window_days: int = Field(
        default=7, ge=0, description="How long a completed playbook run may be rolled back"
    )
    auto_solve_after_seconds: int = Field(
        default=int(DEFAULT_AUTO_SOLVE_AFTER.total_seconds()),
        ge=1,
        description="Silence from the customer after an answer that solves the ticket",
    )
    reopen_window_seconds: int = Field(
        default=int(DEFAULT_REOPEN_WINDOW.total_seconds()),
        ge=1,
        description="How long after solving a customer message reopens the same ticket",
    )


class TicketWorkflowInput(BaseModel):
    """Input of TicketWorkflow."""

    intake: TicketIntake
    policy: RoutingPolicy = Field(default_factory=RoutingPolicy)
    sla: SlaTargets = Field(default_factory=SlaTargets)
    carry_over: TicketCarryOver | None = None
    history_limit: HistoryLimit = None


class TicketStanding(BaseModel):
    """Where a ticket stands: its status and, once resolved, by whom and when."""

    ticket_id: uuid.UUID
    status: TicketStatus
    resolved_by: str | None = None
    resolved_at: datetime | None = None


class TicketState(TicketStanding):
    """Answer of the ``state`` query: what an operator needs at a glance."""

    priority: Priority | None = None
    category: Category | None = None
    playbook: str | None = None
    triage: TriageResult | None = None
    first_response_at: datetime | None = None
    messages_received: int = 0
    approvals: list[ApprovalState] = Field(default_factory=list)
    runs: list[RunState] = Field(default_factory=list)
    plans: list[PlaybookPlan] = Field(
        default_factory=list, description="The plans proposed, the approvals' subjects"
    )
    sla: SlaSummary | None = None
    incident_id: uuid.UUID | None = None
    lifecycle: LifecycleState = Field(default_factory=LifecycleState)


def ticket_state(
    ticket_id: uuid.UUID, state: TicketWorkflowState, sla: SlaSummary | None
) -> TicketState:
    """The ``state`` query's answer for a workflow in ``state`` (``sla``: its clocks now)."""
    triage = state.triage
    return TicketState(
        # What the state and the answer both hold, under the same names.
        **state.model_dump(include=set(TicketState.model_fields)),
        ticket_id=ticket_id,
        priority=triage.severity if triage else None,
        category=triage.category if triage else None,
        playbook=triage.playbook if triage else None,
        sla=sla,
    )


class StaffAssign(BaseModel):
    """Signal ``reassign``: a staff member gives the ticket to someone (or takes it)."""

    actor: str
    assignee: EmailStr
    channel: StaffChannel = None


class StaffPriorityChange(BaseModel):
    """Signal ``change_priority``: a staff member sets the ticket's priority."""

    actor: str
    priority: Priority
    reason: str = ""
    channel: StaffChannel = None


class TicketOutcome(TicketStanding):
    """Result of a completed TicketWorkflow."""


class TicketMessage(BaseModel):
    """A stored ticket message."""

    id: uuid.UUID
    direction: MessageDirection
    author: str
    body: str
    kind: str
    created_at: datetime


class TriageRecord(BaseModel):
    """A stored triage run, as the API shows it."""

    id: uuid.UUID
    agent: str
    model: str
    prompt_version: str
    result: TriageResult
    fallback_reason: str | None = None
    latency_ms: int | None = None
    created_at: datetime


class RunBrief(BaseModel):
    """A playbook run in a ticket view (its id is what `kruxt playbook rollback` takes)."""

    run_id: uuid.UUID
    playbook: str
    status: str
    approved_by: str


class ApprovalBrief(BaseModel):
    """An approval request in a ticket view."""

    approval_id: uuid.UUID
    kind: str
    playbook: str
    status: str
    required_role: str
    decided_by: str | None = None
    expires_at: datetime


class TicketView(BaseModel):
    """A ticket with its messages and triage, as ``GET /v1/tickets/{id}`` returns it."""

    ticket_id: uuid.UUID
    workflow_id: str
    channel: Channel
    external_id: str
    requester: Requester
    account_id: str | None = None
    subject: str
    status: TicketStatus
    priority: Priority | None = None
    category: Category | None = None
    playbook: str | None = None
    assignee: str | None = None
    created_at: datetime
    updated_at: datetime
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    messages: list[TicketMessage] = Field(default_factory=list)
    triage: TriageRecord | None = None
    sla: SlaSummary | None = Field(default=None, description="Live, from the ticket's workflow")
    incident_id: uuid.UUID | None = None
    previous_ticket_id: uuid.UUID | None = Field(
        default=None, description="The resolved ticket this one follows up"
    )
    lifecycle: LifecycleState | None = Field(default=None, description="Live")
    approvals: list[ApprovalBrief] = Field(default_factory=list, description="Live")
    runs: list[RunBrief] = Field(default_factory=list, description="Playbook runs (live)")


class TicketSummary(BaseModel):
    """One row of ``kruxt ticket list``."""

    ticket_id: uuid.UUID
    subject: str
    requester_email: str
    status: TicketStatus
    priority: Priority | None = None
    category: Category | None = None
    created_at: datetime
