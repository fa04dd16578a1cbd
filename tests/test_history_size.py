"""How many events each ticket path leaves in its workflow history, held as a count.

Temporal replays a history on every cache miss and caps one at 50,000 events: a path that
grows it without need costs every worker that replays it. The limits are the counts measured
when they were set (see the README's Performance section) plus a small margin; a change that
adds events fails here and says how many.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from kruxt.models import search_attributes as sa
from kruxt.models.enums import TicketStatus
from kruxt.models.tickets import TicketWorkflowInput, workflow_id_for
from kruxt.workers.composition import Outside, build_worker
from kruxt.workflows.ticket import TicketWorkflow
from tests.scenarios import APPROVERS, EXPORT
from tests.support import (
    TicketRig,
    approve_first,
    demo_app,
    intake,
    locked_ticket,
    markers_and_upserts,
    resolve,
    start_ticket,
    until_status,
)

# Measured (2026-11-30): the answered ticket waits on the customer at 66-70 events and closes
# at 96-100; the locked account's plan waits on its approver at 100-112 and closes at 199-211
# (the count moves by a few with how activities and the update interleave). The happy path's goal
# is under 80 (issue 17), so its margin stops there; the others get about 12%.
AUTO_ANSWER_WAITING = 79
AUTO_ANSWER_CLOSED = 108
APPROVAL_WAITING = 125
APPROVAL_CLOSED = 235


async def _events(handle: WorkflowHandle[Any, Any]) -> int:
    return len((await handle.fetch_history()).events)


async def test_the_auto_answer_path_stays_short(tickets: TicketRig) -> None:
    handle = await tickets.start(intake(subject=EXPORT["subject"], body=EXPORT["body"]))
    await until_status(handle, TicketStatus.AWAITING_CUSTOMER)
    waiting = await _events(handle)
    await resolve(handle)
    closed = await _events(handle)
    print(f"auto-answer: {waiting} events waiting, {closed} closed")
    assert waiting <= AUTO_ANSWER_WAITING, f"answered: {waiting} events"
    assert closed <= AUTO_ANSWER_CLOSED, f"answered and resolved: {closed} events"


async def test_a_new_ticket_records_one_marker_and_no_upsert_its_start_made(
    tickets: TicketRig,
) -> None:
    """Each marker and upsert is a visibility write and a billed action: a ticket started on
    the current revision records the revision's marker alone (kruxt.workflows.revisions), and
    its channel, set by the intake's start options, is not upserted again."""
    handle = await tickets.start(intake(subject=EXPORT["subject"], body=EXPORT["body"]))
    await until_status(handle, TicketStatus.AWAITING_CUSTOMER)
    await resolve(handle)
    markers, upserted = await markers_and_upserts(handle)
    assert markers == 1
    assert upserted.count("TemporalChangeVersion") == 1, upserted  # the SDK's, per marker
    assert sa.CHANNEL.name not in upserted, upserted


async def test_a_ticket_started_without_search_attributes_still_gets_its_channel(
    tickets: TicketRig,
) -> None:
    """A start that set no search attributes (an older client, `temporal workflow start` by
    hand) leaves the workflow to upsert the channel, so the ticket is still found by it."""
    ticket = intake(subject=EXPORT["subject"], body=EXPORT["body"])
    handle = await tickets.env.client.start_workflow(
        TicketWorkflow.run,
        TicketWorkflowInput(intake=ticket),
        id=workflow_id_for(ticket.ticket_id),
        task_queue=tickets.queue,
    )
    await until_status(handle, TicketStatus.AWAITING_CUSTOMER)
    found = (await handle.describe()).typed_search_attributes
    assert found.get(sa.CHANNEL) == ticket.channel.value
    markers, upserted = await markers_and_upserts(handle)
    assert markers == 1
    assert upserted.count(sa.CHANNEL.name) == 1, upserted


async def test_the_approval_path_stays_short(
    ts_env: WorkflowEnvironment, db_dsn: str, pool: asyncpg.Pool[Any], task_queue: str
) -> None:
    async with demo_app(db_dsn) as app:
        outside = Outside(app=app, approvers=APPROVERS)
        async with build_worker(ts_env.client, task_queue=task_queue, pool=pool, outside=outside):
            handle = await start_ticket(ts_env.client, locked_ticket(), task_queue=task_queue)
            state = await until_status(handle, TicketStatus.AWAITING_APPROVAL)
            waiting = await _events(handle)
            await approve_first(handle, state)
            await until_status(handle, TicketStatus.AWAITING_CUSTOMER)
            await resolve(handle, actor="founder@kruxt.app")
            closed = await _events(handle)
    print(f"approval: {waiting} events waiting, {closed} closed")
    assert waiting <= APPROVAL_WAITING, f"waiting on approval: {waiting} events"
    assert closed <= APPROVAL_CLOSED, f"approved, run and resolved: {closed} events"
