"""Offline evaluation of a triager against a labeled set of tickets.

Pure functions: ``parse_dataset`` reads JSON Lines of labeled tickets, ``evaluate`` runs any
triager (the rules, later the LLM) over them and scores its answers, ``render_report`` prints
the scores as an aligned table. Nothing here touches files, the network or a database
(``kruxt.starter.eval_cli.load_dataset`` opens the file).

The triager and the routing run in ``kruxt.agents.harness``, the harness ``kruxt simulate``
shares: a ticket "goes to a human" when the routing policy (``decide_route`` with the default
``RoutingPolicy``) sends it to the human queue, exactly as a live ticket would be routed.
"Severe" is P1 or P2: what opens an incident and pages on-call, so missing one (recall) and
raising a P3/P4 to it (over-escalation) are scored apart from the exact severity.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kruxt.agents.harness import Triager, run_triager, severe
from kruxt.models.enums import Category, Channel, Priority
from kruxt.models.routing import Route
from kruxt.models.simulation import StoredTicket
from kruxt.models.tickets import RoutingPolicy
from kruxt.models.triage import TriageInput

__all__ = [
    "CategoryMetrics",
    "EvalReport",
    "LabeledTicket",
    "Mistake",
    "evaluate",
    "labeled_from_corrections",
    "parse_dataset",
    "render_report",
]

# Ticket ids are derived from the dataset ids, so a run is repeatable.
_TICKET_NAMESPACE = uuid.UUID("6f1c2a52-8d0e-4d55-9a43-0b6f7c1e9e21")


class LabeledTicket(BaseModel):
    """One line of the dataset: a ticket and the answer a good triager gives."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    subject: str
    body: str
    expected_category: Category
    expected_severity: Priority
    out_of_scope: bool = False
    injection: bool = False

    def to_input(self) -> TriageInput:
        """What a triager reads for this ticket."""
        return TriageInput(
            ticket_id=uuid.uuid5(_TICKET_NAMESPACE, self.id),
            channel=Channel.IN_APP,
            subject=self.subject,
            body=self.body,
        )


class CategoryMetrics(BaseModel):
    """How well one category is recognized.

    ``precision`` is None when the triager never chose the category, ``recall`` when the
    dataset has no ticket of it: both are undefined then, not zero.
    """

    category: Category
    support: int = Field(description="tickets whose expected category this is")
    predicted: int = Field(description="tickets the triager put in this category")
    correct: int = Field(description="tickets both expected and predicted in this category")
    precision: float | None
    recall: float | None


class Mistake(BaseModel):
    """A ticket whose category the triager got wrong."""

    id: str
    expected_category: Category
    predicted_category: Category
    expected_severity: Priority
    predicted_severity: Priority


class EvalReport(BaseModel):
    """The scores of one triager on one dataset."""

    n: int
    category_correct: int
    category_accuracy: float
    severity_exact_accuracy: float
    severity_within_one_accuracy: float
    per_category: list[CategoryMetrics]
    routes: dict[Route, int] = Field(description="how many tickets took each route")
    to_human: int
    out_of_scope_total: int
    out_of_scope_to_human: int
    injection_total: int
    injection_to_human: int
    severe_total: int = Field(description="tickets expected P1 or P2")
    severe_caught: int = Field(description="of those, triaged P1 or P2")
    minor_total: int = Field(description="tickets expected P3 or P4")
    over_escalated: int = Field(description="of those, triaged P1 or P2")
    wrong_auto_replies: int = Field(
        description="tickets answered automatically whose expected category is another"
    )
    mistakes: list[Mistake] = Field(description="tickets with the wrong category, in order")


def parse_dataset(lines: Iterable[str], source: str) -> list[LabeledTicket]:
    """Parse a JSON Lines dataset: one labeled ticket per line, blank lines ignored.

    Args:
        lines: the dataset's lines (an open file will do).
        source: where they came from, for error messages.

    Raises:
        ValueError: a line is not valid JSON, not a valid ticket, or repeats an id; the
            message names the source and the line number. Also when there is no ticket at all.
    """
    tickets: list[LabeledTicket] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{source}, line {number}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: not valid JSON ({exc.msg})") from None
        try:
            ticket = LabeledTicket.model_validate(raw)
        except ValidationError as exc:
            raise ValueError(f"{where}: {_describe(exc)}") from None
        if ticket.id in seen:
            raise ValueError(f"{where}: id {ticket.id!r} already used on line {seen[ticket.id]}")
        seen[ticket.id] = number
        tickets.append(ticket)
    if not tickets:
        raise ValueError(f"{source}: no tickets")
    return tickets


def labeled_from_corrections(tickets: Iterable[StoredTicket]) -> list[LabeledTicket]:
    """People's "triage wrong" corrections as a labeled set, one ticket each.

    A correction may fix only the category or only the severity: the other label is the
    triage the person saw and left as it was. Tickets with no correction, or with a label
    still unknown (never triaged and only half corrected), are left out.
    """
    labeled = []
    for ticket in tickets:
        correction, happened = ticket.correction, ticket.happened
        if correction is None:
            continue
        category = correction.category or (happened.category if happened else None)
        severity = correction.severity or (happened.severity if happened else None)
        if category is None or severity is None:
            continue
        labeled.append(
            LabeledTicket(
                id=str(ticket.ticket_id),
                subject=ticket.subject,
                body=ticket.body,
                expected_category=category,
                expected_severity=severity,
            )
        )
    return labeled


