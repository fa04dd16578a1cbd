"""Incidents: tickets grouped by probable root cause, paged until someone acknowledges.

An incident opens for a P1 (an outage, data loss, a security or privacy exposure, many users
hit), or when several P2 tickets share a cause within a short window
(``KRUXT_INCIDENT_CLUSTER``, e.g. ``3/30m``); never for one user's P2 on its own.

The escalation policy works like PagerDuty's: levels of people, each notified in turn with a
delay before the next, the whole list repeated a number of loops, until someone
acknowledges. It is configuration (``KRUXT_ESCALATION_POLICY`` / ``_FILE``, YAML or JSON):

```yaml
loops: 2
levels:
  - name: on-call
    emails: [oncall@kruxt.app]
    slack_user_ids: [U024BE7LH]
    delay_minutes: 10
  - name: founders
    emails: [maya@kruxt.app, sam@kruxt.app]
    delay_minutes: 15
```
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from kruxt.models.approvals import DecisionChannel
from kruxt.models.config_text import parse_config, validation_problems
from kruxt.models.continuation import HistoryLimit
from kruxt.models.enums import Category, Priority

__all__ = [
    "DEFAULT_INCIDENT_CLUSTER",
    "DEV_FOUNDER",
    "Acknowledge",
    "Acknowledged",
    "AttachTicket",
    "EscalationLevel",
    "EscalationPolicy",
    "IncidentCarryOver",
    "IncidentCluster",
    "IncidentEvent",
    "IncidentInput",
    "IncidentJoin",
    "IncidentOutcome",
    "IncidentRecord",
    "IncidentResolved",
    "IncidentState",
    "IncidentStatus",
    "IncidentStatusChange",
    "IncidentStatusResult",
    "OpenIncidentInput",
    "PageInput",
    "PageRecord",
    "PageResult",
    "ResolveIncident",
    "TellTickets",
    "TicketsTold",
    "TimelineEntry",
    "TimelinePost",
    "default_escalation_policy",
    "incident_key",
    "incident_workflow_id",
    "parse_escalation_policy",
    "parse_incident_cluster",
]

DEV_FOUNDER = "founder@kruxt.dev"

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Actor = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=320)]


class IncidentStatus(StrEnum):
    """Lifecycle of an incident (``support_incidents.status``)."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


def incident_workflow_id(incident_id: uuid.UUID) -> str:
    """The IncidentWorkflow id of an incident."""
    return f"incident-{incident_id}"


# What an incident key keeps of a root cause; runs of anything else become one space. A plain
# loop, not a regex: the cause is model output shaped by the customer's text.
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


def incident_key(category: Category, probable_root_cause: str | None) -> str:
    """What tickets of one incident share: their category and normalized probable root cause.

    Case, punctuation and spacing do not matter (``"Login API down."`` and ``"login api
    down"`` give one key); an unknown root cause groups by category alone.
    """
    lowered = (probable_root_cause or "").lower()
    cause = " ".join("".join(c if c in _KEY_CHARS else " " for c in lowered).split())
    return f"{category.value}:{cause[:200] or 'unknown'}"


# -- the cluster rule --------------------------------------------------------------------


