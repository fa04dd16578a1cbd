"""Bounded retries end with a person, never a failed or wedged ticket.

Rules triage and knowledge drafting are retried a bounded number of times (LOCAL_RETRY). When
they give up, the ticket goes to the human queue: untriaged, or without a drafted reply.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.models.enums import TicketStatus
from kruxt.models.records import DraftReply, DraftReplyInput
from kruxt.models.tickets import (
    TicketIntake,
)
from kruxt.models.triage import TriageInput, TriageOutcome
from kruxt.workers.composition import activity_executor, build_activities, workflow_runner
from kruxt.workflows.policies import LOCAL_RETRY
from kruxt.workflows.ticket import TicketWorkflow
from tests.support import intake, resolve, start_ticket, until_status
from tests.test_bad_input import _attempts


@activity.defn(name="triage_with_rules")
def triage_always_breaks(inp: TriageInput) -> TriageOutcome:
    raise RuntimeError("the rules triager crashed")


@activity.defn(name="draft_reply")
async def drafting_always_breaks(inp: DraftReplyInput) -> DraftReply | None:
    raise RuntimeError("the knowledge index is broken")


async def _run(
    ts_env: WorkflowEnvironment,
    pool: asyncpg.Pool[Any],
    task_queue: str,
    replacement: Any,
    ticket: TicketIntake | None = None,
) -> tuple[WorkflowHandle[Any, Any], Any]:
    activities = [
        a
        for a in build_activities(pool=pool)
        if getattr(a, "__name__", "") != replacement.__temporal_activity_definition.name
    ]
    with activity_executor(8) as executor:
        async with Worker(
            ts_env.client,
            task_queue=task_queue,
            workflows=[TicketWorkflow],
            activities=[*activities, replacement],
            activity_executor=executor,
            workflow_runner=workflow_runner(),
        ):
            t = ticket or intake()
            handle = await start_ticket(ts_env.client, t, task_queue=task_queue)
            await ts_env.sleep(timedelta(minutes=5))  # skips the retries' backoff
            state = await until_status(handle, TicketStatus.AWAITING_HUMAN, timeout=60)
            await resolve(handle)
    return handle, state


async def test_rules_triage_that_keeps_failing_sends_the_ticket_to_a_person(
    ts_env: WorkflowEnvironment, pool: asyncpg.Pool[Any], task_queue: str
) -> None:
    handle, state = await _run(ts_env, pool, task_queue, triage_always_breaks)
    assert LOCAL_RETRY.maximum_attempts
    attempts = await _attempts(handle, "triage_with_rules")
    # History keeps the last attempt's start: the fifth, and no more.
    assert attempts == [LOCAL_RETRY.maximum_attempts]
    assert state.triage is not None and state.triage.confidence == 0.0
    view = await TicketStore(pool).get(state.ticket_id)
    assert view is not None
    # The customer is acknowledged; nothing was answered on a triage that never happened.
    assert [m.kind for m in view.messages][:2] == ["customer", "acknowledgement"]


async def test_drafting_that_keeps_failing_leaves_the_answer_to_a_person(
    ts_env: WorkflowEnvironment, pool: asyncpg.Pool[Any], task_queue: str
) -> None:
    # A confident read-only question: it would be answered automatically if drafting worked.
    handle, state = await _run(
        ts_env,
        pool,
        task_queue,
        drafting_always_breaks,
        intake(
            subject="Status of my data deletion request",
            body="I asked for my account data to be deleted two weeks ago. What is the status?",
        ),
    )
    assert LOCAL_RETRY.maximum_attempts
    # Each drafting (the reply, then the note for staff) gave up after the last attempt.
    attempts = await _attempts(handle, "draft_reply")
    assert attempts and set(attempts) == {LOCAL_RETRY.maximum_attempts}
    view = await TicketStore(pool).get(state.ticket_id)
    assert view is not None
    assert "auto_reply" not in [m.kind for m in view.messages]
