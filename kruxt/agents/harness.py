"""One harness for trying a triager before it goes live: offline evaluation and simulation.

``run_triager`` puts tickets through a candidate triager and the routing policy of the current
code (``decide_route``, exactly as a live ticket is routed) and says what would happen to each:
category, severity, route, an automatic reply, an incident. ``kruxt eval`` scores that against
a labeled set (``kruxt.agents.evaluation``); ``kruxt simulate`` lays it beside what happened to
stored tickets (``simulate`` here), with people's corrections of the triage as labels.
Pure: the triager is a parameter, nothing here touches a file, the network or a database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

from kruxt.models.enums import Category, Priority
from kruxt.models.incidents import IncidentCluster, incident_key
from kruxt.models.routing import Route, decide_route
from kruxt.models.simulation import StoredTicket
from kruxt.models.tickets import RoutingPolicy
from kruxt.models.triage import TriageInput, TriageResult

__all__ = [
    "Agreement",
    "Change",
    "Outcome",
    "Progress",
    "Side",
    "SimulatedTicket",
    "SimulationReport",
    "Triager",
    "run_triager",
    "severe",
    "simulate",
]

Triager = Callable[[TriageInput], TriageResult]
# Called after each ticket with (done, total): long runs show how far they are.
Progress = Callable[[int, int], None]


def severe(priority: Priority) -> bool:
    """P1 and P2: the 15-minute clock, and an incident (a P2 with others of its cause)."""
    return priority.rank <= 2


class Outcome(BaseModel):
    """What a triager and the routing policy make of one ticket."""

    result: TriageResult
    route: Route
    route_reason: str

    @property
    def incident_key(self) -> str:
        """What the tickets of one incident share (see ``kruxt.models.incidents``)."""
        return incident_key(self.result.category, self.result.probable_root_cause)


def run_triager(
    tickets: Sequence[TriageInput],
    triage: Triager,
    policy: RoutingPolicy,
    *,
    progress: Progress | None = None,
) -> list[Outcome]:
    """Triage and route every ticket, in order."""
    outcomes: list[Outcome] = []
    for done, ticket in enumerate(tickets, start=1):
        result = triage(ticket)
        decision = decide_route(result, policy)
        outcomes.append(Outcome(result=result, route=decision.route, route_reason=decision.reason))
        if progress is not None:
            progress(done, len(tickets))
    return outcomes


# -- simulation: the candidate beside what happened ------------------------------------------


class Change(StrEnum):
    """What the candidate would do differently from what happened (a field of ``Side``)."""

    CATEGORY = "category"
    SEVERITY = "severity"
    ROUTE = "route"
    AUTO_REPLY = "auto_reply"
    INCIDENT = "incident"


class Side(BaseModel):
    """One column of the comparison: what happened, or what would."""

    category: Category
    severity: Priority
    route: Route
    auto_reply: bool = Field(description="An automatic reply was (would be) sent")
    incident: bool = Field(description="The ticket was (would be) in an incident")


class SimulatedTicket(BaseModel):
    """One stored ticket, what happened and what the candidate would do."""

    ticket_id: str
    created_at: datetime
    subject: str
    happened: Side | None = Field(description="None when the ticket was never triaged")
    would: Side
    route_reason: str = Field(description="Why the candidate routes it so")
    label_category: Category | None = Field(description="A person's correction, if any")
    label_severity: Priority | None = Field(description="A person's correction, if any")
    changes: list[Change]


class Agreement(BaseModel):
    """How often each side agrees with people's corrections, where there is one."""

    labelled: int
    happened: int = Field(description="Of the labelled, what happened agreed")
    would: int = Field(description="Of the labelled, the candidate agrees")


class SimulationReport(BaseModel):
    """The candidate against what happened, over one period's stored tickets."""

    triager: str
    since: datetime
    until: datetime
    tickets: int
    not_triaged: int = Field(description="Stored tickets that were never triaged")
    changed: dict[Change, int] = Field(description="Tickets with each kind of change")
    changed_tickets: int
    routes_happened: dict[Route, int]
    routes_would: dict[Route, int]
    auto_replies_happened: int = Field(description="Tickets that got an automatic reply")
    auto_replies_would: int
    incidents_happened: int = Field(description="Incidents the period's tickets opened")
    incidents_would: int = Field(
        description="Incidents the candidate would open (same cause within the window joins)"
    )
    category_labels: Agreement
    severity_labels: Agreement
    rows: list[SimulatedTicket] = Field(description="Every ticket, oldest first")


