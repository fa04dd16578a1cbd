"""Slack: the approval and incident channels, their texts, the signature check, the client.

``client`` (errors, calls), ``signature`` (requests from Slack), ``blocks`` (Block Kit and its
limits), ``texts`` (every message's words), ``ids`` (of buttons and modal fields), ``approvals``
and ``incidents`` (the channels).
"""

from kruxt.adapters.slack.approvals import SlackApprovals
from kruxt.adapters.slack.blocks import MAX_BLOCKS, MAX_TEXT
from kruxt.adapters.slack.client import (
    SlackError,
    SlackMessageRef,
    SlackRejected,
    SlackUnavailable,
    post_to_response_url,
)
from kruxt.adapters.slack.ids import (
    ACTION_APPROVE,
    ACTION_INCIDENT_ACK,
    ACTION_OPEN_TICKET,
    ACTION_REJECT,
    ACTION_TRIAGE_WRONG,
    CATEGORY_ACTION,
    CATEGORY_BLOCK,
    NOTE_ACTION,
    NOTE_BLOCK,
    REASON_ACTION,
    REASON_BLOCK,
    SEVERITY_ACTION,
    SEVERITY_BLOCK,
    VIEW_REJECT,
    VIEW_TRIAGE_WRONG,
    ModalKind,
)
from kruxt.adapters.slack.incidents import SlackIncidents
from kruxt.adapters.slack.signature import MAX_SKEW_S, SlackSignatureError, verify_slack_request
from kruxt.adapters.slack.texts import (
    approval_blocks,
    closed_incident_blocks,
    decided_blocks,
    decided_line,
    incident_blocks,
    page_text,
    reminder_text,
    sla_text,
    timeline_text,
)

__all__ = [
    "ACTION_APPROVE",
    "ACTION_INCIDENT_ACK",
    "ACTION_OPEN_TICKET",
    "ACTION_REJECT",
    "ACTION_TRIAGE_WRONG",
    "CATEGORY_ACTION",
    "CATEGORY_BLOCK",
    "MAX_BLOCKS",
    "MAX_SKEW_S",
    "MAX_TEXT",
    "NOTE_ACTION",
    "NOTE_BLOCK",
    "REASON_ACTION",
    "REASON_BLOCK",
    "SEVERITY_ACTION",
    "SEVERITY_BLOCK",
    "VIEW_REJECT",
    "VIEW_TRIAGE_WRONG",
    "ModalKind",
    "SlackApprovals",
    "SlackError",
    "SlackIncidents",
    "SlackMessageRef",
    "SlackRejected",
    "SlackSignatureError",
    "SlackUnavailable",
    "approval_blocks",
    "closed_incident_blocks",
    "decided_blocks",
    "decided_line",
    "incident_blocks",
    "page_text",
    "post_to_response_url",
    "reminder_text",
    "sla_text",
    "timeline_text",
    "verify_slack_request",
]
