"""The ports the notifying activities depend on: what a chat channel must do, not how.

Slack implements them today (:mod:`kruxt.adapters.slack`); mail has its own port,
:class:`kruxt.adapters.email.Mailer`. Every channel's failures are :class:`NotifyUnavailable`
(retrying may help) or :class:`NotifyRejected` (it cannot), which the activities map to the
one ApplicationError type each that the workflows' retry policies expect.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict

from kruxt.adapters.errors import RetryLater
from kruxt.models.approvals import ApprovalRequest, CloseApproval
from kruxt.models.incidents import IncidentInput, IncidentStatusChange, TimelineEntry
from kruxt.models.sla import SlaNotice

__all__ = [
    "ApprovalNotifier",
    "IncidentNotifier",
    "MessageRef",
    "Notifier",
    "NotifyError",
    "NotifyRejected",
    "NotifyUnavailable",
    "SlaNotifier",
]


class NotifyError(Exception):
    """A notification did not go out."""


class NotifyUnavailable(NotifyError, RetryLater):
    """The channel is unreachable, overloaded or rate limited: retrying may work."""


class NotifyRejected(NotifyError):
    """The channel refused the message (bad credentials, unknown channel...): do not retry."""


class MessageRef(BaseModel):
    """Where a chat message landed: enough to thread under it and to update it."""

    model_config = ConfigDict(frozen=True)

    channel: str
    ts: str


class Notifier(Protocol):
    """A chat channel people watch."""

    @property
    def channel(self) -> str:
        """Where messages go (a channel id or name), for the audit trail."""
        ...


class ApprovalNotifier(Notifier, Protocol):
    """Puts approval requests in front of approvers, reminds them, closes the request."""

    async def post_request(self, request: ApprovalRequest) -> MessageRef:
        """The request with its buttons; returns where it landed."""
        ...

    async def post_reminder(
        self,
        ref: MessageRef,
        request: ApprovalRequest,
        *,
        escalation_level: int,
        mention_user_ids: list[str],
    ) -> MessageRef:
        """A reminder (level 1) or an escalation (level 2 and up) under the request."""
        ...

    async def close(self, ref: MessageRef, decision: CloseApproval) -> None:
        """Replace the request with the decision (or its expiry)."""
        ...


class SlaNotifier(Notifier, Protocol):
    """Tells people an SLA clock is about to pass, or has passed."""

    async def post_sla(
        self, notice: SlaNotice, *, mention_user_ids: list[str] | None = None
    ) -> MessageRef:
        """A warning, or a breach mentioning ``mention_user_ids``."""
        ...


class IncidentNotifier(SlaNotifier, Protocol):
    """Posts incidents, pages under them, their closing and their timeline."""

    async def post_incident(
        self, incident: IncidentInput, *, tickets: int = 1, mention_user_ids: list[str]
    ) -> MessageRef:
        """The incident with its Acknowledge action, mentioning the first people paged."""
        ...

    async def post_page(
        self,
        ref: MessageRef,
        incident: IncidentInput,
        *,
        level_name: str,
        loop: int,
        mention_user_ids: list[str],
    ) -> MessageRef:
        """A page under the incident."""
        ...

    async def close(self, ref: MessageRef, change: IncidentStatusChange) -> None:
        """Replace the incident message: who acknowledged or resolved it (``change``)."""
        ...

    async def post_timeline(
        self,
        ref: MessageRef | None,
        incident: IncidentInput,
        *,
        entries: list[TimelineEntry],
        resolved_by: str,
        note: str = "",
    ) -> MessageRef:
        """The resolved incident's timeline, under it (or alone if it was never posted)."""
        ...
