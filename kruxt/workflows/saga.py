"""Run an approved plan step by step; on failure undo what ran, in reverse order."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from kruxt.activities.playbooks.activities import PlaybookActivities
    from kruxt.models.playbooks import PlaybookPlan, StepResult, StepRun
    from kruxt.workflows.failures import failure_reason
    from kruxt.workflows.policies import (
        COMPENSATION_RETRY,
        STEP_RETRY,
        STEP_TIMEOUT,
    )

OutT = TypeVar("OutT")


@dataclass
class SagaResult:
    """How a run went: all steps applied, or which one failed and whether undo succeeded."""

    ok: bool
    applied: list[StepResult] = field(default_factory=list)
    failed_step: str | None = None
    reason: str = ""
    compensated: bool = True


async def run_plan(ticket_id: uuid.UUID, run_id: uuid.UUID, plan: PlaybookPlan) -> SagaResult:
    """Apply ``plan``'s steps in order; a failure compensates every step registered so far.

    A step's compensation is registered before the step runs: a step that failed halfway is
    undone too (its compensation succeeds as a no-op when nothing was applied).
    """
    registered: list[StepRun] = []
    applied: list[StepResult] = []
    for step in plan.steps:
        run = StepRun(ticket_id=ticket_id, plan_id=plan.plan_id, run_id=run_id, step=step)
        registered.append(run)
        try:
            doing = f"{step.step_id}: {step.description}"
            applied.append(await _on_the_app(PlaybookActivities.run_step, run, STEP_RETRY, doing))
        except ActivityError as err:
            compensated = await compensate_shielded(registered)
            return SagaResult(
                ok=False,
                applied=applied,
                failed_step=step.step_id,
                reason=failure_reason(err),
                compensated=compensated,
            )
        except asyncio.CancelledError:
            await compensate_shielded(registered)
            raise
    return SagaResult(ok=True, applied=applied)


async def compensate(runs: list[StepRun]) -> bool:
    """Undo ``runs`` in reverse order; every one is attempted even if one fails."""
    all_ok = True
    for run in reversed(runs):
        try:
            undo = f"undo {run.step.step_id}: {run.step.description}"
            await _on_the_app(PlaybookActivities.compensate_step, run, COMPENSATION_RETRY, undo)
        except ActivityError:
            all_ok = False  # recorded by the activity; a person takes it from here
    return all_ok


async def _on_the_app(
    activity: Callable[[PlaybookActivities, StepRun], Awaitable[OutT]],
    run: StepRun,
    retry: RetryPolicy,
    what: str,
) -> OutT:
    """Run a step's activity (or its undo) against the app; ``what`` it does is its summary,
    cut to 200 characters for the Web UI."""
    return await workflow.execute_activity_method(
        activity, run, start_to_close_timeout=STEP_TIMEOUT, retry_policy=retry, summary=what[:200]
    )


async def compensate_shielded(runs: list[StepRun]) -> bool:
    """Compensate even while the workflow is being cancelled."""
    task = asyncio.ensure_future(compensate(runs))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        # The cancellation hit us, not the compensations: let them finish before re-raising.
        await task
        raise
