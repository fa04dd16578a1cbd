"""SLA clocks: targets by priority, and the pure arithmetic of deadlines, pauses and breaches.

Each ticket runs two clocks (DESIGN.md, "Severity, SLA and KPI targets"): the first-response
clock stops at the first message to the customer; the resolution clock stops when the ticket
is resolved and pauses while the ticket waits on the customer (Zendesk's "requester wait").

Everything here is deterministic: no I/O, no ``datetime.now()``; the workflow passes its own
time in. The clock methods return new clocks and never change the one they are called on.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kruxt.models.config_text import parse_config
from kruxt.models.enums import Priority

__all__ = [
    "DEFAULT_FIRST_RESPONSE_MINUTES",
    "DEFAULT_RESOLUTION_MINUTES",
    "DEFAULT_WARN_FRACTION",
    "ClockKind",
    "ClockState",
    "ClockSummary",
    "SlaClock",
    "SlaEvent",
    "SlaEventKind",
    "SlaMet",
    "SlaNotice",
    "SlaSummary",
    "SlaTargets",
    "due_events",
    "mark_events",
    "next_wakeup",
    "parse_sla_targets",
    "start_clocks",
    "summarize",
]

# DESIGN.md's table, in minutes.
DEFAULT_FIRST_RESPONSE_MINUTES: dict[Priority, int] = {
    Priority.P1: 15,
    Priority.P2: 15,
    Priority.P3: 240,
    Priority.P4: 240,
}
DEFAULT_RESOLUTION_MINUTES: dict[Priority, int] = {
    Priority.P1: 240,
    Priority.P2: 1440,
    Priority.P3: 4320,
    Priority.P4: 4320,
}
DEFAULT_WARN_FRACTION = 0.75


class ClockKind(StrEnum):
    """Which SLA clock."""

    FIRST_RESPONSE = "first_response"
    RESOLUTION = "resolution"


class SlaEventKind(StrEnum):
    """What a clock reports: a warning (at the warn fraction) or a breach (at the target)."""

    WARNING = "warning"
    BREACH = "breach"


class ClockState(StrEnum):
    """How a clock stands, for display."""

    RUNNING = "running"
    AT_RISK = "at_risk"
    PAUSED = "paused"
    BREACHED = "breached"
    MET = "met"


def _minutes_by_priority(value: Any, field_name: str) -> Any:
    """Accept ``{"P1": 15}`` or ``{"p1": 15}``; missing priorities keep the defaults."""
    if value is None:
        return value
    if not isinstance(value, dict):
        raise ValueError(f"{field_name} must map priorities (P1..P4) to minutes")
    defaults = (
        DEFAULT_FIRST_RESPONSE_MINUTES
        if field_name == "first_response_minutes"
        else DEFAULT_RESOLUTION_MINUTES
    )
    merged: dict[str, Any] = {p.value: m for p, m in defaults.items()}
    for key, minutes in value.items():
        name = str(key).strip().upper()
        if name not in merged:
            raise ValueError(f"{field_name}: unknown priority {key!r} (expected P1, P2, P3, P4)")
        merged[name] = minutes
    return merged


class SlaTargets(BaseModel):
    """The SLA targets by priority, in minutes (configuration: ``KRUXT_SLA_TARGETS``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    first_response_minutes: dict[Priority, int] = Field(
        default_factory=lambda: dict(DEFAULT_FIRST_RESPONSE_MINUTES)
    )
    resolution_minutes: dict[Priority, int] = Field(
        default_factory=lambda: dict(DEFAULT_RESOLUTION_MINUTES)
    )
    warn_fraction: float = Field(
        default=DEFAULT_WARN_FRACTION,
        gt=0.0,
        lt=1.0,
        description="Share of a target after which a warning goes out",
    )

    @field_validator("first_response_minutes", "resolution_minutes", mode="before")
    @classmethod
    def _fill_priorities(cls, value: Any, info: Any) -> Any:
        return _minutes_by_priority(value, str(info.field_name))

    @field_validator("first_response_minutes", "resolution_minutes")
    @classmethod
    def _positive(cls, value: dict[Priority, int]) -> dict[Priority, int]:
        for priority, minutes in value.items():
            if minutes < 1:
                raise ValueError(f"{priority.value}: a target must be at least 1 minute")
        return value

    def minutes(self, kind: ClockKind, priority: Priority) -> int:
        """The target of one clock for one priority, in minutes."""
        table = (
            self.first_response_minutes
            if kind is ClockKind.FIRST_RESPONSE
            else self.resolution_minutes
        )
        return table[priority]

    def target_seconds(self, kind: ClockKind, priority: Priority) -> int:
        """The target of one clock for one priority, in seconds."""
        return self.minutes(kind, priority) * 60


def parse_sla_targets(text: str | None) -> SlaTargets:
    """SLA targets from JSON or YAML text; empty or None gives DESIGN.md's defaults.

    Raises:
        ValueError: the text is not YAML/JSON, or a target is unknown or not a positive
            number of minutes; the message names what is wrong.
    """
    expected = "first_response_minutes, resolution_minutes and/or warn_fraction"
    targets = parse_config(
        SlaTargets, text, source="SLA targets", expected=expected, whole="targets"
    )
    return targets or SlaTargets()


class SlaClock(BaseModel):
    """One running (or paused, or stopped) SLA clock; serializable across continue-as-new."""

    model_config = ConfigDict(frozen=True)

    kind: ClockKind
    started_at: datetime = Field(description="The ticket's start: deadlines count from here")
    target_seconds: int = Field(ge=1)
    warn_fraction: float = Field(default=DEFAULT_WARN_FRACTION, gt=0.0, lt=1.0)
    paused_seconds: float = Field(default=0.0, ge=0.0, description="Completed pauses")
    paused_since: datetime | None = None
    stopped_at: datetime | None = None
    warned: bool = False
    breached: bool = False

    @property
    def paused(self) -> bool:
        """True while the clock waits on the customer."""
        return self.paused_since is not None and self.stopped_at is None

    @property
    def stopped(self) -> bool:
        """True once the clock's goal is reached (first response sent, ticket resolved)."""
        return self.stopped_at is not None

    def deadline(self) -> datetime | None:
        """When the target is reached, counting completed pauses; None while paused."""
        if self.paused:
            return None
        return self.started_at + timedelta(seconds=self.target_seconds + self.paused_seconds)

    def warn_at(self) -> datetime | None:
        """When the warning is due; None while paused."""
        if self.paused:
            return None
        return self.started_at + timedelta(
            seconds=self.target_seconds * self.warn_fraction + self.paused_seconds
        )

    def elapsed(self, now: datetime) -> float:
        """Seconds the clock has run by ``now`` (or by its stop), pauses excluded."""
        end = min(now, self.stopped_at) if self.stopped_at is not None else now
        paused = self.paused_seconds
        if self.paused_since is not None:
            paused += max(0.0, (end - self.paused_since).total_seconds())
        return max(0.0, (end - self.started_at).total_seconds() - paused)

    def overdue(self, now: datetime) -> float:
        """Seconds past the target by ``now`` (0 when within it)."""
        return max(0.0, self.elapsed(now) - self.target_seconds)

    def met(self) -> bool | None:
        """For a stopped clock: whether it stopped within its target; None while running."""
        if self.stopped_at is None:
            return None
        return not self.breached and self.elapsed(self.stopped_at) <= self.target_seconds

    def pause(self, now: datetime) -> SlaClock:
        """Stop counting from ``now`` (the ticket waits on the customer)."""
        if self.paused_since is not None or self.stopped_at is not None:
            return self
        return self.model_copy(update={"paused_since": now})

    def resume(self, now: datetime) -> SlaClock:
        """Count again from ``now``; the pause pushes the deadline back by its length."""
        if self.paused_since is None or self.stopped_at is not None:
            return self
        length = max(0.0, (now - self.paused_since).total_seconds())
        return self.model_copy(
            update={"paused_since": None, "paused_seconds": self.paused_seconds + length}
        )

    def stop(self, now: datetime) -> SlaClock:
        """The goal is reached at ``now``; a running pause ends there too."""
        if self.stopped_at is not None:
            return self
        return self.resume(now).model_copy(update={"stopped_at": now})

    def retarget(self, target_seconds: int) -> SlaClock:
        """A new target (a priority change), still counted from the ticket's start.

        Pauses are kept. A breach already reported stays reported; a warning is re-armed
        so the new target warns again at its own warn fraction.
        """
        if target_seconds < 1:
            raise ValueError("target_seconds must be at least 1")
        return self.model_copy(update={"target_seconds": target_seconds, "warned": self.breached})

    def marked(self, kind: SlaEventKind) -> SlaClock:
        """This clock with ``kind`` reported (a breach implies the warning)."""
        if kind is SlaEventKind.BREACH:
            return self.model_copy(update={"warned": True, "breached": True})
        return self.model_copy(update={"warned": True})


class SlaEvent(BaseModel):
    """A warning or a breach that is due on one clock."""

    model_config = ConfigDict(frozen=True)

    kind: SlaEventKind
    clock: ClockKind
    at: datetime = Field(description="When it was noticed")
    deadline: datetime
    target_seconds: int
    elapsed_seconds: float
    overdue_seconds: float = Field(description="Past the target (0 for a warning)")


def start_clocks(targets: SlaTargets, priority: Priority, started_at: datetime) -> list[SlaClock]:
    """Both clocks of a new ticket, counted from ``started_at``."""
    return [
        SlaClock(
            kind=kind,
            started_at=started_at,
            target_seconds=targets.target_seconds(kind, priority),
            warn_fraction=targets.warn_fraction,
        )
        for kind in ClockKind
    ]


def due_events(clocks: Iterable[SlaClock], now: datetime) -> list[SlaEvent]:
    """The warnings and breaches due by ``now`` that were not reported yet.

    A clock past its deadline reports the breach only (it implies the warning): a worker
    that was down through both moments sends one message, not two.
    """
    events: list[SlaEvent] = []
    for clock in clocks:
        deadline, warn_at = clock.deadline(), clock.warn_at()
        if clock.stopped or deadline is None or warn_at is None or clock.breached:
            continue
        elapsed = clock.elapsed(now)
        if now >= deadline:
            kind = SlaEventKind.BREACH
        elif now >= warn_at and not clock.warned:
            kind = SlaEventKind.WARNING
        else:
            continue
        events.append(
            SlaEvent(
                kind=kind,
                clock=clock.kind,
                at=now,
                deadline=deadline,
                target_seconds=clock.target_seconds,
                elapsed_seconds=elapsed,
                overdue_seconds=clock.overdue(now) if kind is SlaEventKind.BREACH else 0.0,
            )
        )
    return events


def mark_events(clocks: Iterable[SlaClock], events: Iterable[SlaEvent]) -> list[SlaClock]:
    """The clocks with ``events`` recorded as reported."""
    by_clock = {e.clock: e.kind for e in events}
    return [c.marked(by_clock[c.kind]) if c.kind in by_clock else c for c in clocks]


def next_wakeup(clocks: Iterable[SlaClock]) -> datetime | None:
    """The next moment a warning or a breach becomes due; None when nothing is pending.

    The workflow sleeps until then: ``workflow.wait_condition(..., timeout=wakeup - now)``.
    """
    moments: list[datetime] = []
    for clock in clocks:
        deadline, warn_at = clock.deadline(), clock.warn_at()
        if clock.stopped or clock.breached or deadline is None or warn_at is None:
            continue
        moments.append(deadline if clock.warned else warn_at)
    return min(moments) if moments else None


class ClockSummary(BaseModel):
    """One clock as an operator sees it."""

    kind: ClockKind
    state: ClockState
    target_seconds: int
    elapsed_seconds: float
    deadline: datetime | None = Field(description="None while paused")
    stopped_at: datetime | None = None


class SlaSummary(BaseModel):
    """Both clocks of a ticket, for the ``state`` query, the CLI and the Web UI."""

    clocks: list[ClockSummary] = Field(default_factory=list)
    breached: bool = False

    def line(self) -> str:
        """``first_response met (4m) · resolution at_risk, due 14:30 UTC``."""
        parts = []
        for c in self.clocks:
            text = f"{c.kind.value} {c.state.value}"
            if c.state in (ClockState.MET, ClockState.BREACHED) and c.stopped_at is not None:
                text += f" ({_duration(c.elapsed_seconds)})"
            elif c.deadline is not None:
                text += f", due {c.deadline:%Y-%m-%d %H:%M} UTC"
            parts.append(text)
        return " · ".join(parts)


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, rest = divmod(minutes, 60)
    return f"{hours}h{rest:02d}m"


def _state(clock: SlaClock, now: datetime) -> ClockState:
    deadline, warn_at = clock.deadline(), clock.warn_at()
    if clock.stopped:
        return ClockState.MET if clock.met() else ClockState.BREACHED
    if clock.breached or (deadline is not None and now >= deadline):
        return ClockState.BREACHED
    if clock.paused:
        return ClockState.PAUSED
    if clock.warned or (warn_at is not None and now >= warn_at):
        return ClockState.AT_RISK
    return ClockState.RUNNING


def summarize(clocks: Iterable[SlaClock], now: datetime) -> SlaSummary:
    """How each clock stands at ``now``."""
    summaries = [
        ClockSummary(
            kind=c.kind,
            state=_state(c, now),
            target_seconds=c.target_seconds,
            elapsed_seconds=c.elapsed(now),
            deadline=c.deadline(),
            stopped_at=c.stopped_at,
        )
        for c in clocks
    ]
    return SlaSummary(
        clocks=summaries, breached=any(s.state is ClockState.BREACHED for s in summaries)
    )


# -- activity contracts ------------------------------------------------------------------


class SlaNotice(BaseModel):
    """Input of ``notify_sla``: a warning or a breach to tell people about and record."""

    ticket_id: uuid.UUID
    summary: str = Field(description="One line about the ticket (its triage summary or subject)")
    priority: Priority
    clock: ClockKind
    event: SlaEventKind
    deadline: datetime
    target_seconds: int
    elapsed_seconds: float = 0.0
    overdue_seconds: float = 0.0


class SlaMet(BaseModel):
    """Input of ``record_sla_met``: a clock stopped within its target."""

    ticket_id: uuid.UUID
    priority: Priority
    clock: ClockKind
    seconds: float = Field(ge=0.0, description="How long it took, pauses excluded")
    target_seconds: int
