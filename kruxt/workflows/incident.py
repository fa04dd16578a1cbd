"""IncidentWorkflow: page the escalation policy until someone acknowledges; on resolution,
tell every attached ticket and post the timeline.

Workflow id ``incident-<incident_id>`` (``open_or_join_incident`` signals-with-start it).
Escalation works like PagerDuty's: each level of the policy is paged in turn and given its
delay to acknowledge, the whole list ``loops`` times; an acknowledgement (Slack button,
e-mail instructions, ``kruxt incident ack``) stops it. When the loops run out the
exhaustion is recorded and the incident waits, without more pages, for an ack or the
resolution.

The incident follows its worst ticket: when a more severe one joins (a P2 cluster meeting
its P1 outage), its severity and title become that ticket's, the change goes in the timeline,
and, unless someone has it already, paging starts again from the first level with the incident
posted anew in the channel.

A long incident (many attached tickets, many pages) continues-as-new before its history
grows large, carrying its whole state: the escalation resumes at the same level and loop,
with the same deadline.

A large outage brings thousands of tickets, so the workflow's state does not grow with
them: it counts its tickets (by the database's count each join carries) and keeps only the
last few, for the pages and the query; the database has every one, and the timeline of
each join. On resolution one activity tells them all, a page at a time.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    # The signal each attached ticket's workflow receives (payload: IncidentResolved).
    from kruxt.activities.incidents import INCIDENT_RESOLVED_SIGNAL, IncidentActivities
    from kruxt.models.approvals import DecisionChannel
    from kruxt.models.defects import incident_defect
    from kruxt.models.incidents import (
        Acknowledge,
        Acknowledged,
        AttachTicket,
        IncidentCarryOver,
        IncidentEvent,
        IncidentInput,
        IncidentOutcome,
        IncidentResolved,
        IncidentState,
        IncidentStatus,
        IncidentStatusChange,
        IncidentStatusResult,
        PageInput,
        PageRecord,
        ResolveIncident,
        TellTickets,
        TicketsTold,
        TimelineEntry,
        TimelinePost,
    )
    from kruxt.models.text import replace_unstorable
    from kruxt.workflows.defect_issue import FILES_DEFECT_ISSUES, report_defect
    from kruxt.workflows.failures import failure_reason
    from kruxt.workflows.policies import DB_RETRY, DB_TIMEOUT, NOTIFY_RETRY, NOTIFY_TIMEOUT
    from kruxt.workflows.revisions import Patches, Revision

__all__ = ["INCIDENT_RESOLVED_SIGNAL", "IncidentWorkflow"]

AUTOPILOT = "autopilot"
# workflow.patched: a more severe ticket re-titles the incident and restarts its paging.
ESCALATES_WITH_WORST_TICKET = "incident-escalates-with-worst-ticket"
# workflow.patched: the incident counts its tickets and keeps the last RECENT_TICKETS; one
# activity tells them all. Runs from before kept every ticket and signalled each one.
COUNTS_ITS_TICKETS = "incident-counts-its-tickets"
# An incident run started on this revision takes these changes with one marker in its history
# (kruxt.workflows.revisions), where it recorded one for each it reached; a change after it
# gets its own patch until the next revision.
INCIDENT_REVISION_2026_12 = Revision(
    "incident-revision-2026-12",
    frozenset({COUNTS_ITS_TICKETS, ESCALATES_WITH_WORST_TICKET, FILES_DEFECT_ISSUES}),
)
RECENT_TICKETS = 20
# What a continued run keeps of the timeline (the database has all of it).
TIMELINE_CARRIED = 100
# Telling thousands of tickets takes a while; the activity heartbeats each batch.
TELL_TIMEOUT = timedelta(minutes=30)
TELL_HEARTBEAT = timedelta(minutes=1)


@workflow.defn
class IncidentWorkflow:
    """One incident: escalate until acknowledged, then wait for the resolution."""

    @workflow.init
    def __init__(self, inp: IncidentInput) -> None:
        # First: the revision's marker belongs to the run's first workflow task.
        self._patches = Patches(INCIDENT_REVISION_2026_12)
        carry = inp.carry_over or IncidentCarryOver(
            status=IncidentStatus.OPEN, priority=inp.priority, tickets=[inp.first_ticket]
        )
        # Activities get the incident without the carry-over (it only grows their inputs).
        self._inp = inp.model_copy(update={"carry_over": None})
        self._status = carry.status
        self._priority = carry.priority
        self._tickets: dict[uuid.UUID, AttachTicket] = {t.ticket_id: t for t in carry.tickets}
        self._ticket_count = max(
            carry.ticket_count, len(self._tickets), *(t.attached for t in carry.tickets)
        )
        self._counts: bool | None = None  # see _counting
        self._told_tally: TicketsTold | None = None  # once resolved
        self._ack: Acknowledged | None = carry.ack
        self._resolve_request: ResolveIncident | None = None
        self._resolved_at: datetime | None = None
        self._level = carry.level
        self._loop = carry.loop
        self._next_level_at: datetime | None = carry.next_level_at
        self._exhausted = carry.exhausted
        self._pages: list[PageRecord] = list(carry.pages)
        self._timeline: list[TimelineEntry] = list(carry.timeline)
        # The next page posts the incident anew (it escalated since the first post).
        self._repost = carry.repost
        self._told: list[uuid.UUID] = []
        self._attempted: set[uuid.UUID] = set()

    @workflow.run
    async def run(self, inp: IncidentInput) -> IncidentOutcome:
        """Escalate, then wait for the resolution; returns once the tickets are told."""
        if inp.carry_over is None:
            self._note(
                f"opened by ticket {inp.first_ticket.ticket_id} ({inp.priority.value}): "
                f"{inp.title}",
                at=inp.opened_at,
            )
        else:
            self._publish()
        await self._escalate()
        while True:
            await workflow.wait_condition(
                lambda: (
                    self._resolve_request is not None or self._continue_due() or self._paging_due()
                )
            )
            if self._resolve_request is not None or self._continue_due():
                break
            await self._escalate()  # escalated after the paging ran out: page again
        if self._resolve_request is None:
            # Updates (an ack recording itself) finish in this run; a resolution that
            # arrives meanwhile is handled here rather than carried.
            await workflow.wait_condition(
                lambda: workflow.all_handlers_finished() or self._resolve_request is not None
            )
            if self._resolve_request is None:
                workflow.continue_as_new(self._continuation())
        assert self._resolve_request is not None
        return await self._resolve(self._resolve_request)

    # -- signals, updates and the query --------------------------------------------------

    @workflow.signal
    def attach_ticket(self, ticket: AttachTicket) -> None:
        """A ticket with the same probable root cause joined (sent by open_or_join)."""
        counting = self._counting()
        if counting:
            # The database's count once this ticket joined: a repeated signal counts once.
            self._ticket_count = max(self._ticket_count, ticket.attached)
        if ticket.ticket_id in self._tickets:
            return
        self._tickets[ticket.ticket_id] = ticket
        if counting:
            if not ticket.attached:
                self._ticket_count += 1  # sent by a worker from before the count
            while len(self._tickets) > RECENT_TICKETS:
                del self._tickets[next(iter(self._tickets))]
        else:
            self._ticket_count = len(self._tickets)
            self._note(f"ticket {ticket.ticket_id} ({ticket.priority.value}) attached")
        if ticket.priority.rank < self._priority.rank:
            if self._patches.patched(ESCALATES_WITH_WORST_TICKET):
                self._escalate_to(ticket)
            else:
                self._priority = ticket.priority
        self._publish()

    def _escalate_to(self, ticket: AttachTicket) -> None:
        """The incident takes the severity and title of a more severe ticket; paging starts
        again from the first level unless someone has it already."""
        was = self._priority
        self._priority = ticket.priority
        self._inp = self._inp.model_copy(
            update={"priority": ticket.priority, "title": ticket.summary}
        )
        self._note(f"escalated {was.value} -> {ticket.priority.value}: {ticket.summary}")
        if not self._settled():
            # A page in flight keeps its level; the one after it starts from the first.
            self._level, self._loop, self._exhausted = 0, 0, False
            self._next_level_at = None
            self._repost = True

    @workflow.update
    async def acknowledge(self, ack: Acknowledge) -> Acknowledged:
        """Someone took the incident: escalation stops. Refused once acknowledged or resolved."""
        # Two updates in one task both pass the validator: re-check, so the second loses.
        reason = self._ack_refusal()
        if reason is not None:
            raise ApplicationError(reason, type="AcknowledgeRefused")
        acknowledged = Acknowledged(
            incident_id=self._inp.incident_id, by=ack.by, channel=ack.channel, at=workflow.now()
        )
        self._ack = acknowledged
        self._status = IncidentStatus.ACKNOWLEDGED
        self._note(f"acknowledged by {ack.by} via {ack.channel.value}", actor=ack.by)
        self._publish()
        try:
            await self._set_status(IncidentStatus.ACKNOWLEDGED, ack.by, channel=ack.channel)
        except ActivityError as err:
            # Taken in the workflow (paging stopped); only the record lags, e.g. a resolution
            # that raced it. The resolution's record supersedes it.
            workflow.logger.warning("ack of %s not recorded: %s", ack.by, failure_reason(err))
        return acknowledged

    @acknowledge.validator
    def _validate_acknowledge(self, ack: Acknowledge) -> None:
        reason = self._ack_refusal()
        if reason is not None:
            raise ValueError(reason)

    def _ack_refusal(self) -> str | None:
        if self._resolve_request is not None:
            return f"incident {self._inp.incident_id} is resolved"
        if self._ack is not None:
            return (
                f"incident {self._inp.incident_id} is already acknowledged by {self._ack.by} "
                f"at {self._ack.at:%Y-%m-%d %H:%M} UTC"
            )
        return None

    @workflow.update
    async def resolve(self, request: ResolveIncident) -> IncidentState:
        """Resolve the incident; returns once its tickets are told and the timeline posted."""
        if self._resolve_request is not None:
            raise ApplicationError(
                f"incident {self._inp.incident_id} is already resolved", type="ResolveRefused"
            )
        self._resolve_request = request
        await workflow.wait_condition(lambda: self._status is IncidentStatus.RESOLVED)
        return self.state()

    @resolve.validator
    def _validate_resolve(self, request: ResolveIncident) -> None:
        if self._resolve_request is not None:
            by = self._resolve_request.by
            raise ValueError(f"incident {self._inp.incident_id} is already resolved by {by}")

    def _counting(self) -> bool:
        """True when this run counts its tickets and keeps the last few (COUNTS_ITS_TICKETS);
        asked once, where it is first needed, so a replay asks at the same point."""
        if self._counts is None:
            self._counts = self._patches.patched(COUNTS_ITS_TICKETS)
        return self._counts

    def _recent(self) -> list[AttachTicket]:
        """The tickets the workflow holds: the last few, or (runs from before) every one."""
        tickets = list(self._tickets.values())
        return tickets[-RECENT_TICKETS:] if self._counts else tickets

    @workflow.query
    def state(self) -> IncidentState:
        """Where the incident stands."""
        ack = self._ack
        return IncidentState(
            incident_id=self._inp.incident_id,
            key=self._inp.key,
            title=self._inp.title,
            priority=self._priority,
            status=self._status,
            level=self._level,
            loop=self._loop,
            escalation_exhausted=self._exhausted,
            acknowledged_by=ack.by if ack else None,
            acknowledged_at=ack.at if ack else None,
            resolved_by=self._resolve_request.by
            if self._status is IncidentStatus.RESOLVED and self._resolve_request
            else None,
            resolved_at=self._resolved_at,
            tickets=self._recent(),
            ticket_count=self._ticket_count,
            told=self._told_tally,
            pages=list(self._pages),
            timeline=list(self._timeline),
        )

    # -- escalation ----------------------------------------------------------------------

    def _settled(self) -> bool:
        return self._ack is not None or self._resolve_request is not None

    def _paging_due(self) -> bool:
        """A page is due now: escalation restarted paging (see ``_escalate_to``)."""
        return not self._settled() and not self._exhausted and self._next_level_at is None

    def _continue_due(self) -> bool:
        """Time to continue-as-new: the server suggests it, or the test limit is reached."""
        info = workflow.info()
        limit = self._inp.history_limit
        return info.is_continue_as_new_suggested() or (
            limit is not None and info.get_current_history_length() >= limit
        )

    async def _escalate(self) -> None:
        """Page from the current position on; returns when settled, exhausted, or when the
        run should continue-as-new (the position and its deadline are kept for the next)."""
        policy = self._inp.policy
        while not self._settled() and not self._exhausted:
            if self._next_level_at is None:
                await self._page(self._level, self._loop)
                self._publish()
                delay = timedelta(minutes=policy.levels[self._level].delay_minutes)
                self._next_level_at = workflow.now() + delay
            remaining = self._next_level_at - workflow.now()
            if remaining > timedelta(0):
                try:
                    await workflow.wait_condition(
                        lambda: self._settled() or self._continue_due() or self._paging_due(),
                        timeout=remaining,
                    )
                except TimeoutError:
                    pass
                else:
                    if self._paging_due() and not self._continue_due():
                        continue  # escalated: page the first level now
                    return
            if self._settled():
                return  # acknowledged as the delay ran out
            # This level had its delay: on to the next one, the next loop, or exhaustion.
            if self._level + 1 < len(policy.levels):
                self._level += 1
            elif self._loop + 1 < policy.loops:
                self._level, self._loop = 0, self._loop + 1
            else:
                await self._exhaust()
                return
            self._next_level_at = None

    async def _exhaust(self) -> None:
        policy = self._inp.policy
        self._exhausted = True
        entry = (
            f"escalation exhausted: {len(policy.levels)} level(s) paged {policy.loops} time(s) "
            "without an acknowledgement; no more pages"
        )
        self._note(entry)
        self._publish()
        await self._record("incident.escalation_exhausted", entry)

    async def _page(self, index: int, loop: int) -> None:
        level = self._inp.policy.levels[index]
        record = PageRecord(level=index, level_name=level.name, loop=loop, at=workflow.now())
        repost, self._repost = self._repost, False
        try:
            result = await workflow.execute_activity_method(
                IncidentActivities.page_level,
                PageInput(
                    incident=self._inp,
                    level=index,
                    loop=loop,
                    tickets=self._recent(),
                    ticket_count=self._ticket_count,
                    at=record.at,
                    repost=repost,
                ),
                start_to_close_timeout=NOTIFY_TIMEOUT,
                retry_policy=NOTIFY_RETRY,
                summary=f"Page {level.name} (level {index + 1}, loop {loop + 1})",
            )
        except ActivityError as err:
            # Paging goes on to the next level: a broken channel must not stop escalation.
            record.failed = failure_reason(err)
            self._pages.append(record)
            entry = f"page of {level.name} (level {index + 1}, loop {loop + 1}) failed: "
            self._note(entry + record.failed)
            await self._record("incident.page_failed", entry + record.failed)
            return
        record.slack_posted = result.slack_posted
        record.emailed = result.emailed
        record.failed = "; ".join(result.problems) or None
        self._pages.append(record)
        self._note(f"paged {level.name} (level {index + 1}, loop {loop + 1})")

    # -- resolution ----------------------------------------------------------------------

    async def _resolve(self, request: ResolveIncident) -> IncidentOutcome:
        counting = self._counting()
        result = await self._set_status(
            IncidentStatus.RESOLVED, request.by, channel=request.channel, note=request.note
        )
        if counting:
            self._ticket_count = max(self._ticket_count, result.ticket_count)
        else:
            # The database's list is complete (joins are locked out while resolving); the
            # signals received are merged in for tickets whose join raced the resolution.
            for ticket in result.tickets:
                self._tickets.setdefault(ticket.ticket_id, ticket)
        self._note(f"resolved by {request.by}" + (f": {request.note}" if request.note else ""))
        resolved = IncidentResolved(
            incident_id=self._inp.incident_id,
            note=request.note,
            by=request.by,
            customer_note=request.customer_note,
        )
        told = TicketsTold()
        if counting:
            # From the database, which has every ticket (joins are locked out now).
            told = await workflow.execute_activity_method(
                IncidentActivities.tell_incident_tickets,
                TellTickets(resolved=resolved, at=workflow.now()),
                start_to_close_timeout=TELL_TIMEOUT,
                heartbeat_timeout=TELL_HEARTBEAT,
                retry_policy=DB_RETRY,
                summary=f"Tell the {self._ticket_count} ticket(s)",
            )
            self._told_tally = told
            self._note(
                f"{told.told} ticket(s) told of the resolution"
                + (f"; {told.not_told} closed, not told" if told.not_told else "")
            )
        else:
            await self._tell_tickets(resolved)
        await workflow.execute_activity_method(
            IncidentActivities.post_timeline,
            TimelinePost(
                incident=self._inp, resolved_by=request.by, note=request.note, at=workflow.now()
            ),
            start_to_close_timeout=NOTIFY_TIMEOUT,
            retry_policy=NOTIFY_RETRY,
            summary="Post the timeline",
        )
        if request.defect and self._patches.patched(FILES_DEFECT_ISSUES):
            await report_defect(
                incident_defect(
                    self._inp,
                    resolved_by=request.by,
                    prevention=request.prevention,
                    at=workflow.now(),
                )
            )
        self._resolved_at = workflow.now()
        self._status = IncidentStatus.RESOLVED
        self._publish()
        await workflow.wait_condition(workflow.all_handlers_finished)
        if not counting:
            # A ticket that attached while the handlers finished is told too.
            await self._tell_tickets(resolved)
            told = TicketsTold(
                told=len(self._told), not_told=len(self._attempted) - len(self._told)
            )
            self._told_tally = told
        return IncidentOutcome(
            incident_id=self._inp.incident_id,
            status=self._status,
            acknowledged_by=self._ack.by if self._ack else None,
            resolved_by=request.by,
            resolved_at=self._resolved_at,
            tickets_told=list(self._told),
            told=told.told,
            not_told=told.not_told,
        )

    async def _tell_tickets(self, resolved: IncidentResolved) -> None:
        for ticket in list(self._tickets.values()):
            if ticket.ticket_id in self._attempted:
                continue
            self._attempted.add(ticket.ticket_id)
            handle = workflow.get_external_workflow_handle(ticket.workflow_id)
            try:
                await handle.signal(INCIDENT_RESOLVED_SIGNAL, resolved)
            except FailureError as err:
                # The ticket's workflow is closed (resolved on its own): nothing to tell.
                action = "incident.ticket_not_told"
                entry = f"ticket {ticket.ticket_id} not told ({err.message})"
            else:
                self._told.append(ticket.ticket_id)
                action = "incident.ticket_told"
                entry = f"ticket {ticket.ticket_id} told of the resolution"
            self._note(entry)
            await self._record(action, entry)

    # -- helpers -------------------------------------------------------------------------

    def _continuation(self) -> IncidentInput:
        counting = self._counting()
        return self._inp.model_copy(
            update={
                "carry_over": IncidentCarryOver(
                    status=self._status,
                    priority=self._priority,
                    tickets=self._recent(),
                    ticket_count=self._ticket_count,
                    ack=self._ack,
                    level=self._level,
                    loop=self._loop,
                    next_level_at=self._next_level_at,
                    exhausted=self._exhausted,
                    pages=self._pages,
                    timeline=self._timeline[-TIMELINE_CARRIED:] if counting else self._timeline,
                    repost=self._repost,
                )
            }
        )

    async def _set_status(
        self,
        status: IncidentStatus,
        actor: str,
        *,
        channel: DecisionChannel | None = None,
        note: str = "",
    ) -> IncidentStatusResult:
        return await workflow.execute_activity_method(
            IncidentActivities.set_incident_status,
            IncidentStatusChange(
                incident=self._inp,
                tickets=self._ticket_count,
                list_tickets=not self._counting(),
                status=status,
                # Text from acks and resolutions is stored, never retried forever: what the
                # database refuses (NUL) is replaced rather than failing every attempt.
                actor=replace_unstorable(actor),
                channel=channel,
                note=replace_unstorable(note),
                at=workflow.now(),
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=f"Set incident {status.value}",
        )

    async def _record(self, action: str, entry: str) -> None:
        await workflow.execute_activity_method(
            IncidentActivities.record_incident_event,
            IncidentEvent(
                incident_id=self._inp.incident_id,
                action=action,
                entry=replace_unstorable(entry),
                at=workflow.now(),
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=action,
        )

    def _note(self, what: str, *, actor: str = AUTOPILOT, at: datetime | None = None) -> None:
        self._timeline.append(TimelineEntry(at=at or workflow.now(), what=what, actor=actor))

    def _publish(self) -> None:
        """Refresh what the Web UI shows as this workflow's current details."""
        policy = self._inp.policy
        level = policy.levels[self._level]
        lines = [
            f"**{self._priority.value} incident — {self._status.value}:** {self._inp.title}",
            f"**Tickets:** {self._ticket_count}",
        ]
        if self._ack is not None:
            lines.append(
                f"**Acknowledged** by {self._ack.by} via {self._ack.channel.value} at "
                f"{self._ack.at:%Y-%m-%d %H:%M} UTC"
            )
        elif self._exhausted:
            lines.append(
                f"**Escalation exhausted** after {policy.loops} loop(s): waiting for an ack"
            )
        elif self._pages:
            lines.append(
                f"**Paging** level {self._level + 1}/{len(policy.levels)} ({level.name}), "
                f"loop {self._loop + 1}/{policy.loops}"
            )
        lines.append(f"Acknowledge: `kruxt incident ack {self._inp.incident_id} --as EMAIL`")
        workflow.set_current_details("\n\n".join(lines))
