"""A ticket's SLA clocks inside its workflow: durable timers, warnings, breaches, KPIs.

The arithmetic is :mod:`kruxt.models.sla`'s (pure); this adds the workflow's clock
(``workflow.now()``), the notices as activities and the ``SlaBreached`` search attribute.
Usage in a workflow's main loop::

    self._sla = SlaTracker(ticket_id, targets)          # targets: a workflow input field
    self._sla.start(priority, intake.received_at)        # after triage
    ...
    timeout = self._sla.timeout()                        # None: no timer needed
    await workflow.wait_condition(has_work, timeout=timeout)   (TimeoutError suppressed)
    await self._sla.check(summary=triage.summary)        # warnings and breaches due now
    await self._sla.stop(ClockKind.FIRST_RESPONSE)       # first outbound message
    self._sla.pause() / self._sla.resume()               # awaiting customer / they replied
    self._sla.retarget(new_priority)                     # a human changed the priority
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from kruxt.activities.sla import SlaActivities
    from kruxt.models import search_attributes as sa
    from kruxt.models.enums import Priority
    from kruxt.models.sla import (
        ClockKind,
        SlaClock,
        SlaEvent,
        SlaEventKind,
        SlaMet,
        SlaNotice,
        SlaSummary,
        SlaTargets,
        due_events,
        mark_events,
        next_wakeup,
        start_clocks,
        summarize,
    )
    from kruxt.workflows.failures import failure_reason
    from kruxt.workflows.policies import DB_RETRY, DB_TIMEOUT, NOTIFY_RETRY, NOTIFY_TIMEOUT

__all__ = ["MIN_TIMER", "SlaTracker"]

# A deadline already past still gets a (short) timer, so the caller's loop wakes up.
MIN_TIMER = timedelta(seconds=1)


class SlaTracker:
    """The first-response and resolution clocks of one ticket, on workflow time."""

    def __init__(
        self,
        ticket_id: uuid.UUID,
        targets: SlaTargets,
        *,
        clocks: list[SlaClock] | None = None,
        priority: Priority | None = None,
    ) -> None:
        """Fresh (no clocks yet), or restored from a continue-as-new (``clocks``, ``priority``)."""
        self._ticket_id = ticket_id
        self._targets = targets
        self._clocks: list[SlaClock] = list(clocks or [])
        self._priority = priority

    @property
    def clocks(self) -> list[SlaClock]:
        """The clocks as they stand (carry them over a continue-as-new)."""
        return list(self._clocks)

    @property
    def priority(self) -> Priority | None:
        """The priority the targets are taken from."""
        return self._priority

    @property
    def started(self) -> bool:
        """True once the clocks run."""
        return bool(self._clocks)

    def clock(self, kind: ClockKind) -> SlaClock | None:
        """One clock, if started."""
        return next((c for c in self._clocks if c.kind is kind), None)

    def start(self, priority: Priority, started_at: datetime | None = None) -> None:
        """Start both clocks from ``started_at`` (the ticket's arrival); once only."""
        if self._clocks:
            return
        self._priority = priority
        self._clocks = start_clocks(self._targets, priority, started_at or workflow.now())

    def restart(self, priority: Priority, started_at: datetime) -> None:
        """Fresh clocks for a new exchange (a reopened ticket), from ``started_at``."""
        self._clocks = []
        self.start(priority, started_at)

    def _replace(self, kind: ClockKind, clock: SlaClock) -> None:
        self._clocks = [clock if c.kind is kind else c for c in self._clocks]

    def pause(self) -> None:
        """The ticket waits on the customer: the resolution clock stops counting."""
        clock = self.clock(ClockKind.RESOLUTION)
        if clock is not None:
            self._replace(ClockKind.RESOLUTION, clock.pause(workflow.now()))

    def resume(self) -> None:
        """The customer replied: the resolution clock counts again, its deadline pushed back."""
        clock = self.clock(ClockKind.RESOLUTION)
        if clock is not None:
            self._replace(ClockKind.RESOLUTION, clock.resume(workflow.now()))

    def retarget(self, priority: Priority) -> None:
        """A priority change: both targets recomputed from the ticket's start, pauses kept."""
        if not self._clocks or priority is self._priority:
            self._priority = priority
            return
        self._priority = priority
        self._clocks = [
            c if c.stopped else c.retarget(self._targets.target_seconds(c.kind, priority))
            for c in self._clocks
        ]

    def timeout(self) -> timedelta | None:
        """How long the caller may sleep before a warning or a breach is due; None: forever."""
        wakeup = next_wakeup(self._clocks)
        if wakeup is None:
            return None
        return max(wakeup - workflow.now(), MIN_TIMER)

    def summary(self) -> SlaSummary:
        """How the clocks stand now (for the ``state`` query and current details)."""
        return summarize(self._clocks, workflow.now())

    async def check(self, *, summary: str) -> list[SlaEvent]:
        """Send the warnings and breaches due now; set ``SlaBreached`` on a breach.

        Each event is marked as reported before it is sent: a notice that fails for good is
        logged, not retried by every later check.
        """
        events = due_events(self._clocks, workflow.now())
        if not events or self._priority is None:
            return []
        self._clocks = mark_events(self._clocks, events)
        for event in events:
            notice = SlaNotice(
                **event.model_dump(exclude={"kind", "at"}),
                event=event.kind,
                ticket_id=self._ticket_id,
                summary=summary,
                priority=self._priority,
            )
            if event.kind is SlaEventKind.BREACH:
                workflow.upsert_search_attributes([sa.SLA_BREACHED.value_set(True)])
            try:
                await workflow.execute_activity_method(
                    SlaActivities.notify_sla,
                    notice,
                    start_to_close_timeout=NOTIFY_TIMEOUT,
                    retry_policy=NOTIFY_RETRY,
                    summary=f"SLA {event.kind.value}: {event.clock.value}",
                )
            except ActivityError as err:
                workflow.logger.warning(
                    "SLA %s of %s not sent: %s",
                    event.kind.value,
                    event.clock.value,
                    failure_reason(err),
                )
        return events

    async def stop(self, kind: ClockKind) -> SlaClock | None:
        """The clock's goal is reached now; a clock within its target records ``sla_met``.

        Returns the stopped clock, or None when it was not running.
        """
        clock = self.clock(kind)
        if clock is None or clock.stopped or self._priority is None:
            return None
        stopped = clock.stop(workflow.now())
        self._replace(kind, stopped)
        if stopped.met():
            assert stopped.stopped_at is not None
            await workflow.execute_activity_method(
                SlaActivities.record_sla_met,
                SlaMet(
                    ticket_id=self._ticket_id,
                    priority=self._priority,
                    clock=kind,
                    seconds=stopped.elapsed(stopped.stopped_at),
                    target_seconds=stopped.target_seconds,
                ),
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=DB_RETRY,
                summary=f"SLA met: {kind.value}",
            )
        return stopped