class IncidentCluster(BaseModel):
    """When P2 tickets make an incident: ``count`` of one cause within ``minutes``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # At least two: one user's P2 on its own never pages anyone.
    count: int = Field(ge=2, le=1000, description="P2 tickets of one cause")
    minutes: int = Field(ge=1, le=7 * 24 * 60, description="Within this many minutes")

    @property
    def window(self) -> timedelta:
        """How far back the P2 tickets of a cause are counted."""
        return timedelta(minutes=self.minutes)

    def __str__(self) -> str:
        return f"{self.count}/{self.minutes}m"


DEFAULT_INCIDENT_CLUSTER = IncidentCluster(count=3, minutes=30)
_UNITS = {"m": 1, "h": 60}


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 6


def parse_incident_cluster(
    text: str | None, *, source: str = "KRUXT_INCIDENT_CLUSTER"
) -> IncidentCluster:
    """``"3/30m"`` (3 tickets within 30 minutes; ``h`` for hours); empty gives the default.

    Raises:
        ValueError: not ``COUNT/SPAN`` or out of range; the message says which.
    """
    if text is None or not text.strip():
        return DEFAULT_INCIDENT_CLUSTER
    count, slash, span = (part.strip() for part in text.strip().lower().partition("/"))
    unit = _UNITS.get(span[-1:])
    number = span[:-1].strip() if unit else span
    if not slash or not _digits(count) or not _digits(number):
        raise ValueError(f"invalid {source}: {text[:40]!r} is not COUNT/SPAN, e.g. 3/30m or 5/2h")
    try:
        return IncidentCluster(count=int(count), minutes=int(number) * (unit or 1))
    except ValidationError as exc:
        raise ValueError(f"invalid {source}: {validation_problems(exc, whole='cluster')}") from None


# -- the escalation policy ---------------------------------------------------------------


class EscalationLevel(BaseModel):
    """One level of the policy: who is paged, and how long to wait before the next level."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    emails: list[EmailStr] = Field(default_factory=list, description="Paged by e-mail")
    slack_user_ids: list[str] = Field(
        default_factory=list, description="Mentioned in the incident channel"
    )
    delay_minutes: int = Field(ge=1, le=7 * 24 * 60, description="Wait before the next level")

    @model_validator(mode="after")
    def _someone(self) -> EscalationLevel:
        if not self.emails and not self.slack_user_ids:
            raise ValueError(f"level {self.name!r} pages nobody: give emails or slack_user_ids")
        return self


