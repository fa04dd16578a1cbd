"""Plan, approve, run, undo: the approval stand-in and the saga on the time-skipping server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from kruxt.activities.playbooks.activities import PlaybookActivities
from kruxt.adapters.app_db import KruxtApp
from kruxt.adapters.approvers import Approver, ApproverDirectory
from kruxt.adapters.postgres.playbook_runs import PlaybookRunStore
from kruxt.adapters.postgres.pool import connect
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.models.approvals import (
    ApprovalStatus,
    Decision,
    DecisionChannel,
    RollbackRequest,
    Verdict,
)
from kruxt.models.enums import TicketStatus
from kruxt.models.playbooks import (
    ApproverRole,
    PlannedStep,
    PlanOutcome,
    PlanRequest,
    Precondition,
    RunStatus,
    StepResult,
    StepRun,
    Touches,
)
from kruxt.models.tickets import (
    TicketIntake,
    TicketOutcome,
    TicketState,
)
from kruxt.workers.composition import (
    ExecutorWorker,
    Outside,
    activity_executor,
    build_worker,
)
from kruxt.workflows.ticket import TicketWorkflow
from tests.sagas import StandIns, stand_in_plan, worker_with_stand_ins
from tests.support import demo_app, resolve, start_ticket, until_status
from tests.support import locked_ticket as locked_ticket  # test_ticket_workflow imports it here

FOUNDER = "founder@kruxt.app"
ALL_ROLES = [ApproverRole.APPROVER, ApproverRole.MODERATOR, ApproverRole.ADMIN, ApproverRole.STAFF]
# The approvers directory the worker snapshots onto every approval: roles come from here.
APPROVERS = ApproverDirectory(
    [
        Approver(name="Founder", email=FOUNDER, slack_user_id="U0FOUNDER", roles=ALL_ROLES),
        Approver(name="Maya", email="maya@kruxt.app", roles=[ApproverRole.ADMIN]),
        Approver(name="Cto", email="cto@kruxt.app", roles=[ApproverRole.ADMIN]),
        # Staff who also files tickets: never the approver of their own.
        Approver(name="Ana", email="ana@example.com", roles=ALL_ROLES),
    ]
)


@dataclass
class Env:
    ts: WorkflowEnvironment
    pool: asyncpg.Pool[Any]
    app: KruxtApp
    queue: str
    db_dsn: str


@pytest.fixture
async def env(
    ts_env: WorkflowEnvironment, db_dsn: str, pool: asyncpg.Pool[Any], task_queue: str
) -> AsyncIterator[Env]:
    async with demo_app(db_dsn) as app:
        yield Env(ts_env, pool, app, task_queue, db_dsn)


async def start(e: Env, ticket: TicketIntake) -> WorkflowHandle[Any, TicketOutcome]:
    return await start_ticket(e.ts.client, ticket, task_queue=e.queue)


async def awaiting_approval(
    e: Env, ticket: TicketIntake
) -> tuple[WorkflowHandle[Any, TicketOutcome], TicketState]:
    """Start the ticket; its state once its plan waits for an approver."""
    handle = await start(e, ticket)
    return handle, await until_status(handle, TicketStatus.AWAITING_APPROVAL)


def worker(e: Env) -> ExecutorWorker:
    """The real worker with every activity, against the demo app and the approvers above."""
    return build_worker(
        e.ts.client,
        task_queue=e.queue,
        pool=e.pool,
        outside=Outside(app=e.app, approvers=APPROVERS),
    )


def decision(state: TicketState, *, who: str = FOUNDER, **kw: Any) -> Decision:
    if "approval_id" not in kw:
        pending = [a for a in state.approvals if a.status is ApprovalStatus.PENDING]
        assert pending, "no pending approval"
        kw["approval_id"] = pending[-1].request.approval_id
    fields: dict[str, Any] = {
        "approver": who,
        "roles": ALL_ROLES,
        "verdict": Verdict.APPROVE,
        "channel": DecisionChannel.CLI,
    }
    fields.update(kw)
    return Decision(**fields)


async def lock_state(e: Env) -> tuple[Any, ...]:
    conn = await connect(e.db_dsn)
    try:
        row = await conn.fetchrow(
            "SELECT locked_until, failed_logins FROM kruxt_app.users WHERE id = 'u-locked'"
        )
    finally:
        await conn.close()
    assert row is not None
    return tuple(row)


async def audit_actions(e: Env, ticket: TicketIntake) -> list[str]:
    async with e.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT action FROM support_audit_log WHERE ticket_id = $1 ORDER BY id",
            ticket.ticket_id,
        )
    return [r["action"] for r in rows]


async def test_approved_plan_runs_and_the_customer_is_told(env: Env) -> None:
    ticket = locked_ticket()
    before = await lock_state(env)
    async with worker(env):
        handle, state = await awaiting_approval(env, ticket)
        request = state.approvals[0].request
        assert request.playbook == "auth_login"
        assert request.plain_explanation
        assert request.rollback_plan
        assert request.preview
        # Still locked, exactly as before: nothing ran before the approval.
        assert await lock_state(env) == before

        outcome = await handle.execute_update(TicketWorkflow.decide, decision(state))
        assert outcome.status is ApprovalStatus.APPROVED
        done = await until_status(handle, TicketStatus.AWAITING_CUSTOMER)
        await resolve(handle, actor=FOUNDER)
    assert done.runs[0].status is RunStatus.SUCCEEDED
    assert (await lock_state(env))[0] is None
    view = await TicketStore(env.pool).get(ticket.ticket_id)
    assert view is not None
    assert "playbook_update" in [m.kind for m in view.messages]
    actions = await audit_actions(env, ticket)
    for expected in (
        "playbook.planned",
        "approval.requested",
        "approval.approved",
        "playbook.step_applied",
        "message.sent",
    ):
        assert expected in actions, f"{expected} missing from {actions}"
    assert actions.index("approval.approved") < actions.index("playbook.step_applied")


async def test_rejected_plan_changes_nothing(env: Env) -> None:
    ticket = locked_ticket()
    before = await lock_state(env)
    async with worker(env):
        handle, state = await awaiting_approval(env, ticket)
        await handle.execute_update(
            TicketWorkflow.decide,
            decision(state, verdict=Verdict.REJECT, reason="looks like an attacker"),
        )
        after = await until_status(handle, TicketStatus.AWAITING_HUMAN)
        await resolve(handle, actor=FOUNDER)
    assert after.runs == []
    assert await lock_state(env) == before


async def test_the_validator_refuses_what_it_must(env: Env) -> None:
    ticket = locked_ticket(email="ana@example.com")
    async with worker(env):
        handle, state = await awaiting_approval(env, ticket)
        cases = [
            (decision(state, approval_id=uuid.uuid4()), "unknown approval"),
            (decision(state, who="ana@example.com"), "requester"),
            # Roles come from the directory snapshot, whatever the caller claims.
            (
                decision(state, who="mallory@evil.example", roles=ALL_ROLES),
                "mallory@evil.example is not in the approvers directory",
            ),
            # A Slack decision must come from the directory entry's own Slack user.
            (
                decision(state, channel=DecisionChannel.SLACK, slack_user_id="U0MALLORY"),
                f"Slack user U0MALLORY is not {FOUNDER}",
            ),
        ]
        for bad, why in cases:
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update(TicketWorkflow.decide, bad)
            assert why in str(refused.value.cause)
        await handle.execute_update(TicketWorkflow.decide, decision(state))
        # A second decision, even the same one, loses and is told who decided.
        with pytest.raises(WorkflowUpdateFailedError) as late:
            await handle.execute_update(
                TicketWorkflow.decide, decision(state, who="cto@kruxt.app", verdict=Verdict.REJECT)
            )
        assert f"already approved by {FOUNDER}" in str(late.value.cause)
        await until_status(handle, TicketStatus.AWAITING_CUSTOMER)
        await resolve(handle, actor=FOUNDER)


async def test_two_approvers_racing_one_wins(env: Env) -> None:
    ticket = locked_ticket()
    async with worker(env):
        handle, state = await awaiting_approval(env, ticket)
        results = await asyncio.gather(
            handle.execute_update(TicketWorkflow.decide, decision(state, who="maya@kruxt.app")),
            handle.execute_update(
                TicketWorkflow.decide,
                decision(state, who="cto@kruxt.app", verdict=Verdict.REJECT),
            ),
            return_exceptions=True,
        )
        winners = [r for r in results if not isinstance(r, BaseException)]
        losers = [r for r in results if isinstance(r, WorkflowUpdateFailedError)]
        assert len(winners) == 1
        assert len(losers) == 1
        assert f"by {winners[0].decided_by}" in str(losers[0].cause)
        await until_status(
            handle,
            TicketStatus.AWAITING_CUSTOMER
            if winners[0].status is ApprovalStatus.APPROVED
            else TicketStatus.AWAITING_HUMAN,
        )
        await resolve(handle, actor=FOUNDER)


async def test_a_precondition_that_no_longer_holds_refuses_the_plan(env: Env) -> None:
    ticket = locked_ticket()
    async with worker(env):
        handle, state = await awaiting_approval(env, ticket)
        # Someone unlocked the account by hand while the approval waited.
        await env.app.unlock_account(idempotency_key="by-hand", user_id="u-locked")
        between = await lock_state(env)
        await handle.execute_update(TicketWorkflow.decide, decision(state))
        after = await until_status(handle, TicketStatus.AWAITING_HUMAN)
        await resolve(handle, actor=FOUNDER)
    assert after.runs[0].status is RunStatus.REFUSED
    assert await lock_state(env) == between
    actions = await audit_actions(env, ticket)
    assert "playbook.refused" in actions
    assert "playbook.step_applied" not in actions


async def test_rollback_after_success_needs_an_approval_and_restores(env: Env) -> None:
    ticket = locked_ticket()
    before = await lock_state(env)
    async with worker(env):
        handle, state = await awaiting_approval(env, ticket)
        await handle.execute_update(TicketWorkflow.decide, decision(state))
        done = await until_status(handle, TicketStatus.AWAITING_CUSTOMER)
        run_id = done.runs[0].run_id
        assert (await lock_state(env))[0] is None

        with pytest.raises(WorkflowUpdateFailedError) as stranger:
            await handle.execute_update(
                TicketWorkflow.request_rollback,
                RollbackRequest(run_id=run_id, actor="mallory@evil.example"),
            )
        assert "not in the approvers directory" in str(stranger.value.cause)
        approval_id = await handle.execute_update(
            TicketWorkflow.request_rollback,
            RollbackRequest(run_id=run_id, actor=FOUNDER.upper(), reason="customer asked"),
        )
        with pytest.raises(WorkflowUpdateFailedError) as twice:
            await handle.execute_update(
                TicketWorkflow.request_rollback, RollbackRequest(run_id=run_id, actor=FOUNDER)
            )
        assert "already requested" in str(twice.value.cause)
        assert (await lock_state(env))[0] is None  # nothing undone before the approval
        with pytest.raises(WorkflowUpdateFailedError) as own:
            await handle.execute_update(
                TicketWorkflow.decide, decision(done, approval_id=approval_id)
            )
        assert "asked for a rollback cannot approve it" in str(own.value.cause)
        pending = (await handle.query(TicketWorkflow.state)).approvals[-1].request
        assert pending.requested_by == FOUNDER.upper()
        await handle.execute_update(
            TicketWorkflow.decide, decision(done, approval_id=approval_id, who="maya@kruxt.app")
        )
        rolled = await until_status(handle, TicketStatus.AWAITING_HUMAN)
        await resolve(handle, actor=FOUNDER)
    assert rolled.runs[0].status is RunStatus.ROLLED_BACK
    assert await lock_state(env) == before


async def test_no_decision_expires_and_goes_to_a_person(env: Env) -> None:
    ticket = locked_ticket()
    async with worker(env):
        handle, state = await awaiting_approval(env, ticket)
        window = state.approvals[0].request.expires_at - state.approvals[0].request.requested_at
        await env.ts.sleep(window + timedelta(minutes=1))
        after = await until_status(handle, TicketStatus.AWAITING_HUMAN)
        with pytest.raises(WorkflowUpdateFailedError) as late:
            await handle.execute_update(
                TicketWorkflow.decide,
                decision(state, approval_id=state.approvals[0].request.approval_id),
            )
        assert "already expired" in str(late.value.cause)
        await resolve(handle, actor=FOUNDER)
    assert after.approvals[0].status is ApprovalStatus.EXPIRED
    actions = await audit_actions(env, ticket)
    gate = [a for a in actions if a.startswith("approval.")]
    # Sent, reminded half-way, escalated at 75%, then expired (never "rejected").
    assert gate == [
        "approval.requested",
        "approval.sent",
        "approval.reminded",
        "approval.reminded",
        "approval.expired",
    ]
    async with env.pool.acquire() as conn:
        levels = await conn.fetch(
            "SELECT (details->>'level')::int AS level FROM support_audit_log "
            "WHERE action IN ('approval.sent', 'approval.reminded') ORDER BY id"
        )
    assert [r["level"] for r in levels] == [1, 1, 2]
    view = await TicketStore(env.pool).get(ticket.ticket_id)
    assert view is not None
    assert view.messages[-1].kind == "holding"
    async with env.pool.acquire() as conn:
        status = await conn.fetchval("SELECT status FROM support_approvals")
    assert status == "expired"


def _two_step_plan(req: PlanRequest) -> PlanOutcome:
    def unlock(step_id: str) -> PlannedStep:
        return PlannedStep(
            step_id=step_id,
            action="unlock_account",
            target={"user_id": "u-locked"},
            description=f"Unlock u-locked ({step_id})",
            compensation="relock_account",
            touches=[Touches.PERMISSIONS],
        )

    still_locked = Precondition(
        check="account_still_locked",
        target={"user_id": "u-locked"},
        description="u-locked is still locked",
    )
    return stand_in_plan(
        req,
        "auth_login",
        [unlock("s1"), unlock("s2")],
        [still_locked],
        explain="Unlock the account.",
        tell="Your account is unlocked.",
    )


async def test_a_step_failing_midway_undoes_the_earlier_ones(env: Env) -> None:
    """s1 applies for real; s2 fails for good; s1 is compensated by the real activity."""
    real = PlaybookActivities(env.app, PlaybookRunStore(env.pool))

    @activity.defn(name="plan_playbook")
    async def plan_two_steps(req: PlanRequest) -> PlanOutcome:
        return _two_step_plan(req)

    @activity.defn(name="run_step")
    async def second_step_breaks(run: StepRun) -> StepResult:
        if run.step.step_id == "s2":
            raise ApplicationError("the app refused s2", type="AppRefused", non_retryable=True)
        return await real.run_step(run)

    ticket = locked_ticket()
    before = await lock_state(env)
    stand_ins: StandIns = {"plan_playbook": plan_two_steps, "run_step": second_step_breaks}
    with activity_executor(8) as executor:
        async with worker_with_stand_ins(
            env.ts.client,
            task_queue=env.queue,
            pool=env.pool,
            app=env.app,
            stand_ins=stand_ins,
            executor=executor,
            approvers=APPROVERS,
        ):
            handle, state = await awaiting_approval(env, ticket)
            await handle.execute_update(TicketWorkflow.decide, decision(state))
            after = await until_status(handle, TicketStatus.AWAITING_HUMAN)
            await resolve(handle, actor=FOUNDER)
    assert after.runs[0].status is RunStatus.COMPENSATED
    assert after.runs[0].applied == ["s1"]
    assert await lock_state(env) == before
    actions = await audit_actions(env, ticket)
    assert actions.index("playbook.step_compensated") > actions.index("playbook.step_applied")
    async with env.pool.acquire() as conn:
        steps = await conn.fetch("SELECT step_id, status FROM support_playbook_run_steps")
        reason = await conn.fetchval(
            "SELECT details->>'reason' FROM support_audit_log WHERE ticket_id = $1 "
            "AND action = 'ticket.status_changed' ORDER BY id DESC OFFSET 1 LIMIT 1",
            ticket.ticket_id,
        )
    assert [(r["step_id"], r["status"]) for r in steps] == [("s1", "compensated")]
    assert "failed at s2" in reason
    assert "earlier steps undone" in reason
