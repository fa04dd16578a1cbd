"""IncidentWorkflow continues-as-new before its history grows large, and loses nothing.

A small history limit in the input (the test hook; in production the server's suggestion)
forces continue-as-new while the incident escalates: paging goes on at the same level and
loop on schedule, without paging anyone twice, and an acknowledgement in the new run stops it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.worker import Replayer

from kruxt.models.approvals import DecisionChannel
from kruxt.models.enums import Priority
from kruxt.models.incidents import (
    AttachTicket,
    IncidentInput,
    IncidentOutcome,
    IncidentState,
    IncidentStatus,
    incident_workflow_id,
)
from kruxt.workers.composition import WORKFLOWS, workflow_runner
from kruxt.workflows.incident import IncidentWorkflow
from tests import test_incidents
from tests.support import eventually
from tests.test_incidents import Env, new_ticket, opened_incident

# The incident tests' worker (real activities, fake Slack, outbox mail) serves these too.
env = test_incidents.env

HISTORY_LIMIT = 20


async def _start(env: Env) -> tuple[IncidentInput, WorkflowHandle[Any, IncidentOutcome]]:
    incident = await opened_incident(
        env.pool,
        at=await env.ts.get_current_time(),
        priority=Priority.P2,
        history_limit=HISTORY_LIMIT,
    )
    workflow_id = incident_workflow_id(incident.incident_id)
    await env.ts.client.start_workflow(
        IncidentWorkflow.run, incident, id=workflow_id, task_queue=env.queue
    )
    # No run id: queries, signals and updates follow the chain to its latest run.
    return incident, env.ts.client.get_workflow_handle_for(IncidentWorkflow.run, workflow_id)


async def _runs(handle: WorkflowHandle[Any, Any]) -> str:
    return (await handle.describe()).run_id or ""


async def test_escalation_continues_as_new_at_the_same_level_and_loop(env: Env) -> None:
    incident, handle = await _start(env)
    first_run = await _runs(handle)
    await env.pages(handle, 1)
    second = AttachTicket(
        ticket_id=(await new_ticket(env.pool)).ticket_id,
        workflow_id="ticket-elsewhere",
        # A P2 like the first: a P1 would escalate the incident and restart its paging.
        priority=Priority.P2,
        summary="Login fails for me too",
    )
    await handle.signal(IncidentWorkflow.attach_ticket, second)
    await env.ts.sleep(timedelta(minutes=5))
    before = await env.pages(handle, 2)

    async def continued() -> str | None:
        run = await _runs(handle)
        return run if run != first_run else None

    await eventually(continued)
    first = env.ts.client.get_workflow_handle(handle.id, run_id=first_run)
    assert (await first.describe()).status is WorkflowExecutionStatus.CONTINUED_AS_NEW

    # The new run carries everything: position, pages, tickets, priority, timeline.
    after: IncidentState = await handle.query(IncidentWorkflow.state)
    assert (after.level, after.loop) == (before.level, before.loop) == (1, 0)
    assert after.pages == before.pages
    assert [t.ticket_id for t in after.tickets] == [
        incident.first_ticket.ticket_id,
        second.ticket_id,
    ]
    assert after.priority is Priority.P2
    assert after.ticket_count == 2
    assert after.timeline[: len(before.timeline)] == before.timeline
    assert after.status is IncidentStatus.OPEN

    # The founders keep their 10 minutes from when they were paged, then on-call, loop 2.
    await env.ts.sleep(timedelta(minutes=9))
    await env.pages(handle, 2)
    await env.ts.sleep(timedelta(minutes=1))
    state = await env.pages(handle, 3)
    assert [(p.level_name, p.loop) for p in state.pages] == [
        ("on-call", 0),
        ("founders", 0),
        ("on-call", 1),
    ]
    assert [to for to, _ in env.mails()] == [
        "oncall@kruxt.app",
        "maya@kruxt.app",
        "sam@kruxt.app",
        "oncall@kruxt.app",
    ]

    # An acknowledgement in the continued run stops the paging.
    ack = await env.service().acknowledge(
        incident.incident_id, by="oncall@kruxt.app", channel=DecisionChannel.CLI
    )
    assert ack.by == "oncall@kruxt.app"
    await env.ts.sleep(timedelta(hours=2))
    state = await env.pages(handle, 3)
    assert state.status is IncidentStatus.ACKNOWLEDGED
    assert not state.escalation_exhausted
    assert len(env.mails()) == 4

    await env.service().resolve(incident.incident_id, by="oncall@kruxt.app", note="rolled back")
    outcome = await handle.result()
    assert outcome.acknowledged_by == "oncall@kruxt.app"
    assert outcome.status is IncidentStatus.RESOLVED

    # Every run of the chain replays with today's code.
    replayer = Replayer(
        workflows=list(WORKFLOWS),
        data_converter=env.ts.client.data_converter,
        workflow_runner=workflow_runner(),
    )
    runs, run_id = 0, first_run
    while run_id:
        run = env.ts.client.get_workflow_handle(handle.id, run_id=run_id)
        history = await run.fetch_history()
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, run_id
        runs += 1
        last = history.events[-1].workflow_execution_continued_as_new_event_attributes
        run_id = last.new_execution_run_id  # "" once the chain ends
    assert runs >= 2
