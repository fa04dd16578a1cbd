"""Incidents' side effects: open or join, page a level, record the timeline, post it.

Every write is audited and keyed by the activity (``activity_key``), so a retried activity
records nothing twice; a page that was recorded is not sent again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta

from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from kruxt.activities._data_errors import bad_data_is_final
from kruxt.activities._keys import activity_key
from kruxt.activities._notify import most_hopeful, notify_failure
from kruxt.adapters.email import Mailer
from kruxt.adapters.email_texts import render_page_email
from kruxt.adapters.email_tokens import IncidentAckTokens
from kruxt.adapters.notifier import IncidentNotifier, MessageRef, NotifyError
from kruxt.adapters.postgres.incidents import (
    Counted,
    IncidentNotFoundError,
    IncidentStateError,
    IncidentStore,
)
from kruxt.models.incidents import (
    DEFAULT_INCIDENT_CLUSTER,
    AttachTicket,
    EscalationLevel,
    EscalationPolicy,
    IncidentCluster,
    IncidentEvent,
    IncidentInput,
    IncidentJoin,
    IncidentStatusChange,
    IncidentStatusResult,
    OpenIncidentInput,
    PageInput,
    PageResult,
    TellTickets,
    TicketsTold,
    TimelinePost,
)

__all__ = [
    "ACK_LINK_TTL",
    "INCIDENT_ACK_PATH",
    "INCIDENT_WORKFLOW",
    "IncidentActivities",
    "incident_ack_link",
]

log = logging.getLogger(__name__)

# The workflow type started by name: activities do not import workflows.
INCIDENT_WORKFLOW = "IncidentWorkflow"
ATTACH_SIGNAL = "attach_ticket"
# TicketWorkflow's: its cluster opened an incident after it was triaged.
TICKET_ATTACHED_SIGNAL = "incident_attached"
# TicketWorkflow's: its incident was resolved (payload: IncidentResolved).
INCIDENT_RESOLVED_SIGNAL = "incident_resolved"
# Telling a large outage's tickets: read this many at a time, signal this many at once.
TELL_PAGE = 200
TELL_AT_ONCE = 20
# E-mailed "Acknowledge" links: served by kruxt.starter.api.incident_routes.
INCIDENT_ACK_PATH = "/incidents/ack/"
ACK_LINK_TTL = timedelta(hours=24)


def incident_ack_link(public_url: str, token: str) -> str:
    """The URL of an acknowledgement link: ``<base>/incidents/ack/<token>``."""
    return f"{public_url.rstrip('/')}{INCIDENT_ACK_PATH}{token}"


class IncidentActivities:
    """Open or join incidents, page the escalation policy's levels, keep the timeline."""

    def __init__(
        self,
        store: IncidentStore,
        *,
        chat: IncidentNotifier | None,
        mailer: Mailer | None,
        public_url: str,
        policy: EscalationPolicy,
        window: timedelta,
        ack_tokens: IncidentAckTokens | None = None,
        cluster: IncidentCluster = DEFAULT_INCIDENT_CLUSTER,
    ) -> None:
        self._store = store
        self._ack_tokens = ack_tokens
        self._slack = chat  # the chat channel (Slack today)
        self._mailer = mailer
        self._public_url = public_url
        self._policy = policy
        self._window = window
        self._cluster = cluster

    @activity.defn
    @bad_data_is_final
    async def open_or_join_incident(self, inp: OpenIncidentInput) -> IncidentJoin:
        """Attach the ticket to its incident, opening one (and its workflow) if needed; a
        P2 without an incident of its cause opens one only with its cluster (the store
        decides, see ``IncidentStore.place``).

        The IncidentWorkflow is signalled-with-start: it starts if it is not running, and
        gets ``attach_ticket`` either way (and, when a cluster opened it, for each earlier
        ticket of the cluster). A retry finds the same incident.
        """
        join = await self._store.place(
            inp, window=self._window, idempotency_key=activity_key(), cluster=self._cluster
        )
        if isinstance(join, Counted):
            log.info(
                "ticket %s: %s of %s P2 ticket(s) of its cause, no incident",
                inp.ticket_id,
                join.waiting,
                self._cluster.count,
            )
            return IncidentJoin(counted=join.waiting)
        ticket = AttachTicket(
            ticket_id=inp.ticket_id,
            workflow_id=inp.ticket_workflow_id,
            priority=inp.priority,
            summary=inp.title,
            # Read after the join committed: never more than the incident has, and a retry
            # reads as many or more, so the workflow counts by the largest it heard.
            attached=await self._store.ticket_count(join.incident_id),
        )
        incident = await self._incident_input(join.incident_id, fallback=ticket)
        try:
            handle: WorkflowHandle[object, object] | None = await activity.client().start_workflow(
                INCIDENT_WORKFLOW,
                incident,
                id=join.workflow_id,
                task_queue=activity.info().task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                # A closed incident workflow is a resolved incident: never start it again.
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                start_signal=ATTACH_SIGNAL,
                start_signal_args=[ticket],
                static_summary=f"{incident.priority.value} incident: {incident.title}"[:200],
            )
        except WorkflowAlreadyStartedError:
            # Resolved between our join and the signal; the resolution read the ticket from
            # the database, so it was told.
            log.info("incident %s already closed when ticket %s joined", join, inp.ticket_id)
            handle = None
        else:
            log.info("ticket %s -> incident workflow %s", inp.ticket_id, join.workflow_id)
        answer = IncidentJoin(
            incident_id=join.incident_id, workflow_id=join.workflow_id, created=join.created
        )
        if join.created:
            attached = await self._store.tickets(join.incident_id)
            earlier = [
                t.model_copy(update={"attached": ticket.attached})
                for t in attached
                if t.ticket_id != ticket.ticket_id
            ]
            await self._tell_cluster(handle, answer, earlier)
        return answer

    async def _tell_cluster(
        self,
        incident: WorkflowHandle[object, object] | None,
        join: IncidentJoin,
        earlier: list[AttachTicket],
    ) -> None:
        """The cluster's earlier tickets: attached to the incident's workflow (which ignores
        one it has), and their own workflows told which incident they are in."""
        client = activity.client()
        for other in earlier:
            try:
                if incident is not None:
                    await incident.signal(ATTACH_SIGNAL, other)
                await client.get_workflow_handle(other.workflow_id).signal(
                    TICKET_ATTACHED_SIGNAL, join
                )
            except RPCError as exc:
                if exc.status is not RPCStatusCode.NOT_FOUND:
                    raise  # Temporal unreachable: the retry tells them (signals are idempotent)
                # A closed workflow: the ticket was resolved, or the incident was (and its
                # resolution read the tickets from the database). Nothing to tell.
                log.info("ticket %s not told of incident: %s", other.ticket_id, exc)

    async def _incident_input(
        self, incident_id: uuid.UUID, *, fallback: AttachTicket
    ) -> IncidentInput:
        record = await self._store.get(incident_id, tickets=False)
        if record is None:
            raise ApplicationError(f"no incident {incident_id}", type="IncidentNotFound")
        tickets = await self._store.tickets(incident_id, limit=1)
        first = tickets[0] if tickets else fallback
        if first.ticket_id == fallback.ticket_id:
            first = fallback  # the caller knows its own workflow id and summary best
        return IncidentInput(
            **record.model_dump(include={"key", "priority", "category", "title", "opened_at"}),
            incident_id=record.id,
            first_ticket=first,
            policy=self._policy,
        )

    @activity.defn
    async def page_level(self, inp: PageInput) -> PageResult:
        """Page one level: the incident channel (posted once, then threaded) and e-mail."""
        key = activity_key()
        incident = inp.incident
        level = incident.policy.levels[inp.level]
        result = PageResult()
        if await self._store.recorded(key):
            return result  # this page went out and was recorded by an earlier attempt
        tickets = inp.tickets or [incident.first_ticket]
        count = max(inp.ticket_count, len(tickets))
        # Each channel on its own: a broken Slack must not keep the on-call's phone quiet.
        errors: list[NotifyError] = []
        if self._slack is not None:
            try:
                await self._post_page(inp, level, tickets=count)
                result.slack_posted = True
            except NotifyError as exc:
                errors.append(exc)
                result.problems.append(f"Slack: {exc}")
        if self._mailer is not None:
            for person in level.emails:
                try:
                    await self._mailer.send(
                        render_page_email(
                            incident,
                            to=str(person),
                            level=level,
                            loop=inp.loop,
                            tickets=tickets,
                            ticket_count=count,
                            public_url=self._public_url,
                            slack_channel=self._slack.channel if self._slack else None,
                            ack_url=self._ack_url(inp, str(person)),
                        )
                    )
                except NotifyError as exc:
                    errors.append(exc)
                    result.problems.append(f"mail to {person}: {exc}")
                else:
                    result.emailed.append(str(person))
        if errors and not result.slack_posted and not result.emailed:
            # Nothing went out, so a retry repeats nothing: retry when it may help.
            cause = most_hopeful(errors)
            raise notify_failure(cause) from cause
        how = []
        if result.slack_posted:
            who = ", ".join(level.slack_user_ids) or "the channel"
            how.append(f"Slack ({who})")
        if result.emailed:
            how.append(f"e-mail ({', '.join(result.emailed)})")
        entry = f"paged {level.name} (level {inp.level + 1}, loop {inp.loop + 1}) by " + (
            " and ".join(how) or "nothing: neither Slack nor e-mail is configured"
        )
        if result.problems:
            entry += "; failed: " + "; ".join(result.problems)
        await self._store.record_page(
            incident_id=incident.incident_id,
            level=inp.level,
            loop=inp.loop,
            entry=entry[:2000],
            recipients=result.emailed + level.slack_user_ids,
            idempotency_key=key,
            at=inp.at,
        )
        return result

    def _ack_url(self, inp: PageInput, person: str) -> str | None:
        """This person's signed "Acknowledge" link, valid ``ACK_LINK_TTL`` from the page."""
        if self._ack_tokens is None:
            return None
        token = self._ack_tokens.issue(
            incident_id=inp.incident.incident_id,
            person_email=person,
            issued_at=inp.at,
            expires_at=inp.at + ACK_LINK_TTL,
        )
        return incident_ack_link(self._public_url, token)

    async def _post_page(self, inp: PageInput, level: EscalationLevel, *, tickets: int) -> None:
        assert self._slack is not None
        incident = inp.incident
        posted = await self._posted(incident.incident_id)
        if posted is None or inp.repost:
            # The first page is the incident message itself, and so is the first page after
            # an escalation (its new severity and title, its own Acknowledge button). Its
            # ref is stored at once so a retry threads under it instead of posting it again.
            if inp.repost and await self._store.slack_message_by(activity_key()):
                return  # a retry of the escalation's page: the new message is that page
            ref = await self._slack.post_incident(
                incident, tickets=tickets, mention_user_ids=level.slack_user_ids
            )
            await self._store.set_slack_message(
                incident.incident_id,
                channel=ref.channel,
                ts=ref.ts,
                posted_by=activity_key(),
                replace=inp.repost,
            )
            return
        if inp.level == 0 and inp.loop == 0:
            return  # a retry of the first page: the incident message is that page
        await self._slack.post_page(
            posted,
            incident,
            level_name=level.name,
            loop=inp.loop,
            mention_user_ids=level.slack_user_ids,
        )

    async def _posted(self, incident_id: uuid.UUID) -> MessageRef | None:
        """The incident's current message in the chat channel, once posted."""
        posted = await self._store.slack_message(incident_id)
        return MessageRef(channel=posted[0], ts=posted[1]) if posted is not None else None

    @activity.defn
    @bad_data_is_final
    async def record_incident_event(self, event: IncidentEvent) -> None:
        """One timeline line, with its audit entry."""
        await self._store.record_event(event, idempotency_key=activity_key())

    @activity.defn
    @bad_data_is_final
    async def set_incident_status(self, change: IncidentStatusChange) -> IncidentStatusResult:
        """Acknowledge or resolve: the database first, then the Slack message (best effort).

        Returns the incident's tickets as the database has them, so a resolution tells every
        ticket that joined, even one whose ``attach_ticket`` signal is still on its way.
        """
        incident = change.incident
        try:
            tickets = await self._store.set_status(
                **change.model_dump(
                    include={"status", "actor", "channel", "note", "at", "list_tickets"}
                ),
                incident_id=incident.incident_id,
                idempotency_key=activity_key(),
            )
        except (IncidentNotFoundError, IncidentStateError) as exc:
            raise ApplicationError(str(exc), type="IncidentStateError", non_retryable=True) from exc
        count = len(tickets) or await self._store.ticket_count(incident.incident_id)
        if self._slack is not None:
            posted = await self._posted(incident.incident_id)
            if posted is not None:
                try:
                    # The message counts every ticket, also one whose signal is on its way.
                    counted = max(change.tickets, count)
                    await self._slack.close(posted, change.model_copy(update={"tickets": counted}))
                except NotifyError as exc:
                    # The status is recorded; a stale button only leads to a refused ack.
                    log.warning("incident %s: Slack update failed: %s", incident.incident_id, exc)
        return IncidentStatusResult(tickets=tickets, ticket_count=count)

    @activity.defn
    async def tell_incident_tickets(self, inp: TellTickets) -> TicketsTold:
        """Signal every ticket of the resolved incident, in the order they joined, and record
        each in the timeline; returns how many were told and how many were closed.

        A large outage has thousands of tickets: they are read a page at a time and told a
        few at once, and the activity heartbeats how far it got, so a retry resumes there.
        A ticket told twice (its page cut short by a crash) hears it once: TicketWorkflow
        keeps one piece of news per incident. Resolving locked out new joins, so the list
        does not change while this runs.
        """
        incident_id = inp.resolved.incident_id
        details = activity.info().heartbeat_details
        progress = TicketsTold.model_validate(details[0]) if details else TicketsTold()
        key = activity_key()
        while True:
            done = progress.told + progress.not_told
            page = await self._store.tickets(incident_id, offset=done, limit=TELL_PAGE)
            for start in range(0, len(page), TELL_AT_ONCE):
                batch = page[start : start + TELL_AT_ONCE]
                told = await asyncio.gather(
                    *(self._tell_one(t, inp, key=f"{key}:{t.ticket_id}") for t in batch)
                )
                progress.told += sum(told)
                progress.not_told += len(told) - sum(told)
                activity.heartbeat(progress.model_dump(mode="json"))
            if len(page) < TELL_PAGE:
                return progress

    async def _tell_one(self, ticket: AttachTicket, inp: TellTickets, *, key: str) -> bool:
        """Signal one ticket's workflow and record it; False when the workflow is closed."""
        handle = activity.client().get_workflow_handle(ticket.workflow_id)
        try:
            await handle.signal(INCIDENT_RESOLVED_SIGNAL, inp.resolved)
        except RPCError as exc:
            if exc.status is not RPCStatusCode.NOT_FOUND:
                raise  # Temporal unreachable: the retry resumes from the last heartbeat
            # Resolved on its own (or the incident's end reached it another way).
            action = "incident.ticket_not_told"
            entry = f"ticket {ticket.ticket_id} not told (its workflow is closed)"
            told = False
        else:
            action = "incident.ticket_told"
            entry = f"ticket {ticket.ticket_id} told of the resolution"
            told = True
        event = IncidentEvent(
            incident_id=inp.resolved.incident_id,
            action=action,
            entry=entry,
            at=inp.at,
            ticket_id=ticket.ticket_id,
        )
        await self._store.record_event(event, idempotency_key=key)
        return told

    @activity.defn
    async def post_timeline(self, post: TimelinePost) -> None:
        """Post the resolved incident's timeline to its Slack thread, and record that."""
        incident = post.incident
        key = activity_key()
        if await self._store.recorded(key):
            return
        entries = await self._store.timeline(incident.incident_id)
        where = "the database"
        if self._slack is not None:
            try:
                await self._slack.post_timeline(
                    await self._posted(incident.incident_id),
                    incident,
                    entries=entries,
                    resolved_by=post.resolved_by,
                    note=post.note,
                )
            except NotifyError as exc:
                raise notify_failure(exc) from exc
            where = f"Slack {self._slack.channel}"
        event = IncidentEvent(
            incident_id=incident.incident_id,
            action="incident.timeline_posted",
            entry=f"timeline of {len(entries)} entries posted to {where}",
            at=post.at,
        )
        await self._store.record_event(event, idempotency_key=key)
