"""Where a triaged ticket goes next: decided by the catalog and policy, not the model's words."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from kruxt.models.catalog import is_read_only
from kruxt.models.enums import Category
from kruxt.models.tickets import RoutingPolicy
from kruxt.models.triage import TriageResult


class Route(StrEnum):
    """The paths out of triage."""

    AUTO_REPLY = "auto_reply"
    PLAYBOOK = "playbook"
    HUMAN = "human"


@dataclass(frozen=True)
class RouteDecision:
    """A route and the reason an operator reads in the audit log and the Web UI."""

    route: Route
    reason: str


def decide_route(triage: TriageResult, policy: RoutingPolicy) -> RouteDecision:
    """Auto-reply only read-only answers the triager is confident about; a confident ticket
    whose playbook changes app data gets a plan for a person to approve; the rest go to a
    person directly."""
    if triage.category is Category.OTHER or triage.playbook is None:
        return RouteDecision(Route.HUMAN, "no playbook applies")
    if triage.confidence < policy.auto_reply_min_confidence:
        return RouteDecision(
            Route.HUMAN,
            f"confidence {triage.confidence:.2f} is below the auto-reply threshold "
            f"{policy.auto_reply_min_confidence:.2f}",
        )
    if is_read_only(triage.category):
        return RouteDecision(Route.AUTO_REPLY, f"read-only {triage.category.value} answer")
    return RouteDecision(
        Route.PLAYBOOK, f"playbook {triage.playbook} changes app data: a person approves the plan"
    )
