"""The reference KRUXT app schema and its kruxt_admin RPC surface, on a real PostgreSQL.

Every mutating function: its before image is the prior state, its after image the new state;
the same key again applies nothing; its compensation puts the data back exactly (full row
dumps compared), is itself idempotent and is a noop when there is nothing to undo.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from kruxt.adapters.app_db import (
    APP_MIGRATIONS,
    AppEntityNotFound,
    AppRefused,
    ChangeResult,
    KruxtApp,
    install_app_schema,
)
from kruxt.adapters.embedded_postgres import with_database
from kruxt.adapters.postgres import migrations
from kruxt.adapters.postgres.pool import connect, create_pool
from tests.conftest import MIGRATIONS
from tests.support import connection, install_demo_app, scratch_database

Dump = dict[str, list[dict[str, Any]]]

APP_TABLES = (
    "users",
    "sessions",
    "outbox_emails",
    "workout_submissions",
    "workouts",
    "feed_posts",
    "post_reports",
    "moderation_actions",
    "user_blocks",
    "classes",
    "class_bookings",
    "integration_connections",
    "sync_jobs",
    "privacy_requests",
    "invoices",
    "invoice_deliveries",
    "billing_access",
    "feature_flags",
)


@pytest.fixture
async def app_dsn(pg_admin_dsn: str) -> AsyncIterator[str]:
    """A fresh database with the app schema and the demo data installed."""
    async with scratch_database(pg_admin_dsn, f"kruxt_app_{uuid.uuid4().hex[:12]}") as dsn:
        await install_demo_app(dsn)
        yield dsn


@pytest.fixture
async def db(app_dsn: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    """A superuser connection for setup and full row dumps (what the worker cannot do)."""
    async with connection(app_dsn) as conn:
        yield conn


@pytest.fixture
async def app(app_dsn: str) -> AsyncIterator[KruxtApp]:
    pool = await create_pool(app_dsn, max_size=6)
    try:
        yield KruxtApp(pool)
    finally:
        await pool.close()


async def dump(conn: asyncpg.Connection[Any], *tables: str) -> Dump:
    """Every row of each table, as JSON, in a stable order."""
    out: Dump = {}
    for table in tables:
        rows = await conn.fetch(
            f"SELECT to_jsonb(t) AS r FROM kruxt_app.{table} t ORDER BY to_jsonb(t)::text"
        )
        out[table] = [row["r"] for row in rows]
    return out


def row(d: Dump, table: str, key: str, value: Any) -> dict[str, Any]:
    (found,) = [r for r in d[table] if r[key] == value]
    return found


async def current(conn: asyncpg.Connection[Any], table: str, key: str, value: Any) -> Any:
    return await conn.fetchval(
        f"SELECT to_jsonb(t) FROM kruxt_app.{table} t WHERE t.{key} = $1", value
    )


async def changes(conn: asyncpg.Connection[Any]) -> int:
    n: int = await conn.fetchval("SELECT count(*) FROM kruxt_admin.applied_changes")
    return n


def pick(r: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: r[k] for k in keys}


async def bookings(conn: asyncpg.Connection[Any], class_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT to_jsonb(b) AS r FROM kruxt_app.class_bookings b WHERE class_id = $1 "
        "ORDER BY created_at, id",
        class_id,
    )
    return [r["r"] for r in rows]


# -- the mutating functions with a compensation -----------------------------------------------

Images = Callable[["asyncpg.Connection[Any]", Dump, ChangeResult], Awaitable[None]]


@dataclass(frozen=True)
class Case:
    forward: str
    kwargs: dict[str, str]
    compensation: str
    tables: tuple[str, ...]
    check: Images
    setup: str | None = None

    def __str__(self) -> str:
        return self.forward


async def _unlock(conn: asyncpg.Connection[Any], before: Dump, r: ChangeResult) -> None:
    prior = row(before, "users", "id", "u-locked")
    assert prior["locked_until"] is not None
    assert prior["failed_logins"] == 7
    assert r.before == {"user_id": "u-locked", **pick(prior, "locked_until", "failed_logins")}
    now = await current(conn, "users", "id", "u-locked")
    assert r.after == {"user_id": "u-locked", **pick(now, "locked_until", "failed_logins")}
    assert now["locked_until"] is None
    assert now["failed_logins"] == 0


async def _replay(conn: asyncpg.Connection[Any], before: Dump, r: ChangeResult) -> None:
    prior = row(before, "workout_submissions", "id", "ws-fail-timeout")
    assert prior["status"] == "failed"
    assert r.before == {"submission": prior}
    sub = await current(conn, "workout_submissions", "id", "ws-fail-timeout")
    workout = await current(conn, "workouts", "submission_id", "ws-fail-timeout")
    assert r.after == {"submission": sub, "workout": workout}
    assert sub["status"] == "accepted"
    assert sub["error"] is None
    assert sub["workout_id"] == workout["id"]
    assert workout["title"] == "Push Day A"
    assert workout["data"] == prior["payload"]
    assert workout["user_id"] == "u-workout-fail"


async def _restore_post(conn: asyncpg.Connection[Any], before: Dump, r: ChangeResult) -> None:
    prior = row(before, "feed_posts", "id", "p-hidden")
    assert prior["visibility"] == "hidden"
    assert r.before == {"post": prior}
    post = await current(conn, "feed_posts", "id", "p-hidden")
    action = await current(conn, "moderation_actions", "id", r.after["moderation_action"]["id"])
    assert r.after == {"post": post, "moderation_action": action}
    assert post["visibility"] == "visible"
    assert post["hidden_reason"] is None
    assert action["action"] == "restore"
    # The users' own blocks and the report itself are untouched.
    after = await dump(conn, "user_blocks", "post_reports")
    assert after == {k: before[k] for k in ("user_blocks", "post_reports")}


async def _repair(conn: asyncpg.Connection[Any], before: Dump, r: ChangeResult) -> None:
    prior = sorted(
        (b for b in before["class_bookings"] if b["class_id"] == "c-hiit-0700"),
        key=lambda b: (b["created_at"], b["id"]),
    )
    assert r.before == {"class_id": "c-hiit-0700", "capacity": 5, "bookings": prior}
    now = await bookings(conn, "c-hiit-0700")
    assert r.after == {"class_id": "c-hiit-0700", "capacity": 5, "bookings": now}
    state = {b["id"]: (b["status"], b["waitlist_position"]) for b in now}
    assert state == {
        "cb-hiit-healthy": ("booked", None),
        "cb-hiit-healthy-gym": ("booked", None),
        "cb-hiit-gym-billing": ("booked", None),
        "cb-hiit-export": ("cancelled", None),
        # The two oldest waitlisted fill the two free seats; the rest are renumbered 1..n.
        "cb-hiit-waitlist": ("booked", None),
        "cb-hiit-locked": ("booked", None),
        "cb-hiit-apple": ("waitlisted", 1),
        "cb-hiit-garmin": ("waitlisted", 2),
    }


async def _reset_cursor(conn: asyncpg.Connection[Any], before: Dump, r: ChangeResult) -> None:
    prior = row(before, "integration_connections", "id", "conn-apple-stale")
    assert prior["sync_cursor"] is not None
    assert r.before == {"connection": prior}
    connection = await current(conn, "integration_connections", "id", "conn-apple-stale")
    job = await current(conn, "sync_jobs", "id", r.after["sync_job"]["id"])
    assert r.after == {"connection": connection, "sync_job": job}
    assert connection["sync_cursor"] is None
    assert {k: v for k, v in connection.items() if k != "sync_cursor"} == {
        k: v for k, v in prior.items() if k != "sync_cursor"
    }
    assert job["status"] == "queued"
    assert job["connection_id"] == "conn-apple-stale"


async def _reauth(conn: asyncpg.Connection[Any], before: Dump, r: ChangeResult) -> None:
    prior = row(before, "integration_connections", "id", "conn-garmin-expired")
    assert r.before == {"connection": prior}
    connection = await current(conn, "integration_connections", "id", "conn-garmin-expired")
    assert r.after == {"connection": connection}
    assert connection["reauth_required"] is True
    assert connection["status"] == "reauth_required"


def _billing(user_id: str, had_row: bool) -> Images:
    async def check(conn: asyncpg.Connection[Any], before: Dump, r: ChangeResult) -> None:
        prior = [b for b in before["billing_access"] if b["user_id"] == user_id]
        assert bool(prior) is had_row
        assert r.before == {"user_id": user_id, "billing_access": prior[0] if prior else None}
        access = await current(conn, "billing_access", "user_id", user_id)
        assert r.after == {"user_id": user_id, "billing_access": access}
        assert access["enabled"] is True

    return check


BILLING_LIVE = "UPDATE kruxt_app.feature_flags SET enabled = true WHERE name = 'billing_live'"

CASES = [
    Case("unlock_account", {"user_id": "u-locked"}, "relock_account", ("users",), _unlock),
    Case(
        "replay_submission",
        {"submission_id": "ws-fail-timeout"},
        "delete_replayed_workout",
        ("workout_submissions", "workouts"),
        _replay,
    ),
    Case(
        "restore_post_visibility",
        {"post_id": "p-hidden"},
        "hide_post_again",
        ("feed_posts", "moderation_actions", "post_reports", "user_blocks"),
        _restore_post,
    ),
    Case(
        "repair_waitlist",
        {"class_id": "c-hiit-0700"},
        "restore_waitlist",
        ("class_bookings", "classes"),
        _repair,
    ),
    Case(
        "reset_sync_cursor",
        {"connection_id": "conn-apple-stale"},
        "restore_sync_cursor",
        ("integration_connections", "sync_jobs"),
        _reset_cursor,
    ),
    Case(
        "mark_reauth_required",
        {"connection_id": "conn-garmin-expired"},
        "clear_reauth_required",
        ("integration_connections",),
        _reauth,
    ),
    Case(
        "restore_billing_access",
        {"user_id": "u-gym-billing"},
        "revoke_billing_access",
        ("billing_access",),
        _billing("u-gym-billing", had_row=True),
        setup=BILLING_LIVE,
    ),
    # A user who never had a billing access row: the compensation removes the new one.
    Case(
        "restore_billing_access",
        {"user_id": "u-healthy"},
        "revoke_billing_access",
        ("billing_access",),
        _billing("u-healthy", had_row=False),
        setup=BILLING_LIVE,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.forward}-{i}" for i, c in enumerate(CASES)])
async def test_change_replay_and_compensation(
    case: Case, app: KruxtApp, db: asyncpg.Connection[Any]
) -> None:
    if case.setup:
        await db.execute(case.setup)
    forward = getattr(app, case.forward)
    compensate = getattr(app, case.compensation)
    everything_before = await dump(db, *APP_TABLES)
    before = {t: everything_before[t] for t in case.tables}

    # Apply: the images describe the prior and the new state.
    result: ChangeResult = await forward(idempotency_key="k-fwd", **case.kwargs)
    assert not result.replayed
    assert not result.noop
    await case.check(db, before, result)
    applied = await dump(db, *APP_TABLES)
    touched = {t for t in APP_TABLES if applied[t] != everything_before[t]}
    assert touched
    assert touched <= set(case.tables)
    assert "user_blocks" not in touched
    assert "privacy_requests" not in touched
    assert await changes(db) == 1

    # The same key again: the stored result, nothing applied twice.
    again: ChangeResult = await forward(idempotency_key="k-fwd", **case.kwargs)
    assert again.replayed
    assert (again.before, again.after) == (result.before, result.after)
    assert await dump(db, *APP_TABLES) == applied
    assert await changes(db) == 1

    # Compensate: every app table exactly as before the change.
    undone: ChangeResult = await compensate(idempotency_key="k-undo", original_key="k-fwd")
    assert not undone.noop
    assert not undone.replayed
    assert await dump(db, *APP_TABLES) == everything_before
    assert undone.before is not None
    assert undone.after is not None
    compensated = await db.fetchrow(
        "SELECT compensated_at, compensated_by FROM kruxt_admin.applied_changes "
        "WHERE idempotency_key = 'k-fwd'"
    )
    assert compensated is not None
    assert compensated["compensated_by"] == "k-undo"
    assert compensated["compensated_at"] is not None

    # The compensation again, with its own key: replayed; with another key: a noop.
    replayed: ChangeResult = await compensate(idempotency_key="k-undo", original_key="k-fwd")
    assert replayed.replayed
    assert (replayed.before, replayed.after) == (undone.before, undone.after)
    twice: ChangeResult = await compensate(idempotency_key="k-undo-2", original_key="k-fwd")
    assert twice.noop
    assert twice.reason is not None
    assert "already compensated" in twice.reason
    unknown: ChangeResult = await compensate(idempotency_key="k-undo-3", original_key="k-nope")
    assert unknown.noop
    assert unknown.reason is not None
    assert "k-nope" in unknown.reason
    # The forward key once more, after the undo: still the stored result, not a new change.
    late: ChangeResult = await forward(idempotency_key="k-fwd", **case.kwargs)
    assert late.replayed
    assert await dump(db, *APP_TABLES) == everything_before
    assert await changes(db) == 2


async def test_a_compensation_refuses_a_key_of_another_function(app: KruxtApp) -> None:
    await app.unlock_account(idempotency_key="k-unlock", user_id="u-locked")
    with pytest.raises(AppRefused, match="k-unlock belongs to unlock_account"):
        await app.restore_waitlist(idempotency_key="k-undo", original_key="k-unlock")


# -- the mutating functions without a compensation ---------------------------------------------


async def test_resend_verification(app: KruxtApp, db: asyncpg.Connection[Any]) -> None:
    before = await dump(db, *APP_TABLES)
    r = await app.resend_verification(idempotency_key="k-verify", user_id="u-unverified")
    assert not r.replayed
    assert r.before == {"user_id": "u-unverified", "email_verified": False}
    mail = await current(db, "outbox_emails", "user_id", "u-unverified")
    assert r.after == {"user_id": "u-unverified", "email_verified": False, "outbox_email": mail}
    assert mail["to_email"] == "umar.unverified@example.com"
    assert mail["template"] == "verify_email"
    applied = await dump(db, *APP_TABLES)
    assert {t: v for t, v in applied.items() if t != "outbox_emails"} == {
        t: v for t, v in before.items() if t != "outbox_emails"
    }

    again = await app.resend_verification(idempotency_key="k-verify", user_id="u-unverified")
    assert again.replayed
    assert (again.before, again.after) == (r.before, r.after)
    assert await dump(db, *APP_TABLES) == applied
    assert await db.fetchval("SELECT count(*) FROM kruxt_app.outbox_emails") == 1


async def test_revoke_sessions(app: KruxtApp, db: asyncpg.Connection[Any]) -> None:
    before = await dump(db, "sessions")
    active = sorted(
        (s for s in before["sessions"] if s["user_id"] == "u-locked" and s["revoked_at"] is None),
        key=lambda s: (s["created_at"], s["id"]),
    )
    assert len(active) == 2
    r = await app.revoke_sessions(idempotency_key="k-revoke", user_id="u-locked")
    assert r.before == {"user_id": "u-locked", "sessions": active}
    now = [await current(db, "sessions", "id", s["id"]) for s in active]
    assert r.after == {"user_id": "u-locked", "sessions": now}
    assert all(s["revoked_at"] is not None for s in now)
    # Other users' sessions and the user's already revoked one are untouched.
    others = [s for s in before["sessions"] if s["id"] not in {a["id"] for a in active}]
    applied = await dump(db, "sessions")
    assert [s for s in applied["sessions"] if s["id"] not in {a["id"] for a in active}] == others

    again = await app.revoke_sessions(idempotency_key="k-revoke", user_id="u-locked")
    assert again.replayed
    assert (again.before, again.after) == (r.before, r.after)
    assert await dump(db, "sessions") == applied


async def test_resend_invoice(app: KruxtApp, db: asyncpg.Connection[Any]) -> None:
    before = await dump(db, *APP_TABLES)
    prior = row(before, "invoices", "id", "inv-bounced")
    r = await app.resend_invoice(idempotency_key="k-invoice", invoice_id="inv-bounced")
    assert r.before == {"invoice": prior}
    delivery = await current(db, "invoice_deliveries", "id", r.after["delivery"]["id"])
    assert r.after == {"invoice": prior, "delivery": delivery}
    assert delivery["invoice_id"] == "inv-bounced"
    applied = await dump(db, *APP_TABLES)
    assert len(applied["invoice_deliveries"]) == len(before["invoice_deliveries"]) + 1
    assert {t: v for t, v in applied.items() if t != "invoice_deliveries"} == {
        t: v for t, v in before.items() if t != "invoice_deliveries"
    }

    again = await app.resend_invoice(idempotency_key="k-invoice", invoice_id="inv-bounced")
    assert again.replayed
    assert await dump(db, *APP_TABLES) == applied


async def test_concurrent_calls_with_one_key_apply_once(
    app: KruxtApp, db: asyncpg.Connection[Any]
) -> None:
    results = await asyncio.gather(
        *(
            app.resend_verification(idempotency_key="k-race", user_id="u-unverified")
            for _ in range(5)
        )
    )
    assert sorted(r.replayed for r in results) == [False, True, True, True, True]
    assert await db.fetchval("SELECT count(*) FROM kruxt_app.outbox_emails") == 1


async def test_a_key_reused_with_other_arguments_is_refused(
    app: KruxtApp, db: asyncpg.Connection[Any]
) -> None:
    await app.unlock_account(idempotency_key="k-1", user_id="u-locked")
    with pytest.raises(AppRefused, match="k-1 was already used for unlock_account"):
        await app.unlock_account(idempotency_key="k-1", user_id="u-healthy")
    with pytest.raises(AppRefused, match="k-1 was already used for unlock_account"):
        await app.revoke_sessions(idempotency_key="k-1", user_id="u-locked")
    with pytest.raises(AppRefused, match="idempotency key is required"):
        await app.unlock_account(idempotency_key="", user_id="u-locked")
    assert await changes(db) == 1


# -- bad input ---------------------------------------------------------------------------------

NOT_FOUND = [
    ("unlock_account", {"user_id": "u-nope"}, "user u-nope", "users"),
    ("resend_verification", {"user_id": "u-nope"}, "user u-nope", "users"),
    ("revoke_sessions", {"user_id": "u-nope"}, "user u-nope", "users"),
    (
        "replay_submission",
        {"submission_id": "ws-nope"},
        "workout submission ws-nope",
        "workout_submissions",
    ),
    ("restore_post_visibility", {"post_id": "p-nope"}, "post p-nope", "feed_posts"),
    ("repair_waitlist", {"class_id": "c-nope"}, "class c-nope", "classes"),
    (
        "reset_sync_cursor",
        {"connection_id": "conn-nope"},
        "integration connection conn-nope",
        "integration_connections",
    ),
    (
        "mark_reauth_required",
        {"connection_id": "conn-nope"},
        "integration connection conn-nope",
        "integration_connections",
    ),
    ("resend_invoice", {"invoice_id": "inv-nope"}, "invoice inv-nope", "invoices"),
    ("restore_billing_access", {"user_id": "u-nope"}, "user u-nope", "users"),
]


@pytest.mark.parametrize(
    ("function", "kwargs", "named", "entity"), NOT_FOUND, ids=[c[0] for c in NOT_FOUND]
)
async def test_an_unknown_entity_is_not_found(
    function: str,
    kwargs: dict[str, str],
    named: str,
    entity: str,
    app: KruxtApp,
    db: asyncpg.Connection[Any],
) -> None:
    before = await dump(db, *APP_TABLES)
    with pytest.raises(AppEntityNotFound, match=f"^{re.escape(named)} not found$") as info:
        await getattr(app, function)(idempotency_key="k-bad", **kwargs)
    assert info.value.entity == entity
    assert await dump(db, *APP_TABLES) == before
    assert await changes(db) == 0


DIAGNOSES_NOT_FOUND = [
    ("diagnose_auth_login", {"user_id": "u-nope"}, "user u-nope"),
    ("diagnose_workout_log_submit", {"user_id": "u-nope"}, "user u-nope"),
    ("diagnose_feed_moderation", {"user_id": "u-nope", "post_id": "p-hidden"}, "user u-nope"),
    ("diagnose_feed_moderation", {"user_id": "u-post-author", "post_id": "p-x"}, "post p-x"),
    (
        "diagnose_class_booking_waitlist",
        {"user_id": "u-waitlist", "class_id": "c-x"},
        "class c-x",
    ),
    ("diagnose_integration_sync", {"user_id": "u-nope", "provider": "garmin"}, "user u-nope"),
    ("diagnose_privacy_request_status", {"user_id": "u-nope"}, "user u-nope"),
    ("diagnose_billing_invoice", {"user_id": "u-nope"}, "user u-nope"),
]


@pytest.mark.parametrize(
    ("function", "kwargs", "named"),
    DIAGNOSES_NOT_FOUND,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(DIAGNOSES_NOT_FOUND)],
)
async def test_a_diagnosis_of_an_unknown_entity_is_not_found(
    function: str, kwargs: dict[str, str], named: str, app: KruxtApp
) -> None:
    with pytest.raises(AppEntityNotFound, match=f"^{re.escape(named)} not found$"):
        await getattr(app, function)(**kwargs)


REFUSED = [
    ("resend_verification", {"user_id": "u-locked"}, "already verified"),
    ("replay_submission", {"submission_id": "ws-ok"}, "ws-ok is accepted, not failed"),
    ("replay_submission", {"submission_id": "ws-fail-badtime"}, "no valid performed_at"),
    ("restore_post_visibility", {"post_id": "p-visible"}, "p-visible is already visible"),
    ("resend_invoice", {"invoice_id": "inv-void"}, "KRX-2025-000120 is void"),
    ("restore_billing_access", {"user_id": "u-gym-billing"}, "billing_live is off"),
]


@pytest.mark.parametrize(
    ("function", "kwargs", "why"), REFUSED, ids=[f"{c[0]}-{i}" for i, c in enumerate(REFUSED)]
)
async def test_a_change_that_does_not_apply_is_refused(
    function: str, kwargs: dict[str, str], why: str, app: KruxtApp, db: asyncpg.Connection[Any]
) -> None:
    before = await dump(db, *APP_TABLES)
    with pytest.raises(AppRefused, match=re.escape(why)):
        await getattr(app, function)(idempotency_key="k-refused", **kwargs)
    assert await dump(db, *APP_TABLES) == before
    assert await changes(db) == 0


async def test_billing_restore_is_refused_until_billing_is_live(
    app: KruxtApp, db: asyncpg.Connection[Any]
) -> None:
    with pytest.raises(AppRefused, match="feature flag billing_live is off"):
        await app.restore_billing_access(idempotency_key="k-bill", user_id="u-gym-billing")
    diagnosis = await app.diagnose_billing_invoice(user_id="u-gym-billing")
    assert diagnosis["billing_live"] is False
    assert "billing_access_revoked" in diagnosis["findings"]
    await db.execute(BILLING_LIVE)
    r = await app.restore_billing_access(idempotency_key="k-bill", user_id="u-gym-billing")
    assert r.after["billing_access"]["enabled"] is True


# -- read-only functions -----------------------------------------------------------------------


async def test_account_context(app: KruxtApp) -> None:
    assert await app.account_context(user_id="u-nope") is None
    locked = await app.account_context(user_id="u-locked")
    assert locked is not None
    assert locked["locked"] is True
    assert locked["failed_logins"] == 7
    assert locked["active_sessions"] == 2
    assert locked["plan"] == "pro"
    assert locked["platform"] == "ios"
    workouts = await app.account_context(user_id="u-workout-fail")
    assert workouts is not None
    assert workouts["failed_submissions_7d"]["count"] == 3
    assert workouts["failed_submissions_7d"]["last_error"].startswith("500")
    garmin = await app.account_context(user_id="u-garmin")
    assert garmin is not None
    assert garmin["integrations"][0]["provider"] == "garmin"
    assert garmin["integrations"][0]["last_error"].startswith("garmin: 401")
    export = await app.account_context(user_id="u-export")
    assert export is not None
    assert [p["kind"] for p in export["open_privacy_requests"]] == ["export"]
    gym = await app.account_context(user_id="u-gym-billing")
    assert gym is not None
    assert gym["billing_access"]["enabled"] is False
    healthy = await app.account_context(user_id="u-healthy")
    assert healthy is not None
    assert healthy["locked"] is False
    assert healthy["email_verified"] is True


async def test_each_diagnosis_finds_its_demo_situation(app: KruxtApp) -> None:
    auth = await app.diagnose_auth_login(user_id="u-locked")
    assert "account_locked" in auth["findings"]
    assert len(auth["active_sessions"]) == 2
    unverified = await app.diagnose_auth_login(user_id="u-unverified")
    assert "email_unverified" in unverified["findings"]

    workout = await app.diagnose_workout_log_submit(user_id="u-workout-fail")
    replayable = {s["id"]: s["replayable"] for s in workout["failed_submissions"]}
    assert replayable == {
        "ws-fail-timeout": True,
        "ws-fail-serialize": True,
        "ws-fail-badtime": False,
    }

    feed = await app.diagnose_feed_moderation(user_id="u-post-author", post_id="p-hidden")
    assert feed["post"]["visibility"] == "hidden"
    assert feed["requester_is_author"] is True
    assert [r["id"] for r in feed["reports"]] == ["pr-mistaken"]
    assert [m["action"] for m in feed["moderation_history"]] == ["hide"]
    assert feed["blocks_involving_author"][0]["blocker_id"] == "u-reporter"

    waitlist = await app.diagnose_class_booking_waitlist(
        user_id="u-waitlist", class_id="c-hiit-0700"
    )
    assert waitlist["free_seats"] == 2
    assert waitlist["duplicate_positions"] == [2]
    assert waitlist["missing_positions"] == [1, 3, 4]
    assert {
        "duplicate_waitlist_positions",
        "waitlist_gaps",
        "free_capacity_with_waitlist",
    } <= set(waitlist["findings"])
    assert waitlist["requester_booking"]["waitlist_position"] == 5
    healthy_class = await app.diagnose_class_booking_waitlist(
        user_id="u-healthy-gym", class_id="c-yoga-1800"
    )
    assert healthy_class["findings"] == []

    garmin = await app.diagnose_integration_sync(user_id="u-garmin", provider="garmin")
    assert {"token_expired", "sync_error"} <= set(garmin["findings"])
    apple = await app.diagnose_integration_sync(user_id="u-apple-stale", provider="apple_health")
    assert {"sync_stale", "sync_error"} <= set(apple["findings"])
    assert apple["connection"]["sync_cursor"].startswith("hk-anchor")
    none = await app.diagnose_integration_sync(user_id="u-healthy", provider="apple_health")
    assert none["connection"] is None
    assert none["findings"] == ["not_connected"]
    healthy = await app.diagnose_integration_sync(user_id="u-healthy", provider="garmin")
    assert healthy["findings"] == []
    with pytest.raises(AppRefused, match="unknown integration provider strava"):
        await app.diagnose_integration_sync(user_id="u-healthy", provider="strava")

    export = await app.diagnose_privacy_request_status(user_id="u-export")
    assert export["findings"] == ["open_export_request"]
    assert export["requests"][0]["overdue"] is False
    deletion = await app.diagnose_privacy_request_status(user_id="u-deletion")
    assert deletion["findings"] == ["open_deletion_request"]
    assert deletion["requests"][0]["status"] == "in_progress"

    billing = await app.diagnose_billing_invoice(user_id="u-invoice-bounced")
    assert "invoice_bounced" in billing["findings"]
    bounced = [i for i in billing["invoices"] if i["id"] == "inv-bounced"]
    assert bounced[0]["delivery_status"] == "bounced"


async def test_blocks_and_privacy_requests_are_never_written() -> None:
    """No kruxt_admin function has a statement that writes user_blocks or privacy_requests."""
    text = "\n".join(p.read_text() for p in sorted(APP_MIGRATIONS.glob("*.sql")))
    writes = re.compile(
        r"(INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE)\s+(kruxt_app\.)?"
        r"(user_blocks|privacy_requests)\b",
        re.IGNORECASE,
    )
    admin = text[text.index("CREATE SCHEMA kruxt_admin;") :]
    assert writes.search(admin) is None


# -- the support role --------------------------------------------------------------------------


async def test_the_support_role_may_only_call_kruxt_admin(db: asyncpg.Connection[Any]) -> None:
    await db.execute("SET ROLE kruxt_support_worker")
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await db.execute("UPDATE kruxt_app.users SET locked_until = NULL")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await db.fetch("SELECT * FROM kruxt_app.users")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await db.fetch("SELECT * FROM kruxt_admin.applied_changes")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await db.fetchval(
                "SELECT kruxt_admin_private.record_change('k', 'f', '{}', NULL, NULL)"
            )
        context = await db.fetchval("SELECT kruxt_admin.account_context('u-locked')")
        assert context["user_id"] == "u-locked"
        assert context["locked"] is True
        changed = await db.fetchval("SELECT kruxt_admin.unlock_account('k-role', 'u-locked')")
        assert changed["after"]["failed_logins"] == 0
    finally:
        await db.execute("RESET ROLE")
    assert await db.fetchval("SELECT failed_logins FROM kruxt_app.users WHERE id = 'u-locked'") == 0


async def test_the_support_role_is_nologin(db: asyncpg.Connection[Any]) -> None:
    assert (
        await db.fetchval("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'kruxt_support_worker'")
        is False
    )


# -- installation ------------------------------------------------------------------------------


async def test_installing_twice_applies_nothing_the_second_time(
    db: asyncpg.Connection[Any],
) -> None:
    before = await dump(db, *APP_TABLES)
    assert await install_app_schema(db, with_demo_data=True) == []
    assert await dump(db, *APP_TABLES) == before
    versions = await db.fetch("SELECT version FROM app_schema_migrations ORDER BY version")
    assert [r["version"] for r in versions] == [
        m.version for m in migrations.discover(APP_MIGRATIONS)
    ]
    assert before["users"]  # the demo data is there, and the second install left it as it was


async def test_the_app_schema_shares_a_database_with_the_support_schema(
    pg_admin_dsn: str,
) -> None:
    name = f"kruxt_shared_{uuid.uuid4().hex[:10]}"
    admin = await connect(pg_admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        conn = await connect(with_database(pg_admin_dsn, name))
        try:
            support = await migrations.apply(conn, MIGRATIONS)
            app = await install_app_schema(conn, with_demo_data=False)
            assert [m.version for m in support] == [
                m.version for m in migrations.discover(MIGRATIONS)
            ]
            assert [m.version for m in app] == [
                m.version for m in migrations.discover(APP_MIGRATIONS)
            ]
            assert await migrations.apply(conn, MIGRATIONS) == []
            assert await install_app_schema(conn, with_demo_data=False) == []
            assert await conn.fetchval("SELECT count(*) FROM kruxt_app.users") == 0
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_a_bad_bookkeeping_table_name_is_refused(db: asyncpg.Connection[Any]) -> None:
    with pytest.raises(migrations.MigrationError, match="invalid migrations table name"):
        await migrations.apply(db, APP_MIGRATIONS, table="x; DROP TABLE users")
    with pytest.raises(migrations.MigrationError, match="invalid migrations table name"):
        await migrations.apply(db, APP_MIGRATIONS, table="app_schema_migrations\n")
