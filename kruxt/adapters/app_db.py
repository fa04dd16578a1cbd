"""The KRUXT app, as playbooks see it: a typed client of the ``kruxt_admin`` RPC functions.

Playbooks never read or write app tables; they call the SECURITY DEFINER functions of
``sql/app/002_kruxt_admin.sql`` and the lookups of ``004_playbook_lookups.sql`` (the support
role may do nothing else). Reads return the functions' JSON as dicts; changes run through
:meth:`KruxtApp.call`, only for the names and arguments of :data:`CHANGES`, and return a
:class:`ChangeResult`. A change called again with the same idempotency key returns the stored
result with ``replayed=True`` and applies nothing; a compensation with nothing to undo returns
``noop=True``.

SQLSTATE P0002 (the named entity does not exist) becomes :class:`AppEntityNotFound`, P0001
(refused, with the reason) :class:`AppRefused`; anything else propagates as asyncpg raised it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
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


# Every ``kruxt_admin`` function that changes the app: its arguments after the idempotency key,
# in the SQL signature's order. The only functions :meth:`KruxtApp.call` runs; a playbook
# action or compensation names one of them (the registry checks this at start).
CHANGES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        # auth_login
        "unlock_account": ("user_id",),
        "relock_account": ("original_key",),
        "resend_verification": ("user_id",),
        "revoke_sessions": ("user_id",),
        # workout_log_submit
        "replay_submission": ("submission_id",),
        "delete_replayed_workout": ("original_key",),
        # feed_moderation
        "restore_post_visibility": ("post_id",),
        "hide_post_again": ("original_key",),
        # class_booking_waitlist
        "repair_waitlist": ("class_id",),
        "restore_waitlist": ("original_key",),
        # integration_sync
        "reset_sync_cursor": ("connection_id",),
        "restore_sync_cursor": ("original_key",),
        "mark_reauth_required": ("connection_id",),
        "clear_reauth_required": ("original_key",),
        # billing_invoice (restore_billing_access is refused while billing_live is off)
        "resend_invoice": ("invoice_id",),
        "restore_billing_access": ("user_id",),
        "revoke_billing_access": ("original_key",),
    }
)


class UnknownAppFunction(Exception):
    """A change names no registered ``kruxt_admin`` function, or the wrong arguments."""


class KruxtApp:
    """The ``kruxt_admin`` functions: one method per read, :meth:`call` for every change.

    ``app.unlock_account(idempotency_key=k, user_id=u)`` is ``app.call("unlock_account", k,
    user_id=u)``: each name of :data:`CHANGES` is also an attribute.
    """

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

    async def call(self, function: str, idempotency_key: str, /, **args: str) -> ChangeResult:
        """Run the change ``kruxt_admin.<function>`` keyed by ``idempotency_key``.

        Only a function of :data:`CHANGES` with exactly its arguments runs; anything else is
        :class:`UnknownAppFunction` before any SQL is built.
        """
        params = CHANGES.get(function)
        if params is None:
            raise UnknownAppFunction(f"{function!r} is not a registered kruxt_admin change")
        if set(args) != set(params):
            raise UnknownAppFunction(
                f"{function} takes {', '.join(params)}, not {', '.join(sorted(args)) or 'nothing'}"
            )
        value = await self._read(function, idempotency_key, *(args[p] for p in params))
        return ChangeResult.model_validate(value)

    def __getattr__(self, name: str) -> Callable[..., Awaitable[ChangeResult]]:
        # Only for names not found otherwise: the registered changes, as keyword-only calls.
        if name not in CHANGES:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

        async def change(*, idempotency_key: str, **args: str) -> ChangeResult:
            return await self.call(name, idempotency_key, **args)

        return change

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
