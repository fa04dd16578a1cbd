"""Gathering what the Triage agent reads besides the ticket."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from temporalio import activity

from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.models.context import AccountContextStatus, ContextInput, TriageContext

log = logging.getLogger(__name__)


class AccountDirectory(Protocol):
    """The KRUXT app's read-only account lookup (``kruxt_admin.account_context``)."""

    async def account_context(self, *, user_id: str) -> dict[str, Any] | None:
        """The account's context, or None for an unknown account."""
        ...


class ContextActivities:
    """Read the account from the app and recent activity from the support schema."""

    def __init__(self, tickets: TicketStore, app: AccountDirectory | None) -> None:
        self._tickets = tickets
        self._app = app

    @activity.defn
    async def gather_context(self, inp: ContextInput) -> TriageContext:
        """Never fails because of the app: triage runs with the context marked unavailable."""
        urgent, counts = await self._tickets.recent_activity(exclude=inp.ticket_id)
        status, account, note = await self._account(inp.account_id)
        return TriageContext(
            account_status=status,
            account=account,
            note=note,
            open_urgent_tickets=urgent,
            tickets_last_24h_by_category=counts,
        )

    async def _account(
        self, account_id: str | None
    ) -> tuple[AccountContextStatus, dict[str, Any] | None, str]:
        if not account_id:
            return AccountContextStatus.NO_ACCOUNT_ID, None, "the ticket names no account"
        if self._app is None:
            return AccountContextStatus.APP_UNAVAILABLE, None, "no app database configured"
        try:
            account = await self._app.account_context(user_id=account_id)
        except Exception as exc:  # the app being down must not hold triage up
            log.warning("account context unavailable for %s: %s", account_id, exc)
            return AccountContextStatus.APP_UNAVAILABLE, None, f"app database error: {exc}"[:300]
        if account is None:
            return AccountContextStatus.UNKNOWN_ACCOUNT, None, f"no account {account_id!r}"
        return AccountContextStatus.AVAILABLE, account, ""
