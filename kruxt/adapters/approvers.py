"""Who may approve what: the approvers directory, read from a YAML/JSON file or a variable.

```yaml
- name: Maya Founder
  email: maya@kruxt.app
  slack_user_id: U024BE7LH
  roles: [approver, moderator, admin, staff]
```
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import yaml
from pydantic import BaseModel, EmailStr, Field, TypeAdapter, ValidationError

from kruxt.models.playbooks import ROLE_RANK, ApproverRole


class Approver(BaseModel):
    """A person who may decide approval requests."""

    name: str
    email: EmailStr
    slack_user_id: str | None = None
    roles: list[ApproverRole] = Field(min_length=1)
    # Escalation order: lower levels are asked first, higher ones when a request goes stale.
    level: int = Field(default=1, ge=1)

    def may_approve(self, role: ApproverRole) -> bool:
        """True when one of this approver's roles covers ``role``."""
        return any(ROLE_RANK[r] >= ROLE_RANK[role] for r in self.roles)


class ApproversError(ValueError):
    """The approvers configuration is missing or malformed."""


class ApproverDirectory:
    """Look approvers up by e-mail or Slack user id."""

    def __init__(self, approvers: Sequence[Approver]) -> None:
        self.approvers = list(approvers)
        self._by_email = {str(a.email).lower(): a for a in approvers}
        self._by_slack = {a.slack_user_id: a for a in approvers if a.slack_user_id}

    def by_email(self, email: str) -> Approver | None:
        """The approver with this e-mail (case-insensitive)."""
        return self._by_email.get(email.strip().lower())

    def by_slack_user(self, user_id: str) -> Approver | None:
        """The approver with this Slack user id."""
        return self._by_slack.get(user_id)

    def for_role(self, role: ApproverRole, *, level: int | None = None) -> list[Approver]:
        """Approvers who may approve ``role``, optionally of one escalation level."""
        return [
            a for a in self.approvers if a.may_approve(role) and (level is None or a.level == level)
        ]


_LIST = TypeAdapter(list[Approver])


def parse_approvers(text: str, *, source: str) -> ApproverDirectory:
    """Parse YAML or JSON text (YAML is a superset of JSON)."""
    try:
        data = yaml.safe_load(text) if text.strip() else []
        return ApproverDirectory(_LIST.validate_python(data or []))
    except (yaml.YAMLError, ValidationError) as exc:
        raise ApproversError(f"invalid approvers in {source}: {exc}") from exc


def load_approvers(*, file: Path | None, inline: str | None) -> ApproverDirectory:
    """From ``KRUXT_APPROVERS`` (inline JSON/YAML) or ``KRUXT_APPROVERS_FILE``; else nobody."""
    if inline:
        return parse_approvers(inline, source="KRUXT_APPROVERS")
    if file is not None:
        if not file.is_file():
            raise ApproversError(f"KRUXT_APPROVERS_FILE {file} does not exist")
        return parse_approvers(file.read_text(), source=str(file))
    return ApproverDirectory([])


def dump_approvers(approvers: Sequence[Approver]) -> str:
    """YAML for an approvers file (used by `kruxt dev` to write a starter file)."""
    return yaml.safe_dump(
        [json.loads(a.model_dump_json(exclude_none=True)) for a in approvers], sort_keys=False
    )
