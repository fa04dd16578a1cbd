"""An incident of a large outage: its workflow's state does not grow with its tickets.

Thousands of tickets can join one incident. The workflow counts them by the database's
count each join carries (a repeated signal counts once), keeps the last RECENT_TICKETS for
its pages and query, and on resolution one activity tells every ticket from the database,
a page at a time, resuming where its last heartbeat said it got to.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import ActivityEnvironment

from kruxt.activities import incidents as incident_activities
from kruxt.activities.incidents import IncidentActivities
from kruxt.adapters.postgres.incidents import IncidentStore, TimelineEnds
from kruxt.models.enums import Priority
from kruxt.models.incidents import (
    RECENT_TICKETS_SHOWN,
    AttachTicket,
    IncidentOutcome,
    IncidentResolved,
    IncidentState,
    TellTickets,
    TicketsTold,
)
from kruxt.models.tickets import workflow_id_for
from kruxt.starter.incident_cli import incident_page
from kruxt.workflows.incident import RECENT_TICKETS, IncidentWorkflow
from tests import test_incidents
from tests.support import eventually
from tests.test_incidents import (
    POLICY,
    WINDOW,
    Env,
    StandInResult,
    TicketStandIn,
    join,
    new_ticket,
    opened_incident,
    start_stand_in,
)

# The incident tests' worker (real activities, fake Slack, outbox mail) serves these too.
env = test_incidents.env

MANY = 2 * RECENT_TICKETS + 5


async def test_a_large_outage_is_counted_kept_small_and_every_ticket_told(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small pages and batches, so telling MANY tickets crosses several of each.
    monkeypatch.setattr(incident_activities, "TELL_PAGE", 7)
    monkeypatch.setattr(incident_activities, "TELL_AT_ONCE", 3)
    first, first_handle = await start_stand_in(env, priority=Priority.P1)
    joined = await first_handle.query(TicketStandIn.joined)
    assert joined is not None and joined.incident_id is not None and joined.workflow_id
    tickets = [first.ticket_id]
    handles: list[WorkflowHandle[Any, StandInResult]] = [first_handle]
    for _ in range(MANY - 1):
        ticket, handle = await start_stand_in(env)
        tickets.append(ticket.ticket_id)
        handles.append(handle)
    incident = env.ts.client.get_workflow_handle_for(IncidentWorkflow.run, joined.workflow_id)

    # A join's signal delivered again (an activity retried) counts once.
    again = AttachTicket(
        ticket_id=first.ticket_id,
        workflow_id=workflow_id_for(first.ticket_id),
        priority=Priority.P1,
        summary=first.subject,
        attached=1,
    )
    await incident.signal(IncidentWorkflow.attach_ticket, again)

    async def all_joined() -> IncidentState | None:
        s: IncidentState = await incident.query(IncidentWorkflow.state)
        return s if s.ticket_count >= MANY and s.pages else None

    state = await eventually(all_joined)
    assert state.ticket_count == MANY
    # It holds the last few: the first ticket, signalled again, is among them once more.
    held = [t.ticket_id for t in state.tickets]
    assert len(held) == RECENT_TICKETS
    assert held == [*tickets[MANY - RECENT_TICKETS + 1 :], first.ticket_id]
    # The joins are the database's timeline, not the workflow's.
    assert not any("attached" in e.what for e in state.timeline), state.timeline
    assert await env.store.ticket_count(joined.incident_id) == MANY

    # One ticket's workflow is closed before the resolution: it cannot be told.
    await handles[-1].terminate("resolved on its own")
    await env.service().resolve(joined.incident_id, by="maya@kruxt.app", note="rolled back")
    outcome: IncidentOutcome = await incident.result()
    assert (outcome.told, outcome.not_told) == (MANY - 1, 1)
    for handle in handles[:-1]:
        result = await handle.result()
        assert result.resolved.incident_id == joined.incident_id
    lines = [e.what for e in await env.store.timeline(joined.incident_id)]
    assert sum("told of the resolution" in line for line in lines) == MANY - 1
    assert f"ticket {tickets[-1]} not told (its workflow is closed)" in lines
    assert f"{MANY - 1} ticket(s) told of the resolution; 1 closed, not told" in [
        e.what for e in (await incident.query(IncidentWorkflow.state)).timeline
    ]
    # Each is in the audit log under its ticket.
    audited = await env.pool.fetch(
        "SELECT ticket_id FROM support_audit_log WHERE action = 'incident.ticket_told'"
        " AND details->>'incident_id' = $1",
        str(joined.incident_id),
    )
    assert {r["ticket_id"] for r in audited} == set(tickets[:-1])


async def test_telling_resumes_after_the_tickets_its_last_heartbeat_counted(env: Env) -> None:
    at = await env.ts.get_current_time()
    opened = await opened_incident(env.pool, at=at)
    ids = [opened.first_ticket.ticket_id]
    for _ in range(7):
        ticket = await new_ticket(env.pool)
        await join(env.store, ticket, at=at + timedelta(seconds=len(ids)))
        ids.append(ticket.ticket_id)
    activities = IncidentActivities(
        env.store, chat=None, mailer=None, public_url="http://kruxt.test", policy=POLICY,
        window=WINDOW,
    )  # fmt: skip
    runner = ActivityEnvironment(client=env.ts.client)
    # An earlier attempt told five before it stopped (none of these tickets has a workflow).
    runner.info = dataclasses.replace(
        runner.info, heartbeat_details=[TicketsTold(told=5).model_dump(mode="json")]
    )
    resolved = IncidentResolved(incident_id=opened.incident_id, by="maya@kruxt.app")
    told = await runner.run(activities.tell_incident_tickets, TellTickets(resolved=resolved, at=at))
    assert told == TicketsTold(told=5, not_told=3)
    lines = [e.what for e in await env.store.timeline(opened.incident_id)]
    # The last three, in the order they joined (told a few at once, recorded in any order).
    assert {line for line in lines if "not told" in line} == {
        f"ticket {i} not told (its workflow is closed)" for i in ids[5:]
    }


async def test_an_incidents_pages_name_its_latest_tickets_and_both_ends_of_its_timeline(
    pool: asyncpg.Pool[Any],
) -> None:
    store = IncidentStore(pool)
    at = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    ids = []
    for i in range(RECENT_TICKETS_SHOWN + 10):
        ticket = await new_ticket(pool)
        joined = await join(store, ticket, at=at + timedelta(seconds=i))
        ids.append(ticket.ticket_id)
    incident_id = joined.incident_id

    record = await store.get(incident_id)
    assert record is not None
    assert record.ticket_count == RECENT_TICKETS_SHOWN + 10
    assert record.recent_ticket_ids == ids[::-1][:RECENT_TICKETS_SHOWN]
    assert [r for r in await store.list_open() if r.id == incident_id] == [record]

    every = await store.timeline(incident_id)  # opened, then one line per join
    assert len(every) == RECENT_TICKETS_SHOWN + 10
    first, left_out, last = await store.timeline_ends(incident_id, head=3, tail=4)
    assert (first, last, left_out) == (every[:3], every[-4:], len(every) - 7)
    first, left_out, last = await store.timeline_ends(incident_id, head=50, tail=50)
    assert (first + last, left_out) == (every, 0)

    page = incident_page(record, await store.timeline_ends(incident_id, head=2, tail=2))
    assert f"Tickets  {len(ids)} (the latest first)" in page
    assert "  … 10 more: --all" in page
    assert f"  … {len(every) - 4} more lines: --all" in page
    assert page.count(" attached — ") == 3  # the opening line, then two joins at each end
    whole = incident_page(record, TimelineEnds(every, 0, []), ids)
    assert all(str(i) in whole for i in ids) and "more" not in whole
