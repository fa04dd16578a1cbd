"""Enumerations shared by the API, the workflows and the database."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    """Where a ticket came from."""

    IN_APP = "in_app"
    EMAIL = "email"
    ZENDESK = "zendesk"
    INTERCOM = "intercom"
    CLI = "cli"


class TicketStatus(StrEnum):
    """Lifecycle of a ticket, as stored in ``support_tickets.status``."""

    NEW = "new"
    TRIAGED = "triaged"
    AWAITING_HUMAN = "awaiting_human"
    AWAITING_APPROVAL = "awaiting_approval"
    AWAITING_CUSTOMER = "awaiting_customer"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    # The customer wrote within the reopen window after it was resolved: same ticket, again.
    REOPENED = "reopened"


class Priority(StrEnum):
    """Severity as DESIGN.md defines it: P1 an outage ... P4 a question."""

    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"

    @property
    def rank(self) -> int:
        """1 for P1 (most severe) to 4 for P4."""
        return int(self.value[1])


class Category(StrEnum):
    """Ticket categories: one per playbook of the catalog, plus ``other``."""

    AUTH_LOGIN = "auth_login"
    WORKOUT_LOG_SUBMIT = "workout_log_submit"
    FEED_MODERATION = "feed_moderation"
    CLASS_BOOKING_WAITLIST = "class_booking_waitlist"
    INTEGRATION_SYNC = "integration_sync"
    PRIVACY_REQUEST_STATUS = "privacy_request_status"
    BILLING_INVOICE = "billing_invoice"
    OTHER = "other"


class MessageDirection(StrEnum):
    """Who a ticket message went from and to."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"


class RiskTier(StrEnum):
    """How much a playbook may change; decides the route through the approval gate."""

    READ_ONLY = "read_only"
    LOW = "low"
    HIGH = "high"
