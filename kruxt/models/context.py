"""What the Triage agent knows besides the ticket: the account and what is going on."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class AccountContextStatus(StrEnum):
    """Whether the account context could be read, and if not, why."""

    AVAILABLE = "available"
    NO_ACCOUNT_ID = "no_account_id"
    UNKNOWN_ACCOUNT = "unknown_account"
    APP_UNAVAILABLE = "app_unavailable"


class RecentTicket(BaseModel):
    """A recent urgent ticket, as context for a new one."""

    ticket_id: uuid.UUID
    priority: str | None = None
    category: str | None = None
    subject: str
    created_at: datetime


class ContextInput(BaseModel):
    """Input of ``gather_context``."""

    ticket_id: uuid.UUID
    account_id: str | None = None


class TriageContext(BaseModel):
    """Account context from the KRUXT app plus recent support activity."""

    account_status: AccountContextStatus
    account: dict[str, Any] | None = None
    note: str = ""
    open_urgent_tickets: list[RecentTicket] = Field(default_factory=list)
    tickets_last_24h_by_category: dict[str, int] = Field(default_factory=dict)

    def render(self) -> str:
        """The context as compact text for a prompt (it is data, never instructions)."""
        lines = [f"account: {self.account_status.value}" + (f" ({self.note})" if self.note else "")]
        if self.account is not None:
            lines.append("account_context: " + json.dumps(self.account, default=str)[:4000])
        if self.tickets_last_24h_by_category:
            counts = ", ".join(
                f"{k}={v}" for k, v in sorted(self.tickets_last_24h_by_category.items())
            )
            lines.append(f"tickets in the last 24 h by category: {counts}")
        for t in self.open_urgent_tickets:
            lines.append(
                f"open urgent ticket: {t.priority} {t.category} {t.created_at:%Y-%m-%d %H:%M} "
                f"{t.subject[:120]!r}"
            )
        return "\n".join(lines)
