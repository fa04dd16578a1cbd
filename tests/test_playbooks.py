"""Playbooks end to end on a real PostgreSQL holding the support and the app schema.

For every playbook that changes something: the plan for its demo user names the concrete
targets and previews the change; the preconditions hold; every step changes the app as the
preview said; a step run again applies nothing; the compensations in reverse order put the app
back exactly (full row dumps compared); runs, steps and audit entries are recorded.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from kruxt.activities.playbooks import auth_login
from kruxt.activities.playbooks.activities import PlaybookActivities
from kruxt.activities.playbooks.base import (
    RUN_TIME,
    Proposal,
    build_plan,
    matches_preview,
    when,
)
from kruxt.activities.playbooks.registry import (
    ACTIONS,
    CHECKS,
    COMPENSATIONS,
    OWNER,
    PLAYBOOKS,
)
from kruxt.adapters.app_db import AppEntityNotFound, ChangeResult, KruxtApp
from kruxt.adapters.postgres import audit
from kruxt.adapters.postgres.playbook_runs import (
    CompensationStatus,
    PlaybookRunStore,
    StepStatus,
)
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.models.catalog import CATALOG, PLAYBOOK_IDS
from kruxt.models.enums import RiskTier
from kruxt.models.playbooks import (
    ApproverRole,
    PlannedStep,
    PlanOutcome,
    PlanRequest,
    PlaybookPlan,
    PreconditionCheck,
    RunRecord,
    RunStatus,
    StepResult,
    StepRun,
)
from tests.support import connection, install_demo_app, intake, pool_on
from tests.test_app_schema import APP_TABLES, BILLING_LIVE, Dump, dump

In = TypeVar("In")
Out = TypeVar("Out")


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
async def shared_dsn(db_dsn: str) -> str:
    """The test's support database with the app schema and demo data installed next to it."""
    await install_demo_app(db_dsn)
    return db_dsn


@pytest.fixture
async def pg(shared_dsn: str) -> AsyncIterator[asyncpg.Pool[Any]]:
    async with pool_on(shared_dsn, max_size=6) as p:
        yield p


