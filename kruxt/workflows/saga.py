"""Run an approved plan step by step; on failure undo what ran, in reverse order."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

from temporalio import workflow
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
            applied.append(
                await workflow.execute_activity_method(
                    PlaybookActivities.run_step,
                    run,
                    start_to_close_timeout=STEP_TIMEOUT,
                    retry_policy=STEP_RETRY,
                    summary=f"{step.step_id}: {step.description}"[:200],
                )
            )
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
            await workflow.execute_activity_method(
                PlaybookActivities.compensate_step,
                run,
                start_to_close_timeout=STEP_TIMEOUT,
                retry_policy=COMPENSATION_RETRY,
                summary=f"undo {run.step.step_id}: {run.step.description}"[:200],
            )
        except ActivityError:
            all_ok = False  # recorded by the activity; a person takes it from here
    return all_ok


async def compensate_shielded(runs: list[StepRun]) -> bool:
    """Compensate even while the workflow is being cancelled."""
    task = asyncio.ensure_future(compensate(runs))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        # The cancellation hit us, not the compensations: let them finish before re-raising.
        await task
        raise
