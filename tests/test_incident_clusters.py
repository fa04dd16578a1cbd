"""Incidents are for incidents: a P1 opens one, a cluster of P2s of one cause opens one, one
user's P2 alone never does; an incident follows its worst ticket.

The cluster rule and the store's decision run against a real database; the escalation runs
on the time-skipping server with the incident tests' worker (fake Slack, outbox mail).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from kruxt.adapters.postgres.incidents import Counted, IncidentStore, JoinResult
from kruxt.adapters.slack import ACTION_INCIDENT_ACK
from kruxt.models.enums import Category, Priority
from kruxt.models.incidents import (
    DEFAULT_INCIDENT_CLUSTER,
    IncidentCluster,
    IncidentState,
    OpenIncidentInput,
    incident_key,
    parse_incident_cluster,
)
from kruxt.models.tickets import TicketIntake, workflow_id_for
from kruxt.workflows.incident import IncidentWorkflow
from tests import test_incidents
from tests.support import eventually, markers_and_upserts
from tests.test_incidents import WINDOW, Env, new_ticket, start_stand_in

# The incident tests' worker (real activities, fake Slack, outbox mail) serves these too.
env = test_incidents.env

LOCKED = incident_key(Category.AUTH_LOGIN, "Account locked after repeated failed sign-ins")
WORKOUTS = incident_key(Category.WORKOUT_LOG_SUBMIT, "Workout submission rejected by the API")
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)

# -- the cluster rule --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "count", "minutes"),
    [("3/30m", 3, 30), ("5/2h", 5, 120), (" 4 / 45 m ", 4, 45), ("2/10", 2, 10), ("", 3, 30)],
)
def test_the_cluster_rule_reads_count_and_span(text: str, count: int, minutes: int) -> None:
    cluster = parse_incident_cluster(text)
    assert (cluster.count, cluster.minutes) == (count, minutes)
    assert cluster.window == timedelta(minutes=minutes)
    assert parse_incident_cluster(str(cluster)) == cluster
    assert parse_incident_cluster(None) == DEFAULT_INCIDENT_CLUSTER


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("3", "COUNT/SPAN"),
        ("three/30m", "COUNT/SPAN"),
        ("3/30s", "COUNT/SPAN"),
        ("3/\u00b2m", "COUNT/SPAN"),
        ("3/9999999m", "COUNT/SPAN"),
        # One ticket is one user: it must never be enough for an incident.
        ("1/30m", "count"),
        ("3/0m", "minutes"),
    ],
)
def test_a_bad_cluster_rule_is_a_clear_error(text: str, why: str) -> None:
    with pytest.raises(ValueError, match="invalid KRUXT_INCIDENT_CLUSTER") as err:
        parse_incident_cluster(text)
    assert why in str(err.value)


def test_the_key_separates_causes_and_categories() -> None:
    assert incident_key(Category.AUTH_LOGIN, "Account locked.") == incident_key(
        Category.AUTH_LOGIN, "account   LOCKED"
    )
    assert incident_key(Category.AUTH_LOGIN, "Login API returns 500 for everyone") != LOCKED
    assert incident_key(Category.AUTH_LOGIN, "x") != incident_key(Category.WORKOUT_LOG_SUBMIT, "x")


# -- the store's decision ----------------------------------------------------------------


async def place(
    store: IncidentStore,
    ticket: TicketIntake,
    *,
    at: datetime,
    key: str = LOCKED,
    priority: Priority = Priority.P2,
    cluster: IncidentCluster = DEFAULT_INCIDENT_CLUSTER,
) -> JoinResult | Counted:
    return await store.place(
        OpenIncidentInput(
            ticket_id=ticket.ticket_id,
            ticket_workflow_id=workflow_id_for(ticket.ticket_id),
            key=key,
            priority=priority,
            category=Category.AUTH_LOGIN,
            title=f"{priority.value}: {ticket.subject}",
            at=at,
        ),
        window=WINDOW,
        idempotency_key=f"place-{ticket.ticket_id}",
        cluster=cluster,
    )


async def incidents(pool: asyncpg.Pool[Any]) -> int:
    async with pool.acquire() as conn:
        found: int = await conn.fetchval("SELECT count(*) FROM support_incidents")
    return found


async def test_p2_tickets_of_one_cause_open_an_incident_together(pool: asyncpg.Pool[Any]) -> None:
    store = IncidentStore(pool)
    a, b, c, d, e, f = [await new_ticket(pool, subject=f"Locked out {n}") for n in range(6)]
    # One user's P2 opens nothing; neither does another cause's, nor one outside the window.
    assert await place(store, a, at=T0) == Counted(1)
    assert await place(store, b, at=T0 + timedelta(minutes=10)) == Counted(2)
    assert await place(store, c, at=T0 + timedelta(minutes=12), key=WORKOUTS) == Counted(1)
    assert await place(store, d, at=T0 + timedelta(minutes=35)) == Counted(2)  # a is too old
    assert await incidents(pool) == 0
    # The third of the window opens it, with the two before it.
    opened = await place(store, e, at=T0 + timedelta(minutes=36))
    assert isinstance(opened, JoinResult) and opened.created
    record = await store.get(opened.incident_id)
    assert record is not None
    assert record.ticket_count == 3
    assert record.recent_ticket_ids == [e.ticket_id, d.ticket_id, b.ticket_id]
    assert record.priority is Priority.P2
    assert record.title == f"P2: {b.subject}"  # the first report's
    # A retry answers the same; the earlier tickets' retries find their incident.
    assert await place(store, e, at=T0 + timedelta(minutes=36)) == opened
    assert await place(store, b, at=T0 + timedelta(minutes=10)) == (
        opened.incident_id,
        opened.workflow_id,
        False,
    )
    assert await place(store, a, at=T0) == Counted(1)
    # Once open, a P2 of the cause joins it.
    joined = await place(store, f, at=T0 + timedelta(minutes=50))
    assert joined == (opened.incident_id, opened.workflow_id, False)
    assert await incidents(pool) == 1
    lines = [t.what for t in await store.timeline(opened.incident_id)]
    assert lines[0].startswith(f"opened by ticket {e.ticket_id} (P2) with 2 earlier ticket(s)")


async def test_a_p1_opens_alone_and_a_p1_joining_a_cluster_escalates_it(
    pool: asyncpg.Pool[Any],
) -> None:
    store = IncidentStore(pool)
    lockout, outage = await new_ticket(pool, subject="Locked out"), await new_ticket(pool)
    # The day: one user's lockout, then the gym's outage with the same triaged cause.
    assert await place(store, lockout, at=T0) == Counted(1)
    opened = await place(store, outage, at=T0 + timedelta(minutes=5), priority=Priority.P1)
    assert isinstance(opened, JoinResult) and opened.created
    record = await store.get(opened.incident_id)
    assert record is not None
    assert record.ticket_count == 1
    assert record.recent_ticket_ids == [outage.ticket_id]  # the lockout is not swept in
    assert record.title == f"P1: {outage.subject}"

    # A P2 cluster of another cause, then a P1 of that cause: the incident takes its title.
    w1, w2, w3, w4 = [await new_ticket(pool, subject=f"Workout lost {n}") for n in range(4)]
    for n, ticket in enumerate((w1, w2)):
        await place(store, ticket, at=T0 + timedelta(minutes=n), key=WORKOUTS)
    cluster = await place(store, w3, at=T0 + timedelta(minutes=3), key=WORKOUTS)
    assert isinstance(cluster, JoinResult) and cluster.created
    worst = await place(store, w4, at=T0 + timedelta(minutes=4), key=WORKOUTS, priority=Priority.P1)
    assert worst == (cluster.incident_id, cluster.workflow_id, False)
    record = await store.get(cluster.incident_id)
    assert record is not None
    assert (record.priority, record.title) == (Priority.P1, f"P1: {w4.subject}")
    lines = [t.what for t in await store.timeline(cluster.incident_id)]
    assert lines[-1] == (
        f"ticket {w4.ticket_id} (P1) attached; incident escalated P2 -> P1: P1: {w4.subject}"
    )


async def test_simultaneous_p2s_of_a_cluster_open_one_incident(pool: asyncpg.Pool[Any]) -> None:
    import asyncio

    store = IncidentStore(pool)
    tickets = [await new_ticket(pool) for _ in range(5)]
    results = await asyncio.gather(*(place(store, t, at=T0) for t in tickets))
    opened = [r for r in results if isinstance(r, JoinResult)]
    assert sorted(r.waiting for r in results if isinstance(r, Counted)) == [1, 2]
    assert len({r.incident_id for r in opened}) == 1
    assert sum(r.created for r in opened) == 1
    assert await incidents(pool) == 1


# -- the escalation in the workflow --------------------------------------------------------


async def test_a_p2_cluster_pages_once_then_escalates_to_p1_with_a_new_post(env: Env) -> None:
    first, first_handle = await start_stand_in(env)
    second, second_handle = await start_stand_in(env)
    assert env.posts() == []  # two users' P2s: nobody paged
    third, third_handle = await start_stand_in(env)
    join = await third_handle.query(test_incidents.TicketStandIn.joined)
    assert join is not None and join.created and join.workflow_id is not None
    assert (await first_handle.query(test_incidents.TicketStandIn.joined)) is not None
    incident = env.ts.client.get_workflow_handle_for(IncidentWorkflow.run, join.workflow_id)

    async def all_three() -> IncidentState | None:
        s: IncidentState = await incident.query(IncidentWorkflow.state)
        return s if len(s.tickets) == 3 and s.pages else None

    state = await eventually(all_three)
    assert {t.ticket_id for t in state.tickets} == {
        first.ticket_id,
        second.ticket_id,
        third.ticket_id,
    }
    assert state.priority is Priority.P2
    assert [(p.level_name, p.loop) for p in state.pages] == [("on-call", 0)]

    # Two minutes on, the outage's P1 of the same cause joins: the incident is the P1's now.
    await env.ts.sleep(timedelta(minutes=2))
    outage, _ = await start_stand_in(env, priority=Priority.P1)

    async def escalated() -> IncidentState | None:
        s: IncidentState = await incident.query(IncidentWorkflow.state)
        return s if len(s.pages) == 2 else None

    state = await eventually(escalated)
    assert state.priority is Priority.P1
    assert state.title == outage.subject
    assert [(p.level_name, p.loop) for p in state.pages] == [("on-call", 0), ("on-call", 0)]
    assert any(e.what == f"escalated P2 -> P1: {outage.subject}" for e in state.timeline), (
        state.timeline
    )
    record = await env.store.get(state.incident_id)
    assert record is not None
    assert (record.priority, record.title) == (Priority.P1, outage.subject)
    # Slack: the P2 incident, then the P1 incident posted anew with its own button; the
    # message pages thread under (and acks update) is the new one.
    roots = [p for p in env.posts() if "thread_ts" not in p]
    assert [p["blocks"][0]["text"]["text"].split(" · ")[0] for p in roots] == [
        "🚨 P2 incident",
        "🚨 P1 incident",
    ]
    assert roots[1]["blocks"][-1]["elements"][0]["action_id"] == ACTION_INCIDENT_ACK
    assert outage.subject in roots[1]["blocks"][0]["text"]["text"]
    subjects = [subject for _, subject in env.mails()]
    assert subjects[0].startswith("[P2] Incident: ")
    assert subjects[1].startswith(f"[P1] Incident: {outage.subject}")
    await env.service().resolve(state.incident_id, by="maya@kruxt.app", note="fixed")
    for handle in (first_handle, second_handle, third_handle):
        assert (await handle.result()).resolved.incident_id == state.incident_id
    # It counted its tickets and escalated: two changes, one marker (and the SDK's upsert of
    # it), the incident's revision (kruxt.workflows.revisions).
    await incident.result()
    markers, upserted = await markers_and_upserts(incident)
    assert markers == 1
    assert upserted.count("TemporalChangeVersion") == 1, upserted
