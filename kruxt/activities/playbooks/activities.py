"""The playbook activities: plan (read-only), check preconditions, run and undo steps, record runs.

Nothing runs that is not registered: steps and compensations are looked up by name in
:mod:`kruxt.activities.playbooks.registry`, and a name it does not know is refused,
non-retryably. App calls are keyed by plan and step (``StepRun.idempotency_key``), so a
retried activity never applies a change twice; the support-side records are keyed by the
activity's identity.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio import activity
from temporalio.exceptions import ApplicationError

from kruxt.activities._data_errors import bad_data_is_final
from kruxt.activities._keys import activity_key
from kruxt.activities.playbooks.base import build_plan
from kruxt.activities.playbooks.registry import ACTIONS, CHECKS, COMPENSATIONS, OWNER, PLAYBOOKS
from kruxt.adapters import metrics
from kruxt.adapters.app_db import (
    AppEntityNotFound,
    AppError,
    AppRefused,
    ChangeResult,
    KruxtApp,
)
from kruxt.adapters.postgres.playbook_runs import (
    CompensationStatus,
    PlaybookRunStore,
    RunNotFoundError,
    StepStatus,
)
from kruxt.models.enums import RiskTier
from kruxt.models.playbooks import (
    PlanOutcome,
    PlanRequest,
    PreconditionCheck,
    PreconditionResult,
    RunRecord,
    StepResult,
    StepRun,
)

__all__ = ["PlaybookActivities"]

# ApplicationError types the workflow may see (all non-retryable).
UNKNOWN_ACTION = "UnknownAction"
INVALID_STEP = "InvalidStep"
RUN_NOT_RECORDED = "RunNotRecorded"
APP_NOT_CONFIGURED = "AppNotConfigured"
NO_APP = "no KRUXT app database is configured (APP_DATABASE_URL)"


def _app_failure(exc: AppError) -> ApplicationError:
    kind = "AppEntityNotFound" if isinstance(exc, AppEntityNotFound) else "AppRefused"
    return ApplicationError(exc.message, type=kind, non_retryable=True)


def _not_recorded(exc: RunNotFoundError) -> ApplicationError:
    return ApplicationError(str(exc), type=RUN_NOT_RECORDED, non_retryable=True)


class PlaybookActivities:
    """Playbook side effects, on the KRUXT app (``kruxt_admin``) and the support records.

    Without an app (``app=None``) no plan is made ("not configured") and a step or check
    fails non-retryably with type ``AppNotConfigured``.
    """

    def __init__(self, app: KruxtApp | None, runs: PlaybookRunStore) -> None:
        self._maybe_app = app
        self._runs = runs

    @property
    def _app(self) -> KruxtApp:
        if self._maybe_app is None:
            raise ApplicationError(NO_APP, type=APP_NOT_CONFIGURED, non_retryable=True)
        return self._maybe_app

    # -- plan --------------------------------------------------------------------------------

    @activity.defn
    async def plan_playbook(self, req: PlanRequest) -> PlanOutcome:
        """Diagnose read-only and propose a plan, or say why there is none; audit either way."""
        outcome = await self._plan(req)
        await self._runs.record_plan(
            ticket_id=req.ticket_id,
            plan_id=req.plan_id,
            playbook=req.playbook,
            plan=outcome.plan,
            reason=outcome.reason,
            idempotency_key=activity_key(),
        )
        return outcome

    async def _plan(self, req: PlanRequest) -> PlanOutcome:
        declaration = PLAYBOOKS.get(req.playbook)
        if declaration is None:
            return PlanOutcome(reason=f"unknown playbook {req.playbook!r}")
        if self._maybe_app is None:
            return PlanOutcome(reason=NO_APP)
        account_id = (req.account_id or "").strip()
        if not account_id:
            return PlanOutcome(reason="the ticket names no account: there is nothing to diagnose")
        account = await self._app.account_context(user_id=account_id)
        if account is None:
            return PlanOutcome(reason=f"unknown account {account_id!r}: the app has no such user")
        try:
            diagnosis = await declaration.diagnose(self._app, account_id)
        except AppEntityNotFound as exc:
            return PlanOutcome(reason=f"unknown account {account_id!r}: {exc.message}")
        except AppRefused as exc:
            return PlanOutcome(reason=f"the app refused the diagnosis: {exc.message}")
        proposals = declaration.propose(diagnosis)
        explain = declaration.no_steps(diagnosis) if declaration.no_steps else ""
        if declaration.risk is RiskTier.READ_ONLY:
            return PlanOutcome(
                reason=explain or f"{declaration.id} is read-only: it changes nothing"
            )
        if not proposals:
            detail = explain or "the diagnosis found nothing this playbook changes"
            return PlanOutcome(reason=f"nothing to fix for {account_id}: {detail}")
        plan = build_plan(
            declaration,
            ticket_id=req.ticket_id,
            plan_id=req.plan_id,
            diagnosis=diagnosis,
            proposals=proposals,
            account=account,
            requester_name=req.requester_name,
        )
        return PlanOutcome(plan=plan)

    # -- preconditions -----------------------------------------------------------------------

    @activity.defn
    async def check_preconditions(self, inp: PreconditionCheck) -> PreconditionResult:
        """Re-check every precondition of the approved plan; a failure is a recorded refusal."""
        plan = inp.plan
        failures: list[str] = []
        declared: set[tuple[str, str]] = set()
        for pre in plan.preconditions:
            declared.add((pre.check, repr(sorted(pre.target.items()))))
        for step in plan.steps:
            action = ACTIONS.get(step.action)
            if action is None or OWNER[step.action] != plan.playbook:
                failures.append(
                    f"{step.step_id}: {step.action!r} is not an action of playbook {plan.playbook}"
                )
                continue
            for name in action.requires:
                if (name, repr(sorted(step.target.items()))) not in declared:
                    failures.append(f"{step.step_id}: the plan lacks its precondition {name}")
        for pre in plan.preconditions:
            check = CHECKS.get(pre.check)
            if check is None:
                failures.append(f"{pre.check}: not a registered check")
                continue
            try:
                reason = await check.call(self._app, pre.target)
            except AppError as exc:
                reason = exc.message
            except KeyError as exc:
                reason = f"its target lacks {exc}"
            if reason:
                failures.append(f"{pre.check}: {reason}")
        if failures:
            await self._runs.record_refusal(
                ticket_id=inp.ticket_id,
                plan_id=plan.plan_id,
                playbook=plan.playbook,
                failures=failures,
                idempotency_key=activity_key(),
            )
        return PreconditionResult(ok=not failures, failures=failures)

    # -- steps -------------------------------------------------------------------------------

    async def _refuse(self, run: StepRun, kind: str, message: str) -> ApplicationError:
        await self._runs.record_refusal(
            ticket_id=run.ticket_id,
            plan_id=run.plan_id,
            playbook=OWNER.get(run.step.action, ""),
            failures=[message],
            step_id=run.step.step_id,
            idempotency_key=activity_key(),
        )
        return ApplicationError(message, type=kind, non_retryable=True)

    async def _apply(
        self,
        run: StepRun,
        call: Awaitable[ChangeResult],
        record: Callable[..., Awaitable[bool]],
        *,
        failed: StepStatus | CompensationStatus,
        done: Callable[[ChangeResult], StepStatus | CompensationStatus],
    ) -> StepResult:
        """The app's change, recorded with ``record``: with its images and the status ``done``
        gives it, or as ``failed`` when the app refuses it (which fails non-retryably)."""
        try:
            change = await call
        except (AppEntityNotFound, AppRefused) as exc:
            await record(
                run=run,
                result=None,
                status=failed,
                error=exc.message,
                idempotency_key=activity_key(),
            )
            raise _app_failure(exc) from exc
        result = StepResult(
            step_id=run.step.step_id,
            before=change.before,
            after=change.after,
            replayed=change.replayed,
            noop=change.noop,
        )
        await record(run=run, result=result, status=done(change), idempotency_key=activity_key())
        return result

    @activity.defn
    async def run_step(self, run: StepRun) -> StepResult:
        """Apply one registered step, keyed by plan and step; record it with its images."""
        step = run.step
        action = ACTIONS.get(step.action)
        if action is None:
            raise await self._refuse(
                run,
                UNKNOWN_ACTION,
                f"unknown action {step.action!r}: only registered playbook actions run",
            )
        missing = [arg for arg in action.args if not step.target.get(arg)]
        if missing:
            raise await self._refuse(
                run, INVALID_STEP, f"{step.action}: the step's target lacks {', '.join(missing)}"
            )
        try:
            return await self._apply(
                run,
                action.call(self._app, run.idempotency_key, step.target),
                self._runs.record_step,
                failed=StepStatus.FAILED,
                done=lambda _: StepStatus.APPLIED,
            )
        except RunNotFoundError as exc:
            raise _not_recorded(exc) from exc

    @activity.defn
    async def compensate_step(self, run: StepRun) -> StepResult:
        """Undo one step with its registered compensation; nothing to undo is a success."""
        step = run.step
        action = ACTIONS.get(step.action)
        if action is not None and step.compensation != action.compensation:
            raise await self._refuse(
                run,
                INVALID_STEP,
                f"{step.action}: the step names compensation {step.compensation!r}, the "
                f"registry {action.compensation!r}",
            )
        try:
            if action is None or action.compensation is None:
                # An unknown action never ran (run_step refuses it): nothing to undo either.
                result = StepResult(step_id=step.step_id, noop=True)
                await self._runs.record_compensation(
                    run=run,
                    result=result,
                    status=CompensationStatus.NONE if action else CompensationStatus.NOOP,
                    idempotency_key=activity_key(),
                )
                return result
            compensation = COMPENSATIONS[action.compensation]
            result = await self._apply(
                run,
                compensation.call(self._app, run.compensation_key, run.idempotency_key),
                self._runs.record_compensation,
                failed=CompensationStatus.FAILED,
                done=lambda c: CompensationStatus.NOOP if c.noop else CompensationStatus.DONE,
            )
            metrics.compensated(step.action)
        except RunNotFoundError as exc:
            raise _not_recorded(exc) from exc
        return result

    # -- runs --------------------------------------------------------------------------------

    @activity.defn
    @bad_data_is_final
    async def record_run(self, record: RunRecord) -> None:
        """Create or update the run's record, with its audit entry."""
        await self._runs.record_run(record=record, idempotency_key=activity_key())
