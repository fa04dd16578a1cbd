"""Every playbook, action, compensation and check, by name: the only things that can run.

Built from the playbook modules' declarations. A name is registered once across all
playbooks; every action's compensation says what it does, and its checks exist; an action
never asks for less than its playbook's approver role; a read-only playbook declares no
action; every action and compensation names a registered ``kruxt_admin`` change with exactly
its arguments. (A compensation is declared in the action it undoes, so it cannot belong to
another.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from kruxt.activities.playbooks import (
    auth_login,
    billing_invoice,
    class_booking_waitlist,
    feed_moderation,
    integration_sync,
    privacy_request_status,
    workout_log_submit,
)
from kruxt.activities.playbooks.base import Action, Check, Compensation, PlaybookDeclaration
from kruxt.adapters.app_db import CHANGES
from kruxt.models.enums import RiskTier
from kruxt.models.playbooks import ROLE_RANK

__all__ = [
    "ACTIONS",
    "CHECKS",
    "COMPENSATIONS",
    "OWNER",
    "PLAYBOOKS",
    "RegistryError",
    "validate",
]

DECLARATIONS: tuple[PlaybookDeclaration, ...] = (
    auth_login.DECLARATION,
    workout_log_submit.DECLARATION,
    feed_moderation.DECLARATION,
    class_booking_waitlist.DECLARATION,
    integration_sync.DECLARATION,
    privacy_request_status.DECLARATION,
    billing_invoice.DECLARATION,
)


class RegistryError(Exception):
    """Two declarations clash, or one refers to something not registered."""


_Named = TypeVar("_Named", PlaybookDeclaration, Action, Compensation, Check)


def _index(kind: str, items: Iterable[_Named], name: str = "name") -> dict[str, _Named]:
    out: dict[str, _Named] = {}
    for item in items:
        key = getattr(item, name)
        if key in out:
            raise RegistryError(f"{kind} {key!r} is declared twice")
        out[key] = item
    return out


PLAYBOOKS: dict[str, PlaybookDeclaration] = _index("playbook", DECLARATIONS, "id")
ACTIONS: dict[str, Action] = _index("action", (a for d in DECLARATIONS for a in d.actions))
COMPENSATIONS: dict[str, Compensation] = _index(
    "compensation", (c for d in DECLARATIONS for c in d.compensations)
)
CHECKS: dict[str, Check] = _index("check", (c for d in DECLARATIONS for c in d.checks))
# The playbook that declares each action.
OWNER: dict[str, str] = {a.name: d.id for d in DECLARATIONS for a in d.actions}


def validate(declarations: Iterable[PlaybookDeclaration]) -> None:
    """Raise :class:`RegistryError` for the first declaration that breaks a rule above."""
    for d in declarations:
        if d.risk is RiskTier.READ_ONLY and d.actions:
            raise RegistryError(f"{d.id} is read-only but declares actions")
        for a in d.actions:
            if CHANGES.get(a.name) != a.args:
                raise RegistryError(f"{a.name}{a.args} is not a registered app change")
            if a.compensation is not None and not a.undo:
                what = f"compensation {a.compensation!r}"
                raise RegistryError(f"{a.name}: {what} does not say what it does")
            for check in a.requires:
                if check not in {c.name for c in d.checks}:
                    raise RegistryError(f"{a.name}: check {check!r} is not declared by {d.id}")
            if ROLE_RANK[a.approver_role] < ROLE_RANK[d.approver_role]:
                raise RegistryError(f"{a.name} asks for less than {d.id}'s approver role")
        for c in d.compensations:
            if CHANGES.get(c.name) != ("original_key",):
                raise RegistryError(f"compensation {c.name} is not a registered app undo")


validate(DECLARATIONS)