class EscalationPolicy(BaseModel):
    """Levels paged in order, ``loops`` times over, until someone acknowledges."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    levels: list[EscalationLevel] = Field(min_length=1)
    loops: int = Field(default=1, ge=1, le=20)


def default_escalation_policy() -> EscalationPolicy:
    """The development policy: the founder, every 15 minutes, twice."""
    return EscalationPolicy(
        levels=[EscalationLevel(name="founder", emails=[DEV_FOUNDER], delay_minutes=15)],
        loops=2,
    )


def parse_escalation_policy(
    text: str | None, *, source: str = "escalation policy"
) -> EscalationPolicy:
    """A policy from YAML or JSON text; empty or None gives the development default.

    Raises:
        ValueError: the text is not YAML/JSON or the policy is invalid; the message says
            where (``source``) and what.
    """
    policy = parse_config(
        EscalationPolicy, text, source=source, expected="levels and loops", whole="policy"
    )
    return policy or default_escalation_policy()


# -- opening and joining -----------------------------------------------------------------


class OpenIncidentInput(BaseModel):
    """Input of ``open_or_join_incident``: a P1/P2 ticket looking for its incident.

    A P1 opens one or joins the open incident of its key; a P2 joins that incident, or counts
    toward its cause's cluster and opens the incident with the others once there are enough.
    """

    ticket_id: uuid.UUID
    ticket_workflow_id: str
    key: str = Field(min_length=1, description="incident_key(category, probable root cause)")
    priority: Priority
    category: Category
    title: str = Field(min_length=1, description="The ticket's triage summary")
    at: datetime | None = Field(
        default=None, description="The workflow's time; the join window is counted from it"
    )


class IncidentJoin(BaseModel):
    """Which incident the ticket belongs to, and whether it opened it; none for a P2 whose
    cause has not reached the cluster size yet (``counted`` says how many it has)."""

    incident_id: uuid.UUID | None = None
    workflow_id: str | None = None
    created: bool = False
    counted: int = Field(default=0, description="P2 tickets of the cause in the cluster window")


class AttachTicket(BaseModel):
    """Signal ``attach_ticket``: a ticket that belongs to this incident."""

    ticket_id: uuid.UUID
    workflow_id: str
    priority: Priority
    summary: str
    attached: int = Field(
        default=0,
        ge=0,
        description="How many tickets the incident had in the database once this one joined "
        "(0: not known); the workflow counts by it, so a repeated signal counts once",
    )


class IncidentInput(BaseModel):
    """Input of IncidentWorkflow: the incident as it was opened, with its policy snapshot."""

    incident_id: uuid.UUID
    key: str
    priority: Priority
    category: Category
    title: str
    first_ticket: AttachTicket
    policy: EscalationPolicy
    opened_at: datetime
    carry_over: IncidentCarryOver | None = Field(
        default=None, description="Set by a continue-as-new: where the previous run stopped"
    )
    history_limit: HistoryLimit = None


class IncidentCarryOver(BaseModel):
    """What an IncidentWorkflow run hands to its continuation: the whole escalation state."""

    status: IncidentStatus
    priority: Priority
    tickets: list[AttachTicket] = Field(
        description="The tickets attached last (all of them, from runs before the count)"
    )
    ticket_count: int = Field(default=0, description="How many are attached (0: len(tickets))")
    ack: Acknowledged | None = None
    level: int = Field(default=0, description="The level paged last, or to page next")
    loop: int = 0
    next_level_at: datetime | None = Field(
        default=None,
        description="When the level paged last has had its delay; None: not paged yet",
    )
    exhausted: bool = False
    pages: list[PageRecord] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    repost: bool = Field(default=False, description="The next page posts the incident anew")


# -- acknowledging and resolving ---------------------------------------------------------


class Acknowledge(BaseModel):
    """Update ``acknowledge``: someone took the incident; escalation stops."""

    by: Actor
    channel: DecisionChannel = DecisionChannel.CLI


class Acknowledged(BaseModel):
    """Answer of ``acknowledge``."""

    incident_id: uuid.UUID
    by: str
    channel: DecisionChannel
    at: datetime


class ResolveIncident(BaseModel):
    """Update ``resolve``: the incident is over; its tickets are told."""

    by: Actor
    note: str = Field(default="", max_length=2000, description="For the team: never sent out")
    customer_note: str = Field(
        default="", max_length=2000, description="A customer update, told to every ticket"
    )
    defect: bool = Field(default=False, description="The cause is a product defect: file it")
    prevention: str = Field(default="", max_length=2000, description="How to keep it away")
    channel: DecisionChannel | None = Field(default=None, description="Where it was resolved")


class IncidentResolved(BaseModel):
    """Signal ``incident_resolved`` sent to each attached ticket's workflow."""

    incident_id: uuid.UUID
    note: str = ""
    by: str
    customer_note: str = Field(default="", description="What the customers may be told")


# -- activities --------------------------------------------------------------------------


class PageInput(BaseModel):
    """Input of ``page_level``: notify one level of the policy, in one loop."""

    incident: IncidentInput
    level: int = Field(ge=0, description="Index into incident.policy.levels")
    loop: int = Field(ge=0)
    tickets: list[AttachTicket] = Field(
        default_factory=list, description="The tickets attached last (the page names them)"
    )
    ticket_count: int = Field(default=0, description="How many are attached (0: len(tickets))")
    at: datetime
    repost: bool = Field(
        default=False, description="The incident escalated: post it anew, then thread under it"
    )


class PageResult(BaseModel):
    """Who was paged, and how."""

    slack_posted: bool = False
    emailed: list[str] = Field(default_factory=list)
    problems: list[str] = Field(
        default_factory=list, description="Channels that failed while others went out"
    )


class IncidentEvent(BaseModel):
    """Input of ``record_incident_event``: one line of the timeline."""

    incident_id: uuid.UUID
    action: str = Field(description="Audit action, e.g. incident.escalation_exhausted")
    entry: str
    actor: str = "autopilot"
    at: datetime
    ticket_id: uuid.UUID | None = Field(default=None, description="The ticket it concerns")


