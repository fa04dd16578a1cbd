"""The playbook catalog as the router sees it: which category maps to which playbook and risk.

The playbook modules (``kruxt.activities.playbooks``) hold the full declarations; this table is
the deterministic part a workflow may read.
"""

from __future__ import annotations

from dataclasses import dataclass

from kruxt.models.enums import Category, RiskTier


@dataclass(frozen=True)
class CatalogEntry:
    """A playbook of DESIGN.md's catalog."""

    playbook: str
    category: Category
    risk: RiskTier
    title: str


CATALOG: dict[Category, CatalogEntry] = {
    entry.category: entry
    for entry in (
        CatalogEntry("auth_login", Category.AUTH_LOGIN, RiskTier.LOW, "Auth / login issues"),
        CatalogEntry(
            "workout_log_submit",
            Category.WORKOUT_LOG_SUBMIT,
            RiskTier.LOW,
            "Workout log submit failures",
        ),
        CatalogEntry(
            "feed_moderation",
            Category.FEED_MODERATION,
            RiskTier.HIGH,
            "Feed visibility / report / block disputes",
        ),
        CatalogEntry(
            "class_booking_waitlist",
            Category.CLASS_BOOKING_WAITLIST,
            RiskTier.LOW,
            "Class booking / waitlist inconsistencies",
        ),
        CatalogEntry(
            "integration_sync",
            Category.INTEGRATION_SYNC,
            RiskTier.LOW,
            "Integration sync failures (Apple Health, Garmin)",
        ),
        CatalogEntry(
            "privacy_request_status",
            Category.PRIVACY_REQUEST_STATUS,
            RiskTier.READ_ONLY,
            "Privacy request status clarification",
        ),
        CatalogEntry(
            "billing_invoice",
            Category.BILLING_INVOICE,
            RiskTier.HIGH,
            "Billing access or invoice delivery failures",
        ),
    )
}

PLAYBOOK_IDS: frozenset[str] = frozenset(entry.playbook for entry in CATALOG.values())


def playbook_for(category: Category) -> str | None:
    """The playbook registered for a category; None for ``other``."""
    entry = CATALOG.get(category)
    return entry.playbook if entry else None


def is_read_only(category: Category) -> bool:
    """True when the category's answer is knowledge only: nothing in the app changes."""
    entry = CATALOG.get(category)
    return entry is not None and entry.risk is RiskTier.READ_ONLY
