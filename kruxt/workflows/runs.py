"""A ticket's playbook runs inside its workflow: execute an approved plan, roll a run back.

Every run is recorded (``PlaybookActivities.record_run``) at each change of its status, and
the ticket's status follows it; the steps themselves run through :mod:`kruxt.workflows.saga`.
"""

from __future__ import annotations

import uuid

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from kruxt.activities.playbooks.activities import PlaybookActivities
    from kruxt.models.enums import TicketStatus
    from kruxt.models.playbooks import (
        PlaybookPlan,
        PreconditionCheck,
        RunRecord,
        RunState,
        RunStatus,
        StepRun,
    )
    from kruxt.models.records import MessageKind
    from kruxt.workflows.policies import DB_RETRY, DB_TIMEOUT, db_activity
    from kruxt.workflows.revisions import Patches
    from kruxt.workflows.saga import compensate, run_plan
    from kruxt.workflows.ticket_steps import TicketSteps

__all__ = ["ROLLBACK_TOLD", "RunLedger"]

# workflow.patched: an approved rollback that undid every step tells the customer what
# changed (before, the customer was left believing the fix still held).
ROLLBACK_TOLD = "rollback-tells-the-customer"
# For plans made before they carried their rollback text.
_ROLLBACK_FALLBACK = (
    "Hi,\n\nWe have undone a change we made for you earlier on this request. A member of the "
    "KRUXT team will follow up here with what happens next.\n\nThe KRUXT team"
)


class RunLedger:
    """The playbook runs of one ticket, kept in its state and recorded at every change."""

    def __init__(
        self, ticket_id: uuid.UUID, runs: list[RunState], steps: TicketSteps, patches: Patches
    ) -> None:
        """``runs`` is the workflow state's own list (appended to in place)."""
        self._ticket_id = ticket_id
        self._runs = runs
        self._steps = steps
        self._patches = patches

    async def execute(self, plan: PlaybookPlan, approved_by: str) -> None:
        """Run the approved plan exactly as approved, or refuse if the facts changed."""
        run_id = workflow.uuid4()
        run = RunState(run_id=run_id, plan=plan, status=RunStatus.RUNNING, approved_by=approved_by)
        self._runs.append(run)
        await self._steps.set_status(
            TicketStatus.IN_PROGRESS, f"running plan {plan.plan_id}", actor=approved_by
        )
        await self._record(run, "approved")
        check = await db_activity(
            PlaybookActivities.check_preconditions,
            PreconditionCheck(ticket_id=self._ticket_id, plan=plan),
            "Check the plan's preconditions",
        )
        if not check.ok:
            run.status = RunStatus.REFUSED
            await self._record(run, "; ".join(check.failures))
            await self._steps.set_status(
                TicketStatus.AWAITING_HUMAN,
                f"plan refused, facts changed since approval: {'; '.join(check.failures)}",
            )
            return
        result = await run_plan(self._ticket_id, run_id, plan)
        run.finished_at = workflow.now()
        run.applied = [r.step_id for r in result.applied]
        if result.ok:
            run.status = RunStatus.SUCCEEDED
            await self._record(run, "all steps applied")
            await self._steps.send_text(MessageKind.PLAYBOOK_UPDATE, plan.customer_update)
            await self._steps.set_status(
                TicketStatus.AWAITING_CUSTOMER, f"plan {plan.plan_id} applied; customer told"
            )
            return
        run.status = RunStatus.COMPENSATED if result.compensated else RunStatus.FAILED
        await self._record(run, f"step {result.failed_step} failed: {result.reason}")
        await self._steps.set_status(
            TicketStatus.AWAITING_HUMAN,
            f"plan {plan.plan_id} failed at {result.failed_step} ({result.reason}); "
            + ("earlier steps undone" if result.compensated else "UNDO INCOMPLETE"),
        )

    async def rollback(self, run: RunState, approved_by: str) -> None:
        """Undo a completed run, after its rollback was approved."""
        runs = [
            StepRun(ticket_id=self._ticket_id, plan_id=run.plan.plan_id, run_id=run.run_id, step=s)
            for s in run.plan.steps
            if s.step_id in run.applied
        ]
        done = await compensate(runs)
        run.status = RunStatus.ROLLED_BACK if done else RunStatus.FAILED
        await self._record(run, f"rollback approved by {approved_by}")
        await self._steps.set_status(
            TicketStatus.AWAITING_HUMAN,
            f"run {run.run_id} rolled back" + ("" if done else " INCOMPLETELY"),
            actor=approved_by,
        )
        # Only a complete undo of something is told: after a partial one nobody knows what
        # still holds, and the person the ticket went to says it.
        undone = any(step.compensation for step in run.plan.steps if step.step_id in run.applied)
        if done and undone and self._patches.patched(ROLLBACK_TOLD):
            told = run.plan.rollback_update or _ROLLBACK_FALLBACK
            # Not "did this solve it?": nothing is solved, a person follows up.
            await self._steps.send_text(MessageKind.PLAYBOOK_UPDATE, told, confirmable=False)

    async def _record(self, run: RunState, reason: str) -> None:
        await workflow.execute_activity_method(
            PlaybookActivities.record_run,
            RunRecord(
                **run.model_dump(include={"run_id", "plan", "status", "approved_by"}),
                ticket_id=self._ticket_id,
                reason=reason,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=f"Record run {run.status.value}",
        )