class IncidentStatusChange(BaseModel):
    """Input of ``set_incident_status``: acknowledged or resolved, by whom."""

    incident: IncidentInput
    tickets: int = Field(default=1, description="How many tickets the incident has now")
    status: IncidentStatus
    actor: str
    channel: DecisionChannel | None = None
    note: str = ""
    at: datetime
    list_tickets: bool = Field(
        default=True,
        description="Return every ticket (runs that tell them one by one); False: the count",
    )


class IncidentStatusResult(BaseModel):
    """The incident's tickets after the change (what a resolution must tell)."""

    tickets: list[AttachTicket] = Field(
        default_factory=list, description="Every ticket, when the change asked for the list"
    )
    ticket_count: int = 0


class TellTickets(BaseModel):
    """Input of ``tell_incident_tickets``: the resolution, for every ticket of the incident."""

    resolved: IncidentResolved
    at: datetime


class TicketsTold(BaseModel):
    """How many of the incident's tickets heard of its resolution; the rest were closed."""

    told: int = 0
    not_told: int = 0


class TimelinePost(BaseModel):
    """Input of ``post_timeline``: publish the incident's timeline once it is resolved."""

    incident: IncidentInput
    resolved_by: str
    note: str = ""
    at: datetime


# -- records and the query ---------------------------------------------------------------


# How many of an incident's tickets its record names, and how many timeline lines of each end
# its pages show (the console, `kruxt incident show`): a large outage has thousands of each.
RECENT_TICKETS_SHOWN = 50
TIMELINE_HEAD = 20
TIMELINE_TAIL = 180


class TimelineEntry(BaseModel):
    """One line of an incident's timeline."""

    at: datetime
    what: str
    actor: str = "autopilot"


class PageRecord(BaseModel):
    """One page: which level (0-based), which loop (0-based), when, and who."""

    level: int
    level_name: str
    loop: int
    at: datetime
    slack_posted: bool = False
    emailed: list[str] = Field(default_factory=list)
    failed: str | None = None


class IncidentState(BaseModel):
    """Answer of the ``state`` query."""

    incident_id: uuid.UUID
    key: str
    title: str
    priority: Priority
    status: IncidentStatus
    level: int = Field(description="The level paged last (0-based)")
    loop: int = Field(description="The loop of that page (0-based)")
    escalation_exhausted: bool = False
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    tickets: list[AttachTicket] = Field(
        default_factory=list, description="The tickets attached last (the database has all)"
    )
    ticket_count: int = Field(default=0, description="How many tickets are attached")
    told: TicketsTold | None = Field(default=None, description="Once resolved: who was told")
    pages: list[PageRecord] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)


class IncidentOutcome(BaseModel):
    """Result of a completed IncidentWorkflow."""

    incident_id: uuid.UUID
    status: IncidentStatus
    acknowledged_by: str | None = None
    resolved_by: str
    resolved_at: datetime
    tickets_told: list[uuid.UUID] = Field(
        default_factory=list, description="Runs that told tickets one by one: which"
    )
    told: int = Field(default=0, description="How many tickets heard of the resolution")
    not_told: int = Field(default=0, description="How many were closed, so not told")


class IncidentRecord(BaseModel):
    """A stored incident, as ``kruxt incident list`` shows it."""

    id: uuid.UUID
    key: str
    status: IncidentStatus
    priority: Priority
    category: Category
    title: str
    workflow_id: str
    opened_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    escalation_level: int = 0
    escalation_loop: int = 0
    # A large outage's incident holds thousands of tickets: the record counts them all and
    # names the latest RECENT_TICKETS_SHOWN, newest first (IncidentStore.tickets pages them).
    ticket_count: int = 0
    recent_ticket_ids: list[uuid.UUID] = Field(default_factory=list)


# The carry-over refers to models defined after it.
IncidentInput.model_rebuild()