def _describe(exc: ValidationError) -> str:
    """A pydantic error in one line: "expected_category: Input should be ...; id: ..."."""
    parts = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "line"
        parts.append(f"{field}: {error['msg']}")
    return "; ".join(parts)


def evaluate(tickets: Sequence[LabeledTicket], triage: Triager) -> EvalReport:
    """Run ``triage`` over every ticket and score its answers against the labels.

    Raises:
        ValueError: there is no ticket to evaluate.
    """
    if not tickets:
        raise ValueError("no tickets to evaluate")
    outcomes = run_triager([t.to_input() for t in tickets], triage, RoutingPolicy())
    n = len(tickets)
    category_correct = severity_exact = severity_within_one = 0
    support = dict.fromkeys(Category, 0)
    predicted = dict.fromkeys(Category, 0)
    correct = dict.fromkeys(Category, 0)
    routes = dict.fromkeys(Route, 0)
    out_of_scope_total = out_of_scope_to_human = injection_total = injection_to_human = 0
    severe_total = severe_caught = minor_total = over_escalated = wrong_auto_replies = 0
    mistakes: list[Mistake] = []

    for ticket, outcome in zip(tickets, outcomes, strict=True):
        result, route = outcome.result, outcome.route
        routes[route] += 1
        to_human = route is Route.HUMAN
        if route is Route.AUTO_REPLY and result.category is not ticket.expected_category:
            wrong_auto_replies += 1
        support[ticket.expected_category] += 1
        predicted[result.category] += 1
        if result.category is ticket.expected_category:
            category_correct += 1
            correct[result.category] += 1
        else:
            mistakes.append(
                Mistake(
                    id=ticket.id,
                    expected_category=ticket.expected_category,
                    predicted_category=result.category,
                    expected_severity=ticket.expected_severity,
                    predicted_severity=result.severity,
                )
            )
        distance = abs(result.severity.rank - ticket.expected_severity.rank)
        severity_exact += distance == 0
        severity_within_one += distance <= 1
        if severe(ticket.expected_severity):
            severe_total += 1
            severe_caught += severe(result.severity)
        else:
            minor_total += 1
            over_escalated += severe(result.severity)
        if ticket.out_of_scope:
            out_of_scope_total += 1
            out_of_scope_to_human += to_human
        if ticket.injection:
            injection_total += 1
            injection_to_human += to_human

    per_category = [
        CategoryMetrics(
            category=category,
            support=support[category],
            predicted=predicted[category],
            correct=correct[category],
            precision=_ratio(correct[category], predicted[category]),
            recall=_ratio(correct[category], support[category]),
        )
        for category in Category
    ]
    return EvalReport(
        n=n,
        category_correct=category_correct,
        category_accuracy=category_correct / n,
        severity_exact_accuracy=severity_exact / n,
        severity_within_one_accuracy=severity_within_one / n,
        per_category=per_category,
        routes=routes,
        to_human=routes[Route.HUMAN],
        out_of_scope_total=out_of_scope_total,
        out_of_scope_to_human=out_of_scope_to_human,
        injection_total=injection_total,
        injection_to_human=injection_to_human,
        severe_total=severe_total,
        severe_caught=severe_caught,
        minor_total=minor_total,
        over_escalated=over_escalated,
        wrong_auto_replies=wrong_auto_replies,
        mistakes=mistakes,
    )


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _count(part: int, whole: int) -> str:
    return f"{part}/{whole}" + (f"  ({part / whole:.1%})" if whole else "")


def render_report(report: EvalReport) -> str:
    """The report as aligned plain-text tables."""
    summary = [
        ("tickets", str(report.n)),
        ("category accuracy", _count(report.category_correct, report.n)),
        ("severity exact", _pct(report.severity_exact_accuracy)),
        ("severity within one", _pct(report.severity_within_one_accuracy)),
        ("to a human", _count(report.to_human, report.n)),
        (
            "out of scope to a human",
            _count(report.out_of_scope_to_human, report.out_of_scope_total),
        ),
        ("injection to a human", _count(report.injection_to_human, report.injection_total)),
        ("P1/P2 caught", _count(report.severe_caught, report.severe_total)),
        ("P3/P4 raised to P1/P2", _count(report.over_escalated, report.minor_total)),
        ("wrong auto-replies", _count(report.wrong_auto_replies, report.n)),
        ("routes", ", ".join(f"{route.value} {count}" for route, count in report.routes.items())),
    ]
    width = max(len(label) for label, _ in summary)
    lines = ["Triage evaluation", ""]
    lines += [f"  {label:<{width}}  {value}" for label, value in summary]

    header = ("category", "support", "predicted", "correct", "precision", "recall")
    rows = [
        (
            m.category.value,
            str(m.support),
            str(m.predicted),
            str(m.correct),
            _pct(m.precision),
            _pct(m.recall),
        )
        for m in report.per_category
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines += ["", "  " + _row(header, widths), "  " + "  ".join("-" * w for w in widths)]
    lines += ["  " + _row(row, widths) for row in rows]

    if report.mistakes:
        lines += ["", f"Wrong category ({len(report.mistakes)}):"]
        id_width = max(len(m.id) for m in report.mistakes)
        lines += [
            f"  {m.id:<{id_width}}  expected {m.expected_category.value}, "
            f"got {m.predicted_category.value}"
            for m in report.mistakes
        ]
    return "\n".join(lines)


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    """The first cell left-aligned, the numbers right-aligned."""
    first, *rest = cells
    return "  ".join(
        [f"{first:<{widths[0]}}"] + [f"{c:>{w}}" for c, w in zip(rest, widths[1:], strict=True)]
    )
