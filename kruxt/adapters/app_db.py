"""The KRUXT app, as playbooks see it: a typed client of the ``kruxt_admin`` RPC functions.

Playbooks never read or write app tables; they call the SECURITY DEFINER functions of
``sql/app/002_kruxt_admin.sql`` and the lookups of ``004_playbook_lookups.sql`` (the support
role may do nothing else). Reads return the functions' JSON as dicts; changes return a
:class:`ChangeResult`. A change called again with the same idempotency key returns the stored
result with ``replayed=True`` and applies nothing; a compensation with nothing to undo returns
``noop=True``.

SQLSTATE P0002 (the named entity does not exist) becomes :class:`AppEntityNotFound`, P0001
(refused, with the reason) :class:`AppRefused`; anything else propagates as asyncpg raised it.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict

from kruxt.adapters.postgres import migrations
from kruxt.adapters.settings import PROJECT_ROOT

APP_MIGRATIONS = PROJECT_ROOT / "sql" / "app"
APP_DEMO_DATA = APP_MIGRATIONS / "demo" / "demo_data.sql"
APP_MIGRATIONS_TABLE = "app_schema_migrations"
SUPPORT_ROLE = "kruxt_support_worker"


class ChangeResult(BaseModel):
    """What a mutating ``kruxt_admin`` function did (or had done, when replayed)."""

    model_config = ConfigDict(frozen=True)

    before: Any = None
    after: Any = None
    replayed: bool = False
    noop: bool = False
    reason: str | None = None


class AppError(Exception):
    """The app refused a call; ``message`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AppEntityNotFound(AppError):
    """SQLSTATE P0002: the user, post, class ... named in the message does not exist."""

    def __init__(self, message: str, *, entity: str | None = None) -> None:
        super().__init__(message)
        # The app table the missing entity lives in ("users", "feed_posts", ...).
        self.entity = entity


class AppRefused(AppError):
    """SQLSTATE P0001: the call was understood and refused (already verified, flag off ...)."""


def _translate(exc: asyncpg.PostgresError) -> Exception:
    if exc.sqlstate == "P0002":
        return AppEntityNotFound(exc.message, entity=exc.table_name)
    if exc.sqlstate == "P0001":
        return AppRefused(exc.message)
    return exc


def _decode(value: Any) -> Any:
    # Pools made by kruxt.adapters.postgres.pool decode jsonb already; plain ones return text.
    return json.loads(value) if isinstance(value, str) else value


class KruxtApp:
    """One method per ``kruxt_admin`` function; keyword-only arguments."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool

    async def _call(self, function: str, *args: str | None) -> Any:
        placeholders = ", ".join(f"${i}" for i in range(1, len(args) + 1))
        try:
            value = await self._pool.fetchval(
                f"SELECT kruxt_admin.{function}({placeholders})", *args
            )
        except asyncpg.PostgresError as exc:
            raise _translate(exc) from exc
        return _decode(value)

    async def _read(self, function: str, *args: str | None) -> dict[str, Any]:
        value = await self._call(function, *args)
        if not isinstance(value, dict):
            raise TypeError(f"kruxt_admin.{function} returned {type(value).__name__}, not JSON")
        return value

    async def _change(self, function: str, *args: str | None) -> ChangeResult:
        return ChangeResult.model_validate(await self._read(function, *args))

    # -- read-only ---------------------------------------------------------------------------

    async def account_context(self, *, user_id: str) -> dict[str, Any] | None:
        """Plan, platform, lock state, sessions, integrations ... ; None for an unknown user."""
        value = await self._call("account_context", user_id)
        return value if isinstance(value, dict) else None

    async def diagnose_auth_login(self, *, user_id: str) -> dict[str, Any]:
        """Lock state, failed logins, email verification, active sessions."""
        return await self._read("diagnose_auth_login", user_id)

    async def diagnose_workout_log_submit(self, *, user_id: str) -> dict[str, Any]:
        """Failed submissions of the last 30 days, their errors and whether they can replay."""
        return await self._read("diagnose_workout_log_submit", user_id)

    async def diagnose_feed_moderation(self, *, user_id: str, post_id: str) -> dict[str, Any]:
        """The post's visibility, reports, moderation history and related blocks."""
        return await self._read("diagnose_feed_moderation", user_id, post_id)

    async def diagnose_class_booking_waitlist(
        self, *, user_id: str, class_id: str
    ) -> dict[str, Any]:
        """Bookings and waitlist positions against capacity, with the anomalies found."""
        return await self._read("diagnose_class_booking_waitlist", user_id, class_id)

    async def diagnose_integration_sync(self, *, user_id: str, provider: str) -> dict[str, Any]:
        """The provider's connection: token expiry, last sync and error, cursor, queued jobs."""
        return await self._read("diagnose_integration_sync", user_id, provider)

    async def diagnose_privacy_request_status(self, *, user_id: str) -> dict[str, Any]:
        """The user's export/deletion requests and their due dates."""
        return await self._read("diagnose_privacy_request_status", user_id)

    async def diagnose_billing_invoice(self, *, user_id: str) -> dict[str, Any]:
        """Invoices and their delivery, billing access, and whether billing is live."""
        return await self._read("diagnose_billing_invoice", user_id)

    # -- read-only lookups (sql/app/004_playbook_lookups.sql) ---------------------------------

    async def user_hidden_posts(self, *, user_id: str) -> dict[str, Any]:
        """The user's hidden posts (newest first, at most 20): ``{"user_id", "posts"}``."""
        return await self._read("user_hidden_posts", user_id)

    async def user_class_bookings(self, *, user_id: str) -> dict[str, Any]:
        """The upcoming classes the user is booked or waitlisted in: ``{"user_id", "bookings"}``."""
        return await self._read("user_class_bookings", user_id)

    # -- auth_login --------------------------------------------------------------------------

    async def unlock_account(self, *, idempotency_key: str, user_id: str) -> ChangeResult:
        """Clear the lock and the failed-login count."""
        return await self._change("unlock_account", idempotency_key, user_id)

    async def relock_account(self, *, idempotency_key: str, original_key: str) -> ChangeResult:
        """Compensation of unlock_account: the lock and failed logins as they were."""
        return await self._change("relock_account", idempotency_key, original_key)

    async def resend_verification(self, *, idempotency_key: str, user_id: str) -> ChangeResult:
        """Queue another verification email (no compensation needed)."""
        return await self._change("resend_verification", idempotency_key, user_id)

    async def revoke_sessions(self, *, idempotency_key: str, user_id: str) -> ChangeResult:
        """Revoke every active session (no compensation: the user signs in again)."""
        return await self._change("revoke_sessions", idempotency_key, user_id)

    # -- workout_log_submit ------------------------------------------------------------------

    async def replay_submission(self, *, idempotency_key: str, submission_id: str) -> ChangeResult:
        """Create the workout of a failed submission and mark the submission accepted."""
        return await self._change("replay_submission", idempotency_key, submission_id)

    async def delete_replayed_workout(
        self, *, idempotency_key: str, original_key: str
    ) -> ChangeResult:
        """Compensation of replay_submission: the workout removed, the submission as it was."""
        return await self._change("delete_replayed_workout", idempotency_key, original_key)

    # -- feed_moderation ---------------------------------------------------------------------

    async def restore_post_visibility(self, *, idempotency_key: str, post_id: str) -> ChangeResult:
        """Make a hidden post visible again."""
        return await self._change("restore_post_visibility", idempotency_key, post_id)

    async def hide_post_again(self, *, idempotency_key: str, original_key: str) -> ChangeResult:
        """Compensation of restore_post_visibility: the previous visibility and reason."""
        return await self._change("hide_post_again", idempotency_key, original_key)

    # -- class_booking_waitlist --------------------------------------------------------------

    async def repair_waitlist(self, *, idempotency_key: str, class_id: str) -> ChangeResult:
        """Promote waitlisted bookings into free seats and renumber the rest 1..n."""
        return await self._change("repair_waitlist", idempotency_key, class_id)

    async def restore_waitlist(self, *, idempotency_key: str, original_key: str) -> ChangeResult:
        """Compensation of repair_waitlist: every booking's status and position as before."""
        return await self._change("restore_waitlist", idempotency_key, original_key)

    # -- integration_sync --------------------------------------------------------------------

    async def reset_sync_cursor(self, *, idempotency_key: str, connection_id: str) -> ChangeResult:
        """Clear the sync cursor and queue a sync job."""
        return await self._change("reset_sync_cursor", idempotency_key, connection_id)

    async def restore_sync_cursor(self, *, idempotency_key: str, original_key: str) -> ChangeResult:
        """Compensation of reset_sync_cursor: the cursor back, the queued job withdrawn."""
        return await self._change("restore_sync_cursor", idempotency_key, original_key)

    async def mark_reauth_required(
        self, *, idempotency_key: str, connection_id: str
    ) -> ChangeResult:
        """Flag the connection so the app asks the user to sign in to the provider again."""
        return await self._change("mark_reauth_required", idempotency_key, connection_id)

    async def clear_reauth_required(
        self, *, idempotency_key: str, original_key: str
    ) -> ChangeResult:
        """Compensation of mark_reauth_required: the flag and status as before."""
        return await self._change("clear_reauth_required", idempotency_key, original_key)

    # -- billing_invoice ---------------------------------------------------------------------

    async def resend_invoice(self, *, idempotency_key: str, invoice_id: str) -> ChangeResult:
        """Queue another delivery of an issued invoice (no compensation needed)."""
        return await self._change("resend_invoice", idempotency_key, invoice_id)

    async def restore_billing_access(self, *, idempotency_key: str, user_id: str) -> ChangeResult:
        """Enable billing access; refused (AppRefused) while the billing_live flag is off."""
        return await self._change("restore_billing_access", idempotency_key, user_id)

    async def revoke_billing_access(
        self, *, idempotency_key: str, original_key: str
    ) -> ChangeResult:
        """Compensation of restore_billing_access: the billing access row as it was."""
        return await self._change("revoke_billing_access", idempotency_key, original_key)


async def install_app_schema(
    conn: asyncpg.Connection[Any], *, with_demo_data: bool
) -> list[migrations.Migration]:
    """Apply ``sql/app/`` (bookkeeping in ``app_schema_migrations``), then the demo data.

    Returns the migrations applied now (none when the schema is up to date). The demo data is
    idempotent: loading it again inserts nothing.
    """
    applied = await migrations.apply(conn, APP_MIGRATIONS, table=APP_MIGRATIONS_TABLE)
    if with_demo_data:
        async with conn.transaction():
            await conn.execute(APP_DEMO_DATA.read_text())
    return applied
