"""The ids Slack echoes back: of buttons, of modal fields, of the modals themselves.

The blocks of :mod:`kruxt.adapters.slack.texts` carry them; the interaction route
(``kruxt.starter.api.slack_routes``) reads them to learn what was clicked or submitted.
Every name here is public.
"""

from __future__ import annotations

from typing import Literal

ACTION_APPROVE = "approval_approve"
ACTION_REJECT = "approval_reject"
ACTION_TRIAGE_WRONG = "approval_triage_wrong"
ACTION_OPEN_TICKET = "approval_open_ticket"
ACTIONS_BLOCK = "approval_actions"

VIEW_REJECT = "approval_reject_reason"
VIEW_TRIAGE_WRONG = "approval_triage_wrong"
REASON_BLOCK = "reason"
REASON_ACTION = "reason_input"
CATEGORY_BLOCK = "category"
CATEGORY_ACTION = "category_select"
SEVERITY_BLOCK = "severity"
SEVERITY_ACTION = "severity_select"
NOTE_BLOCK = "note"
NOTE_ACTION = "note_input"

ACTION_INCIDENT_ACK = "incident_ack"
INCIDENT_ACTIONS_BLOCK = "incident_actions"

ModalKind = Literal["reject", "triage_wrong"]
"""The two reason modals: rejecting a plan, and saying its triage was wrong."""