def simulate(
    tickets: Sequence[StoredTicket],
    triage: Triager,
    policy: RoutingPolicy,
    *,
    triager: str,
    since: datetime,
    until: datetime,
    incident_window: timedelta,
    cluster: IncidentCluster | None,
    progress: Progress | None = None,
) -> SimulationReport:
    """Run the candidate over stored tickets and compare it with what happened.

    Args:
        tickets: the period's stored tickets, oldest first.
        triage: the candidate triager.
        policy: the routing policy the candidate is routed by.
        triager: the candidate's name, for the report.
        since, until: the period, for the report.
        incident_window: tickets with one cause within it join one incident.
        cluster: how many P2 tickets of one cause, within how long, open an incident;
            None: every P2 opens or joins one, as a P1 does.
        progress: told after each ticket.
    """
    outcomes = run_triager([t.to_input() for t in tickets], triage, policy, progress=progress)
    opened, in_incident = _incidents(tickets, outcomes, incident_window, cluster)
    rows = [
        _compare(ticket, outcome, incident)
        for ticket, outcome, incident in zip(tickets, outcomes, in_incident, strict=True)
    ]
    changed = {change: sum(change in row.changes for row in rows) for change in Change}
    triaged = [row.happened for row in rows if row.happened is not None]
    return SimulationReport(
        triager=triager,
        since=since,
        until=until,
        tickets=len(rows),
        not_triaged=len(rows) - len(triaged),
        changed=changed,
        changed_tickets=sum(bool(row.changes) for row in rows),
        routes_happened={r: sum(side.route is r for side in triaged) for r in Route},
        routes_would={r: sum(row.would.route is r for row in rows) for r in Route},
        auto_replies_happened=sum(side.auto_reply for side in triaged),
        auto_replies_would=sum(row.would.auto_reply for row in rows),
        incidents_happened=sum(
            t.happened.opened_incident for t in tickets if t.happened is not None
        ),
        incidents_would=opened,
        category_labels=_agreement(rows, "category"),
        severity_labels=_agreement(rows, "severity"),
        rows=rows,
    )


def _compare(ticket: StoredTicket, outcome: Outcome, incident: bool) -> SimulatedTicket:
    would = Side(
        category=outcome.result.category,
        severity=outcome.result.severity,
        route=outcome.route,
        auto_reply=outcome.route is Route.AUTO_REPLY,
        incident=incident,
    )
    happened = None
    changes: list[Change] = []
    if ticket.happened is not None:
        h = ticket.happened
        happened = Side(
            category=h.category,
            severity=h.severity,
            route=h.route,
            auto_reply=h.auto_replies > 0,
            incident=h.incident_id is not None,
        )
        changes = [c for c in Change if getattr(happened, c.value) != getattr(would, c.value)]
    correction = ticket.correction
    return SimulatedTicket(
        ticket_id=str(ticket.ticket_id),
        created_at=ticket.created_at,
        subject=ticket.subject,
        happened=happened,
        would=would,
        route_reason=outcome.route_reason,
        label_category=correction.category if correction else None,
        label_severity=correction.severity if correction else None,
        changes=changes,
    )


def _agreement(rows: Sequence[SimulatedTicket], field: str) -> Agreement:
    """Agreement on ``field`` (category or severity) where a person labelled it: a correction
    may fix only one of the two."""
    labelled = happened = would = 0
    for row in rows:
        label = getattr(row, f"label_{field}")
        if label is None:
            continue
        labelled += 1
        happened += row.happened is not None and getattr(row.happened, field) is label
        would += getattr(row.would, field) is label
    return Agreement(labelled=labelled, happened=happened, would=would)


def _incidents(
    tickets: Sequence[StoredTicket],
    outcomes: Sequence[Outcome],
    window: timedelta,
    cluster: IncidentCluster | None,
) -> tuple[int, list[bool]]:
    """How many incidents the candidate would open, and which tickets would be in one.

    As ``IncidentStore.place`` decides, in order of arrival: a P1 or P2 joins the incident of
    its cause opened within ``window``; with none, a P1 opens one; a P2 waits as a candidate
    of its cause until ``cluster.count`` of them fall within ``cluster.window``, and then they
    open it together.
    """
    opened_at: dict[str, datetime] = {}
    waiting: dict[str, list[int]] = {}
    in_incident = [False] * len(tickets)
    count = 0
    for i, (ticket, outcome) in enumerate(zip(tickets, outcomes, strict=True)):
        severity, key, at = outcome.result.severity, outcome.incident_key, ticket.created_at
        if not severe(severity):
            continue
        first = opened_at.get(key)
        if first is not None and at - first <= window:
            in_incident[i] = True
            continue
        members = [i]
        if severity is Priority.P2 and cluster is not None:
            recent = [
                j for j in waiting.get(key, []) if at - tickets[j].created_at <= cluster.window
            ]
            waiting[key] = members = [*recent, i]
            if len(members) < cluster.count:
                continue
            waiting[key] = []
        opened_at[key] = at
        count += 1
        for j in members:
            in_incident[j] = True
    return count, in_incident
