"""A ticket's life after the answer, inside its workflow: auto-solve, the reopen window, reopen.

The state is :class:`kruxt.models.lifecycle.LifecycleState`, carried in the ticket's state; this
adds the workflow's clock, the timers and the record of each milestone. Usage in the main loop::

    self._lifecycle = Lifecycle(ticket_id, policy, state.lifecycle, patches)
    self._lifecycle.observe(status)                     # each turn: is it waiting on the customer?
    timeout = self._lifecycle.timeout(status)           # None: no timer needed
    due = self._lifecycle.due(status)                   # AUTO_SOLVE or CLOSE, once their time came
    await self._lifecycle.solved(SolvedHow.ASSUMED, by) # the reopen window opens
    if self._lifecycle.reopens(status): await self._lifecycle.reopened(by)
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from enum import StrEnum

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from kruxt.activities.lifecycle import LifecycleActivities
    from kruxt.models.enums import TicketStatus
    from kruxt.models.lifecycle import LifecycleEvent, LifecycleState, SolvedHow
    from kruxt.models.tickets import RoutingPolicy
    from kruxt.workflows.policies import DB_RETRY, DB_TIMEOUT
    from kruxt.workflows.revisions import Patches
    from kruxt.workflows.sla import MIN_TIMER

__all__ = ["CLOSING_TEXT", "TICKET_LIFECYCLE", "Due", "Lifecycle"]

# workflow.patched: an answered ticket solves itself on silence or a confirmation; a solved one
# waits out its reopen window (before, a ticket lived until staff resolved it, then ended).
TICKET_LIFECYCLE = "ticket-lifecycle"

CLOSING_TEXT = (
    "We haven't heard back from you, so we're assuming the answer above solved it and are "
    "closing this ticket. If anything still looks wrong, just reply here and we'll pick it up "
    "again."
)


class Due(StrEnum):
    """What the lifecycle's timer says is due now."""

    AUTO_SOLVE = "auto_solve"  # the customer stayed silent after the answer
    CLOSE = "close"  # the solved ticket's reopen window ended: the workflow completes


class Lifecycle:
    """The auto-solve timer and the reopen window of one ticket, on workflow time."""

    def __init__(
        self, ticket_id: uuid.UUID, policy: RoutingPolicy, state: LifecycleState, patches: Patches
    ) -> None:
        """``state`` is the ticket state's own (changed in place)."""
        self._ticket_id = ticket_id
        self._patches = patches
        self._auto_solve = timedelta(seconds=policy.auto_solve_after_seconds)
        self._window = timedelta(seconds=policy.reopen_window_seconds)
        self._state = state

    @property
    def on(self) -> bool:
        """True unless this run replays a history from before the lifecycle."""
        return self._patches.patched(TICKET_LIFECYCLE)

    def observe(self, status: TicketStatus) -> None:
        """Start the auto-solve timer when the ticket begins waiting on the customer."""
        state = self._state
        if status is not TicketStatus.AWAITING_CUSTOMER:
            state.awaiting_since = state.auto_solve_at = None
        elif state.awaiting_since is None:
            state.awaiting_since = workflow.now()
            state.auto_solve_at = state.awaiting_since + self._auto_solve

    def replied(self) -> None:
        """The customer wrote: a later wait on them starts its timer afresh."""
        self._state.awaiting_since = self._state.auto_solve_at = None

    def _deadline(self, status: TicketStatus) -> datetime | None:
        if status is TicketStatus.AWAITING_CUSTOMER:
            return self._state.auto_solve_at
        if status is TicketStatus.RESOLVED:
            return self._state.reopen_until
        return None

    def timeout(self, status: TicketStatus) -> timedelta | None:
        """How long the caller may sleep before the lifecycle has work; None: forever."""
        deadline = self._deadline(status)
        return None if deadline is None else max(deadline - workflow.now(), MIN_TIMER)

    def due(self, status: TicketStatus) -> Due | None:
        """The milestone whose time has come, if any."""
        deadline = self._deadline(status)
        if deadline is None or workflow.now() < deadline:
            return None
        return Due.AUTO_SOLVE if status is TicketStatus.AWAITING_CUSTOMER else Due.CLOSE

    def reopens(self, status: TicketStatus) -> bool:
        """True when a customer message now reopens the (solved) ticket."""
        until = self._state.reopen_until
        return status is TicketStatus.RESOLVED and until is not None and workflow.now() < until

    async def solved(self, how: SolvedHow, by: str) -> None:
        """The ticket is solved now: record how, and open the reopen window."""
        state = self._state
        state.solved_at = workflow.now()
        state.solved_how, state.solved_by = how, by
        state.reopen_until = state.solved_at + self._window
        self.replied()
        await self._record(
            LifecycleEvent(
                ticket_id=self._ticket_id,
                event="ticket_solved",
                actor=by,
                how=how,
                reopened_count=state.reopened_count,
                reopen_until=state.reopen_until,
            )
        )

    async def reopened(self, by: str) -> None:
        """A customer message within the window reopened the ticket: record it."""
        state = self._state
        state.reopened_count += 1
        state.reopened_at = workflow.now()
        state.reopen_until = None
        await self._record(
            LifecycleEvent(
                ticket_id=self._ticket_id,
                event="ticket_reopened",
                actor=by,
                how=state.solved_how,
                reopened_count=state.reopened_count,
            )
        )

    async def _record(self, event: LifecycleEvent) -> None:
        what = event.event.replace("_", " ")
        await workflow.execute_activity_method(
            LifecycleActivities.record_lifecycle,
            event,
            summary=f"Record {what}",
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