@pytest.fixture
async def db(shared_dsn: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    """A superuser connection for setup and full row dumps."""
    async with connection(shared_dsn) as conn:
        yield conn


@pytest.fixture
def app(pg: asyncpg.Pool[Any]) -> KruxtApp:
    return KruxtApp(pg)


@pytest.fixture
def store(pg: asyncpg.Pool[Any]) -> PlaybookRunStore:
    return PlaybookRunStore(pg)


@pytest.fixture
def acts(app: KruxtApp, store: PlaybookRunStore) -> PlaybookActivities:
    return PlaybookActivities(app, store)


@pytest.fixture
async def ticket_id(pg: asyncpg.Pool[Any]) -> uuid.UUID:
    ticket = intake()
    await TicketStore(pg).persist_ticket(
        intake=ticket, workflow_id=f"ticket-{ticket.ticket_id}", idempotency_key="persist"
    )
    return ticket.ticket_id


# -- helpers -------------------------------------------------------------------------------------


async def act(
    fn: Callable[[In], Awaitable[Out]], arg: In, *, activity_id: str | None = None
) -> Out:
    """Run an activity method as one activity execution (a fresh one unless ``activity_id``)."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        workflow_id="ticket-test",
        workflow_run_id="run-test",
        activity_id=activity_id or uuid.uuid4().hex,
    )
    return await env.run(fn, arg)


async def plan_for(
    acts: PlaybookActivities, ticket_id: uuid.UUID, playbook: str, account_id: str | None
) -> PlanOutcome:
    return await act(
        acts.plan_playbook,
        PlanRequest(
            ticket_id=ticket_id,
            plan_id=uuid.uuid4(),
            playbook=playbook,
            account_id=account_id,
            requester_name="Pat",
        ),
    )


async def audit_actions(db: asyncpg.Connection[Any], ticket_id: uuid.UUID) -> list[str]:
    return [e.action for e in await audit.entries_for_ticket(db, ticket_id)]


def texts(plan: PlaybookPlan) -> dict[str, str]:
    return {
        "plain": plan.plain_explanation,
        "technical": plan.technical_explanation,
        "rollback": plan.rollback_plan,
        "customer": plan.customer_update,
    }


def without(d: Dump, *tables: str) -> Dump:
    return {k: v for k, v in d.items() if k not in tables}


async def start_run(
    acts: PlaybookActivities, ticket_id: uuid.UUID, plan: PlaybookPlan
) -> uuid.UUID:
    run_id = uuid.uuid4()
    await act(
        acts.record_run,
        RunRecord(
            ticket_id=ticket_id,
            run_id=run_id,
            plan=plan,
            status=RunStatus.RUNNING,
            approved_by="ops@kruxt.app",
            reason="approved",
        ),
    )
    return run_id


def step_runs(ticket_id: uuid.UUID, run_id: uuid.UUID, plan: PlaybookPlan) -> list[StepRun]:
    return [
        StepRun(ticket_id=ticket_id, plan_id=plan.plan_id, run_id=run_id, step=s)
        for s in plan.steps
    ]


# -- every playbook that changes something -------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    playbook: str
    user: str
    # (action, the target's identifying key, its value) per expected step, in order
    steps: tuple[tuple[str, str, str], ...]
    approver: ApproverRole
    # Tables a step without compensation leaves changed (a mail queued stays queued).
    leaves: tuple[str, ...] = ()
    # After the run, the playbook finds nothing left to do for this user.
    fixed_after: bool = True
    setup: str | None = None

    def __str__(self) -> str:
        return f"{self.playbook}-{self.user}"


SCENARIOS = [
    Scenario(
        "auth_login",
        "u-locked",
        (("unlock_account", "user_id", "u-locked"),),
        ApproverRole.APPROVER,
    ),
    Scenario(
        "auth_login",
        "u-unverified",
        (("resend_verification", "user_id", "u-unverified"),),
        ApproverRole.APPROVER,
        leaves=("outbox_emails",),
        fixed_after=False,  # still unverified until the user clicks the link
    ),
    Scenario(
        "workout_log_submit",
        "u-workout-fail",
        (
            ("replay_submission", "submission_id", "ws-fail-timeout"),
            ("replay_submission", "submission_id", "ws-fail-serialize"),
        ),
        ApproverRole.APPROVER,
    ),
    Scenario(
        "feed_moderation",
        "u-post-author",
        (("restore_post_visibility", "post_id", "p-hidden"),),
        ApproverRole.MODERATOR,
    ),
    Scenario(
        "class_booking_waitlist",
        "u-waitlist",
        (("repair_waitlist", "class_id", "c-hiit-0700"),),
        ApproverRole.APPROVER,
    ),
    Scenario(
        "integration_sync",
        "u-garmin",
        (("mark_reauth_required", "connection_id", "conn-garmin-expired"),),
        ApproverRole.APPROVER,
    ),
    Scenario(
        "integration_sync",
        "u-apple-stale",
        (("reset_sync_cursor", "connection_id", "conn-apple-stale"),),
        ApproverRole.APPROVER,
    ),
    Scenario(
        "billing_invoice",
        "u-invoice-bounced",
        (("resend_invoice", "invoice_id", "inv-bounced"),),
        ApproverRole.ADMIN,
        leaves=("invoice_deliveries",),
        fixed_after=False,  # the invoice stays marked bounced until the mailer delivers it
    ),
    Scenario(
        "billing_invoice",
        "u-gym-billing",
        (("restore_billing_access", "user_id", "u-gym-billing"),),
        ApproverRole.ADMIN,
        setup=BILLING_LIVE,
    ),
]


@pytest.mark.parametrize("s", SCENARIOS, ids=str)
async def test_plan_run_replay_and_compensate(
    s: Scenario,
    acts: PlaybookActivities,
    store: PlaybookRunStore,
    db: asyncpg.Connection[Any],
    ticket_id: uuid.UUID,
) -> None:
    if s.setup:
        await db.execute(s.setup)
    original = await dump(db, *APP_TABLES)

    # Plan: read-only, concrete, previewed, explained.
    outcome = await plan_for(acts, ticket_id, s.playbook, s.user)
    plan = outcome.plan
    assert plan is not None, outcome.reason
    assert await dump(db, *APP_TABLES) == original
    assert [
        (st.action, st.target[key]) for st, (_, key, _) in zip(plan.steps, s.steps, strict=True)
    ] == [(action, value) for action, _, value in s.steps]
    assert [st.step_id for st in plan.steps] == [f"s{i}" for i in range(1, len(s.steps) + 1)]
    assert plan.approver_role is s.approver
    assert plan.risk is PLAYBOOKS[s.playbook].risk
    assert plan.risk is CATALOG[PLAYBOOKS[s.playbook].category].risk
    assert plan.preconditions
    for st in plan.steps:
        assert set(st.preview) == {"before", "after"}
        assert st.preview["before"] is not None
        assert st.preview["after"] != st.preview["before"]
        assert st.compensation == ACTIONS[st.action].compensation
        assert st.description[1:] in plan.plain_explanation  # sentence-cased there
        assert f"kruxt_admin.{st.action}(" in plan.technical_explanation
        assert f"{st.step_id} {st.action}(" in plan.rollback_plan
        if st.compensation:
            assert f"kruxt_admin.{st.compensation}(" in plan.rollback_plan
        else:
            assert st.rollback_note in plan.rollback_plan
    for _, _, value in s.steps:
        for name, text in texts(plan).items():
            if name != "customer":
                assert value in text, f"{value} missing from the {name} text"
    assert "Pat" in plan.customer_update

    # Preconditions still hold.
    check = await act(acts.check_preconditions, PreconditionCheck(ticket_id=ticket_id, plan=plan))
    assert check.ok, check.failures

    # Run every step: the app changes as previewed.
    run_id = await start_run(acts, ticket_id, plan)
    runs = step_runs(ticket_id, run_id, plan)
    results: list[StepResult] = []
    activity_ids = []
    for run in runs:
        activity_ids.append(uuid.uuid4().hex)
        result = await act(acts.run_step, run, activity_id=activity_ids[-1])
        assert not result.replayed
        assert matches_preview(run.step.preview["before"], result.before), result.before
        assert matches_preview(run.step.preview["after"], result.after), result.after
        results.append(result)
    applied = await dump(db, *APP_TABLES)
    assert applied != original
    if s.fixed_after:
        again = await plan_for(acts, ticket_id, s.playbook, s.user)
        assert again.plan is None
        assert again.reason.startswith("nothing to fix")

    # The same step again (a retried activity, then a new execution): nothing applied twice.
    for run, first, activity_id in zip(runs, results, activity_ids, strict=True):
        retried = await act(acts.run_step, run, activity_id=activity_id)
        rerun = await act(acts.run_step, run)
        for r in (retried, rerun):
            assert r.replayed
            assert (r.before, r.after) == (first.before, first.after)
    assert await dump(db, *APP_TABLES) == applied

    # Compensate in reverse: the app is back exactly (what has no undo stays, as written).
    for run in reversed(runs):
        undone = await act(acts.compensate_step, run)
        assert undone.noop is (run.step.compensation is None)
    restored = await dump(db, *APP_TABLES)
    assert without(restored, *s.leaves) == without(original, *s.leaves)
    for table in s.leaves:
        assert restored[table] == applied[table] != original[table]
    # Compensating again (keyed as before) replays the undo: nothing changes twice.
    for run in reversed(runs):
        again_undone = await act(acts.compensate_step, run)
        assert again_undone.replayed or run.step.compensation is None
    assert await dump(db, *APP_TABLES) == restored

    # Records: the run, each step with its images and its compensation's fate.
    view = await store.get_run(run_id)
    assert view is not None
    assert view.status is RunStatus.RUNNING
    assert view.plan == plan
    assert view.approved_by == "ops@kruxt.app"
    assert [st.step_id for st in view.steps] == [st.step_id for st in plan.steps]
    for record, result, step in zip(view.steps, results, plan.steps, strict=True):
        assert (record.before, record.after) == (result.before, result.after)
        assert record.replayed
        assert record.action == step.action
        if step.compensation:
            assert record.status is StepStatus.COMPENSATED
            assert record.compensation_status is CompensationStatus.DONE
            assert record.compensation == step.compensation
        else:
            assert record.status is StepStatus.APPLIED
            assert record.compensation_status is CompensationStatus.NONE
    assert [v.run_id for v in await store.runs_for_ticket(ticket_id)] == [run_id]

    actions = await audit_actions(db, ticket_id)
    n = len(plan.steps)
    assert actions.count("playbook.planned") == 1
    assert actions.count("playbook.run_running") == 1
    # Applied, then one new execution per step (the retried one recorded nothing new).
    assert actions.count("playbook.step_applied") == 2 * n
    assert actions.count("playbook.step_compensated") == 2 * n
    assert "playbook.refused" not in actions
    assert (await audit.verify(db)).first_bad_id is None


# -- read-only, nothing to fix, no plan ----------------------------------------------------------


@pytest.mark.parametrize(("user", "kind"), [("u-export", "export"), ("u-deletion", "deletion")])
async def test_privacy_requests_are_read_only(
    user: str,
    kind: str,
    acts: PlaybookActivities,
    app: KruxtApp,
    db: asyncpg.Connection[Any],
    ticket_id: uuid.UUID,
) -> None:
    before = await dump(db, *APP_TABLES)
    outcome = await plan_for(acts, ticket_id, "privacy_request_status", user)
    assert outcome.plan is None
    assert "read-only" in outcome.reason
    assert "handled by staff outside automation" in outcome.reason
    assert f"{kind} request" in outcome.reason
    declaration = PLAYBOOKS["privacy_request_status"]
    assert declaration.actions == ()
    assert declaration.propose(await declaration.diagnose(app, user)) == []
    assert await dump(db, *APP_TABLES) == before
    assert await audit_actions(db, ticket_id) == ["ticket.received", "playbook.not_planned"]


@pytest.mark.parametrize("user", ["u-healthy", "u-healthy-gym"])
@pytest.mark.parametrize("playbook", sorted(PLAYBOOK_IDS))
async def test_a_healthy_account_gets_no_plan(
    playbook: str, user: str, acts: PlaybookActivities, ticket_id: uuid.UUID
) -> None:
    outcome = await plan_for(acts, ticket_id, playbook, user)
    assert outcome.plan is None
    if PLAYBOOKS[playbook].risk is RiskTier.READ_ONLY:
        assert "read-only" in outcome.reason
    else:
        assert outcome.reason.startswith(f"nothing to fix for {user}"), outcome.reason


async def test_no_plan_without_a_known_playbook_and_account(
    acts: PlaybookActivities, ticket_id: uuid.UUID, db: asyncpg.Connection[Any]
) -> None:
    cases = [
        ("self_destruct", "u-locked", "unknown playbook 'self_destruct'"),
        ("auth_login", None, "the ticket names no account"),
        ("auth_login", "  ", "the ticket names no account"),
        ("auth_login", "u-nobody", "unknown account 'u-nobody'"),
    ]
    for playbook, account, reason in cases:
        outcome = await plan_for(acts, ticket_id, playbook, account)
        assert outcome.plan is None
        assert outcome.reason.startswith(reason), outcome.reason
    assert (await audit_actions(db, ticket_id)).count("playbook.not_planned") == len(cases)


async def test_billing_access_is_not_restored_until_billing_is_live(
    acts: PlaybookActivities, ticket_id: uuid.UUID
) -> None:
    outcome = await plan_for(acts, ticket_id, "billing_invoice", "u-gym-billing")
    assert outcome.plan is None
    assert "billing_live" in outcome.reason


async def test_a_post_hidden_by_a_person_is_left_to_staff(
    acts: PlaybookActivities, ticket_id: uuid.UUID, db: asyncpg.Connection[Any]
) -> None:
    await db.execute(
        "INSERT INTO kruxt_app.moderation_actions (id, post_id, action, actor, reason, created_at) "
        "VALUES ('ma-human', 'p-hidden', 'hide', 'mod:alex', 'spam confirmed', now())"
    )
    outcome = await plan_for(acts, ticket_id, "feed_moderation", "u-post-author")
    assert outcome.plan is None
    assert "p-hidden hidden by a moderator" in outcome.reason


# -- refusals and failures -----------------------------------------------------------------------


async def test_a_precondition_that_no_longer_holds_refuses_the_plan(
    acts: PlaybookActivities, app: KruxtApp, db: asyncpg.Connection[Any], ticket_id: uuid.UUID
) -> None:
    outcome = await plan_for(acts, ticket_id, "auth_login", "u-locked")
    assert outcome.plan is not None
    # Someone unlocks the account between approval and execution.
    await app.unlock_account(idempotency_key="support-console-1", user_id="u-locked")
    before = await dump(db, *APP_TABLES)
    check = await act(
        acts.check_preconditions, PreconditionCheck(ticket_id=ticket_id, plan=outcome.plan)
    )
    assert not check.ok
    assert check.failures == [
        "account_still_locked: the account u-locked is no longer locked (unlocked meanwhile, "
        "or it expired)"
    ]
    assert await dump(db, *APP_TABLES) == before
    entries = await audit.entries_for_ticket(db, ticket_id)
    refused = [e for e in entries if e.action == "playbook.refused"]
    assert len(refused) == 1
    assert refused[0].details["failures"] == check.failures
    assert refused[0].details["plan_id"] == str(outcome.plan.plan_id)


async def test_a_waitlist_that_changed_since_the_plan_is_refused(
    acts: PlaybookActivities, db: asyncpg.Connection[Any], ticket_id: uuid.UUID
) -> None:
    outcome = await plan_for(acts, ticket_id, "class_booking_waitlist", "u-waitlist")
    assert outcome.plan is not None
    # Another member joins the waitlist: the approved preview is no longer what would happen.
    await db.execute(
        "INSERT INTO kruxt_app.class_bookings (id, class_id, user_id, status, waitlist_position) "
        "VALUES ('cb-late', 'c-hiit-0700', 'u-deletion', 'waitlisted', 3)"
    )
    check = await act(
        acts.check_preconditions, PreconditionCheck(ticket_id=ticket_id, plan=outcome.plan)
    )
    assert not check.ok
    assert len(check.failures) == 1
    assert "changed since the plan was made" in check.failures[0]


async def test_a_plan_missing_its_preconditions_is_refused(
    acts: PlaybookActivities, ticket_id: uuid.UUID
) -> None:
    outcome = await plan_for(acts, ticket_id, "auth_login", "u-locked")
    assert outcome.plan is not None
    stripped = outcome.plan.model_copy(update={"preconditions": []})
    check = await act(
        acts.check_preconditions, PreconditionCheck(ticket_id=ticket_id, plan=stripped)
    )
    assert not check.ok
    assert check.failures == ["s1: the plan lacks its precondition account_still_locked"]


async def test_an_unknown_action_is_refused_non_retryably(
    acts: PlaybookActivities, db: asyncpg.Connection[Any], ticket_id: uuid.UUID
) -> None:
    before = await dump(db, *APP_TABLES)
    run = StepRun(
        ticket_id=ticket_id,
        plan_id=uuid.uuid4(),
        run_id=uuid.uuid4(),
        step=PlannedStep(
            step_id="s1",
            action="drop_all_tables",
            target={"user_id": "u-locked"},
            description="anything",
        ),
    )
    with pytest.raises(ApplicationError) as info:
        await act(acts.run_step, run)
    assert info.value.type == "UnknownAction"
    assert info.value.non_retryable
    assert await dump(db, *APP_TABLES) == before
    assert "playbook.refused" in await audit_actions(db, ticket_id)


async def test_an_app_refusal_fails_the_step_non_retryably(
    acts: PlaybookActivities,
    store: PlaybookRunStore,
    db: asyncpg.Connection[Any],
    ticket_id: uuid.UUID,
) -> None:
    await db.execute(BILLING_LIVE)
    outcome = await plan_for(acts, ticket_id, "billing_invoice", "u-gym-billing")
    assert outcome.plan is not None
    # Billing goes back to not live after the approval (and the check is skipped here).
    await db.execute(
        "UPDATE kruxt_app.feature_flags SET enabled = false WHERE name = 'billing_live'"
    )
    before = await dump(db, *APP_TABLES)
    run_id = await start_run(acts, ticket_id, outcome.plan)
    (run,) = step_runs(ticket_id, run_id, outcome.plan)
    with pytest.raises(ApplicationError) as info:
        await act(acts.run_step, run)
    assert info.value.type == "AppRefused"
    assert info.value.non_retryable
    assert "billing_live is off" in str(info.value)
    # The saga compensates the failed step too: nothing was applied, so that is a no-op.
    assert (await act(acts.compensate_step, run)).noop
    assert await dump(db, *APP_TABLES) == before
    view = await store.get_run(run_id)
    assert view is not None
    (step,) = view.steps
    assert step.status is StepStatus.FAILED
    assert step.compensation_status is CompensationStatus.NOOP
    assert step.error is not None
    assert "billing_live is off" in step.error
    actions = await audit_actions(db, ticket_id)
    assert "playbook.step_failed" in actions
    assert "playbook.step_compensated" in actions


async def test_an_unknown_target_fails_the_step_non_retryably(
    acts: PlaybookActivities, ticket_id: uuid.UUID
) -> None:
    outcome = await plan_for(acts, ticket_id, "feed_moderation", "u-post-author")
    assert outcome.plan is not None
    plan = outcome.plan
    step = plan.steps[0].model_copy(update={"target": {"user_id": "u-x", "post_id": "p-gone"}})
    run_id = await start_run(acts, ticket_id, plan)
    run = StepRun(ticket_id=ticket_id, plan_id=plan.plan_id, run_id=run_id, step=step)
    with pytest.raises(ApplicationError) as info:
        await act(acts.run_step, run)
    assert info.value.type == "AppEntityNotFound"
    assert info.value.non_retryable


async def test_run_records_follow_the_run(
    acts: PlaybookActivities,
    store: PlaybookRunStore,
    db: asyncpg.Connection[Any],
    ticket_id: uuid.UUID,
) -> None:
    outcome = await plan_for(acts, ticket_id, "auth_login", "u-locked")
    assert outcome.plan is not None
    run_id = uuid.uuid4()
    for status in (RunStatus.RUNNING, RunStatus.SUCCEEDED, RunStatus.ROLLED_BACK):
        record = RunRecord(
            ticket_id=ticket_id,
            run_id=run_id,
            plan=outcome.plan,
            status=status,
            approved_by="ops@kruxt.app",
            reason=f"now {status.value}",
        )
        await act(acts.record_run, record, activity_id=f"rec-{status.value}")
        await act(acts.record_run, record, activity_id=f"rec-{status.value}")  # a retry
    view = await store.get_run(run_id)
    assert view is not None
    assert view.status is RunStatus.ROLLED_BACK
    assert view.reason == "now rolled_back"
    assert view.playbook == "auth_login"
    actions = await audit_actions(db, ticket_id)
    for name in ("running", "succeeded", "rolled_back"):
        assert actions.count(f"playbook.run_{name}") == 1
    assert await store.get_run(uuid.uuid4()) is None


async def test_revoke_sessions_needs_an_admin_and_has_no_undo(
    acts: PlaybookActivities,
    store: PlaybookRunStore,
    db: asyncpg.Connection[Any],
    app: KruxtApp,
    ticket_id: uuid.UUID,
) -> None:
    """Never proposed from the diagnosis; registered for a person's plan."""
    declaration = auth_login.DECLARATION
    diagnosis = await declaration.diagnose(app, "u-locked")
    assert all(p.action != "revoke_sessions" for p in declaration.propose(diagnosis))
    plan = build_plan(
        declaration,
        ticket_id=ticket_id,
        plan_id=uuid.uuid4(),
        diagnosis=diagnosis,
        proposals=[
            Proposal(
                action="revoke_sessions",
                target={"user_id": "u-locked"},
                problem="a sign-in from an unknown device was reported",
                before={
                    "user_id": "u-locked",
                    "sessions": [{"id": "s-locked-iphone"}, {"id": "s-locked-web"}],
                },
                after={
                    "user_id": "u-locked",
                    "sessions": [
                        {"id": "s-locked-iphone", "revoked_at": RUN_TIME},
                        {"id": "s-locked-web", "revoked_at": RUN_TIME},
                    ],
                },
            )
        ],
        account={"user_id": "u-locked", "name": "Lena Locked"},
    )
    assert plan.approver_role is ApproverRole.ADMIN
    assert "Cannot be undone: a revoked session cannot be revived" in plan.plain_explanation
    run_id = await start_run(acts, ticket_id, plan)
    (run,) = step_runs(ticket_id, run_id, plan)
    result = await act(acts.run_step, run)
    assert matches_preview(run.step.preview["after"], result.after)
    undone = await act(acts.compensate_step, run)
    assert undone.noop
    active = await db.fetchval(
        "SELECT count(*) FROM kruxt_app.sessions WHERE user_id = 'u-locked' AND revoked_at IS NULL"
    )
    assert active == 0
    view = await store.get_run(run_id)
    assert view is not None
    assert view.steps[0].status is StepStatus.APPLIED
    assert view.steps[0].compensation_status is CompensationStatus.NONE


# -- texts ---------------------------------------------------------------------------------------


async def test_texts_say_nothing_the_steps_do_not_do(
    acts: PlaybookActivities, ticket_id: uuid.UUID
) -> None:
    unlock = (await plan_for(acts, ticket_id, "auth_login", "u-locked")).plan
    assert unlock is not None
    assert [s.action for s in unlock.steps] == ["unlock_account"]
    for name, text in texts(unlock).items():
        for word in ("revoke", "verification", "session", "sign out"):
            assert word not in text.lower(), f"{name} text mentions {word!r}"
    assert "locked until" in unlock.plain_explanation
    assert "7 failed sign-ins" in unlock.plain_explanation

    resend = (await plan_for(acts, ticket_id, "auth_login", "u-unverified")).plan
    assert resend is not None
    for name, text in texts(resend).items():
        for word in ("unlock", "revoke", "re-lock"):
            assert word not in text.lower(), f"{name} text mentions {word!r}"
    assert "Nothing to undo" in resend.plain_explanation

    workouts = (await plan_for(acts, ticket_id, "workout_log_submit", "u-workout-fail")).plan
    assert workouts is not None
    for name, text in texts(workouts).items():
        # The submission that cannot be replayed is not part of the plan.
        assert "ws-fail-badtime" not in text, name
        assert "Leg Day" not in text, name
    assert "Push Day A" in workouts.customer_update
    assert "Easy 5k" in workouts.customer_update

    feed = (await plan_for(acts, ticket_id, "feed_moderation", "u-post-author")).plan
    assert feed is not None
    assert "Never changed: blocks between users" in feed.technical_explanation


# -- the registry --------------------------------------------------------------------------------


def test_the_registry_covers_the_catalog() -> None:
    assert set(PLAYBOOKS) == set(PLAYBOOK_IDS)
    for entry in CATALOG.values():
        declaration = PLAYBOOKS[entry.playbook]
        assert declaration.category is entry.category
        assert declaration.risk is entry.risk
    for name, action in ACTIONS.items():
        assert action.compensation is None or COMPENSATIONS[action.compensation].undoes == name
        assert all(check in CHECKS for check in action.requires)
        assert OWNER[name] in PLAYBOOKS
    roles = {
        "feed_moderation": ApproverRole.MODERATOR,
        "billing_invoice": ApproverRole.ADMIN,
        "privacy_request_status": ApproverRole.STAFF,
    }
    for playbook, role in roles.items():
        assert PLAYBOOKS[playbook].approver_role is role
        assert all(a.approver_role is role for a in PLAYBOOKS[playbook].actions)
    assert ACTIONS["revoke_sessions"].approver_role is ApproverRole.ADMIN
    assert ACTIONS["revoke_sessions"].compensation is None
    assert ACTIONS["resend_verification"].compensation is None
    assert ACTIONS["resend_invoice"].compensation is None
    expected = {
        "auth_login": {"unlock_account", "resend_verification", "revoke_sessions"},
        "workout_log_submit": {"replay_submission"},
        "feed_moderation": {"restore_post_visibility"},
        "class_booking_waitlist": {"repair_waitlist"},
        "integration_sync": {"reset_sync_cursor", "mark_reauth_required"},
        "privacy_request_status": set(),
        "billing_invoice": {"resend_invoice", "restore_billing_access"},
    }
    assert {p: {a.name for a in d.actions} for p, d in PLAYBOOKS.items()} == expected


class RecordingApp:
    """Stands in for KruxtApp: records which function was called with what."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str]]] = []

    async def call(self, function: str, idempotency_key: str, /, **args: str) -> ChangeResult:
        self.calls.append((function, {"idempotency_key": idempotency_key, **args}))
        return ChangeResult()


async def test_each_action_calls_exactly_its_declared_function_and_arguments() -> None:
    """What the technical text shows (function, args) is what the call sends."""
    for name, action in ACTIONS.items():
        fake = RecordingApp()
        target = {arg: f"v-{arg}" for arg in action.args} | {"unrelated": "x"}
        await action.call(cast(KruxtApp, fake), "key-1", target)
        assert fake.calls == [
            (name, {"idempotency_key": "key-1", **{a: f"v-{a}" for a in action.args}})
        ]
    for name, comp in COMPENSATIONS.items():
        fake = RecordingApp()
        await comp.call(cast(KruxtApp, fake), "key-1:undo", "key-1")
        assert fake.calls == [(name, {"idempotency_key": "key-1:undo", "original_key": "key-1"})]


def test_matches_preview() -> None:
    assert matches_preview({"a": 1}, {"a": 1, "b": 2})
    assert not matches_preview({"a": 1, "c": 3}, {"a": 1})
    assert matches_preview([{"id": "x"}], [{"id": "x", "n": 1}])
    assert not matches_preview([{"id": "x"}], [{"id": "x"}, {"id": "y"}])
    assert matches_preview({"t": RUN_TIME}, {"t": "2025-01-01"})
    assert not matches_preview({"t": RUN_TIME}, {"t": None})
    assert not matches_preview({"a": None}, {"a": 0})
    assert not matches_preview({"a": False}, {"a": 0})
    assert when("2025-06-01T16:32:10.5+02:00") == "2025-06-01 14:32 UTC"
    assert when(None) == "never"


async def test_undoing_a_step_that_never_ran_is_a_noop(
    acts: PlaybookActivities,
    store: PlaybookRunStore,
    db: asyncpg.Connection[Any],
    ticket_id: uuid.UUID,
) -> None:
    """The saga registers a compensation before its step runs; undoing it then changes nothing."""
    outcome = await plan_for(acts, ticket_id, "workout_log_submit", "u-workout-fail")
    assert outcome.plan is not None
    before = await dump(db, *APP_TABLES)
    run_id = await start_run(acts, ticket_id, outcome.plan)
    for run in reversed(step_runs(ticket_id, run_id, outcome.plan)):
        undone = await act(acts.compensate_step, run)
        assert undone.noop
        assert (undone.before, undone.after) == (None, None)
    assert await dump(db, *APP_TABLES) == before
    view = await store.get_run(run_id)
    assert view is not None
    assert view.steps == []
    actions = await audit_actions(db, ticket_id)
    assert actions.count("playbook.step_compensated") == len(outcome.plan.steps)


# -- the lookups of sql/app/004_playbook_lookups.sql ---------------------------------------------


async def test_lookups_find_the_accounts_targets(
    app: KruxtApp, db: asyncpg.Connection[Any]
) -> None:
    before = await dump(db, *APP_TABLES)
    hidden = await app.user_hidden_posts(user_id="u-post-author")
    assert [p["id"] for p in hidden["posts"]] == ["p-hidden"]
    assert (await app.user_hidden_posts(user_id="u-healthy"))["posts"] == []
    bookings = await app.user_class_bookings(user_id="u-healthy-gym")
    assert [(b["class_id"], b["status"]) for b in bookings["bookings"]] == [
        ("c-yoga-1800", "booked"),
        ("c-hiit-0700", "booked"),
    ]
    waitlisted = await app.user_class_bookings(user_id="u-waitlist")
    assert [(b["class_id"], b["waitlist_position"]) for b in waitlisted["bookings"]] == [
        ("c-hiit-0700", 5)
    ]
    # Cancelled bookings are not the account's classes.
    assert (await app.user_class_bookings(user_id="u-export"))["bookings"] == []
    with pytest.raises(AppEntityNotFound, match=r"^user u-nope not found$"):
        await app.user_hidden_posts(user_id="u-nope")
    with pytest.raises(AppEntityNotFound, match=r"^user u-nope not found$"):
        await app.user_class_bookings(user_id="u-nope")
    assert await dump(db, *APP_TABLES) == before


async def test_lookups_are_for_the_support_role_only(db: asyncpg.Connection[Any]) -> None:
    for function in ("user_hidden_posts(text)", "user_class_bookings(text)"):
        signature = f"kruxt_admin.{function}"
        assert not await db.fetchval(
            "SELECT has_function_privilege('public', $1, 'EXECUTE')", signature
        )
        assert await db.fetchval(
            "SELECT has_function_privilege('kruxt_support_worker', $1, 'EXECUTE')", signature
        )
        assert await db.fetchval(
            "SELECT prosecdef FROM pg_proc WHERE oid = $1::regprocedure", signature
        )
    await db.execute("SET ROLE kruxt_support_worker")
    try:
        posts = await db.fetchval("SELECT kruxt_admin.user_hidden_posts('u-post-author')")
    finally:
        await db.execute("RESET ROLE")
    assert [p["id"] for p in posts["posts"]] == ["p-hidden"]


async def test_without_an_app_nothing_is_planned_or_run(
    store: PlaybookRunStore, ticket_id: uuid.UUID
) -> None:
    acts = PlaybookActivities(None, store)
    outcome = await plan_for(acts, ticket_id, "auth_login", "u-locked")
    assert outcome.plan is None
    assert "no KRUXT app database is configured" in outcome.reason
    run = StepRun(
        ticket_id=ticket_id,
        plan_id=uuid.uuid4(),
        run_id=uuid.uuid4(),
        step=PlannedStep(
            step_id="s1",
            action="unlock_account",
            target={"user_id": "u-locked"},
            description="unlock",
            compensation="relock_account",
        ),
    )
    with pytest.raises(ApplicationError) as info:
        await act(acts.run_step, run)
    assert info.value.type == "AppNotConfigured"
    assert info.value.non_retryable
