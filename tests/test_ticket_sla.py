"""SLA clocks and incidents inside the real TicketWorkflow, on the time-skipping server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from kruxt.models import search_attributes as sa
from kruxt.models.enums import Priority, TicketStatus
from kruxt.models.incidents import ResolveIncident, incident_workflow_id
from kruxt.models.sla import ClockKind, ClockState
from kruxt.models.tickets import (
    CustomerMessage,
    RoutingPolicy,
    StaffPriorityChange,
    StaffResolve,
    TicketIntake,
    TicketState,
)
from kruxt.workflows.incident import IncidentWorkflow
from kruxt.workflows.ticket import TicketWorkflow
from tests.support import TicketRig, intake, resolve, state_where, until_status

OUTAGE = {
    "subject": "Nobody at our gym can log in",
    "body": "Since 7am none of our members can log in, everyone gets an error. Whole gym down.",
}
PRIVACY = {
    "subject": "Data export status",
    "body": "What is the status of my data export request?",
}


def clock(state: TicketState, kind: ClockKind) -> Any:
    assert state.sla is not None
    return next(c for c in state.sla.clocks if c.kind is kind)


async def kpi_events(pool: asyncpg.Pool[Any], ticket: TicketIntake) -> list[tuple[str, Any]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT event, details FROM support_kpi_events WHERE ticket_id = $1 ORDER BY id",
            ticket.ticket_id,
        )
    return [(r["event"], r["details"]) for r in rows]


async def search_attributes(handle: WorkflowHandle[Any, Any]) -> dict[str, Any]:
    described = await handle.describe()
    return {p.key.name: p.value for p in described.typed_search_attributes}


async def test_p1_first_response_warns_then_breaches_and_opens_an_incident(
    tickets: TicketRig, ts_env: WorkflowEnvironment, pool: asyncpg.Pool[Any]
) -> None:
    ticket = intake(subject=OUTAGE["subject"], body=OUTAGE["body"])
    handle = await tickets.start(ticket)
    state = await until_status(handle, TicketStatus.AWAITING_HUMAN)
    assert state.priority is Priority.P1
    assert state.incident_id is not None
    first = clock(state, ClockKind.FIRST_RESPONSE)
    assert first.target_seconds == 15 * 60
    assert first.state is ClockState.RUNNING

    await ts_env.sleep(timedelta(minutes=12))  # past 75% of 15 minutes
    warned = await state_where(
        handle, lambda s: clock(s, ClockKind.FIRST_RESPONSE).state is ClockState.AT_RISK
    )
    assert warned.sla is not None
    assert (await search_attributes(handle)).get("SlaAtRisk") is True

    await ts_env.sleep(timedelta(minutes=5))  # past the deadline
    await state_where(
        handle, lambda s: clock(s, ClockKind.FIRST_RESPONSE).state is ClockState.BREACHED
    )
    attrs = await search_attributes(handle)
    assert attrs.get(sa.SLA_BREACHED.name) is True
    await resolve(handle)
    events = await kpi_events(pool, ticket)
    names = [e for e, _ in events]
    assert names.index("sla_warning") < names.index("sla_breached")
    breach = next(d for e, d in events if e == "sla_breached")
    assert breach["clock"] == "first_response"


async def test_resolution_clock_pauses_while_waiting_on_the_customer(
    tickets: TicketRig, ts_env: WorkflowEnvironment, pool: asyncpg.Pool[Any]
) -> None:
    ticket = intake(
        subject=PRIVACY["subject"], body=PRIVACY["body"]
    )  # P4: answered at once, then waits on the customer
    # Silence solves a ticket after 72 h (issue 14): this one waits longer than the target.
    patient = RoutingPolicy(auto_solve_after_seconds=30 * 86400)
    handle = await tickets.start(ticket, policy=patient)
    state = await until_status(handle, TicketStatus.AWAITING_CUSTOMER)
    assert clock(state, ClockKind.FIRST_RESPONSE).state is ClockState.MET
    assert clock(state, ClockKind.RESOLUTION).state is ClockState.PAUSED

    await ts_env.sleep(timedelta(hours=100))  # longer than the 72 h target, but paused
    paused = await handle.query(TicketWorkflow.state)
    assert clock(paused, ClockKind.RESOLUTION).state is ClockState.PAUSED

    await handle.signal(
        TicketWorkflow.customer_message,
        CustomerMessage(
            message_id=uuid.uuid4(), body="still nothing", received_at=datetime.now(UTC)
        ),
    )
    resumed = await state_where(
        handle, lambda s: clock(s, ClockKind.RESOLUTION).state is ClockState.RUNNING
    )
    # Only the time before the pause counts: the deadline moved by the time paused.
    res = clock(resumed, ClockKind.RESOLUTION)
    assert res.elapsed_seconds < 3600
    await resolve(handle)
    names = [e for e, _ in await kpi_events(pool, ticket)]
    assert "sla_breached" not in names
    assert names.count("sla_met") == 2


async def test_priority_change_recomputes_the_deadlines_from_the_start(
    tickets: TicketRig, pool: asyncpg.Pool[Any]
) -> None:
    ticket = intake(subject="Question", body="How do I export my workouts to a spreadsheet?")
    handle = await tickets.start(ticket)
    before = await state_where(
        handle, lambda s: s.sla is not None and s.status is not TicketStatus.TRIAGED
    )
    await handle.signal(
        TicketWorkflow.change_priority,
        StaffPriorityChange(actor="lead@kruxt.app", priority=Priority.P1, reason="VIP gym"),
    )
    after = await state_where(handle, lambda s: s.priority is Priority.P1)
    await resolve(handle)
    res_before = clock(before, ClockKind.RESOLUTION)
    res_after = clock(after, ClockKind.RESOLUTION)
    assert res_after.target_seconds == 4 * 3600
    assert res_after.target_seconds < res_before.target_seconds
    async with pool.acquire() as conn:
        stored = await conn.fetchval(
            "SELECT priority FROM support_tickets WHERE id = $1", ticket.ticket_id
        )
    assert stored == "P1"


async def test_two_outage_tickets_share_one_incident_and_hear_when_it_is_fixed(
    tickets: TicketRig, ts_env: WorkflowEnvironment, pool: asyncpg.Pool[Any]
) -> None:
    first, second = (
        intake(subject=OUTAGE["subject"], body=OUTAGE["body"]),
        intake(subject=OUTAGE["subject"], body=OUTAGE["body"]),
    )
    h1 = await tickets.start(first)
    s1 = await until_status(h1, TicketStatus.AWAITING_HUMAN)
    h2 = await tickets.start(second)
    s2 = await until_status(h2, TicketStatus.AWAITING_HUMAN)
    assert s1.incident_id is not None
    assert s1.incident_id == s2.incident_id

    incident = ts_env.client.get_workflow_handle_for(
        IncidentWorkflow.run, incident_workflow_id(s1.incident_id)
    )
    await incident.execute_update(
        IncidentWorkflow.resolve,
        ResolveIncident(
            by="oncall@kruxt.app",
            note="failover to the standby database",  # for the team only
            customer_note="the login service is back",
        ),
    )
    # Both told, then both resolved before waiting for either: waiting skips time (the reopen
    # window), and a ticket that is not resolved by then is solved and completes on its own.
    for handle in (h1, h2):
        told = await until_status(handle, TicketStatus.AWAITING_CUSTOMER)
        assert told.incident_id == s1.incident_id
    for handle in (h1, h2):
        await handle.signal(TicketWorkflow.resolve, StaffResolve(actor="lead@kruxt.app"))
    for handle in (h1, h2):
        await handle.result()
    async with pool.acquire() as conn:
        updates = await conn.fetch(
            "SELECT ticket_id, body FROM support_ticket_messages WHERE kind = 'incident_update'"
        )
        incidents = await conn.fetchval("SELECT count(*) FROM support_incidents")
    assert {r["ticket_id"] for r in updates} == {first.ticket_id, second.ticket_id}
    # The customer note as a sentence; the team's note never leaves the team.
    assert all("fixed. The login service is back. If anything" in r["body"] for r in updates)
    assert not any("failover" in r["body"] for r in updates)
    assert incidents == 1
