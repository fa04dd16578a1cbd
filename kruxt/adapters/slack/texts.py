"""Every Slack notification's words in one place: approvals, modals, incidents, SLA alerts.

A founder reads these messages on a phone at 3 a.m.: the plain explanation comes first and
short; the technical details are compact (context blocks, a code block of the dry-run
preview). The ids the blocks carry are in :mod:`kruxt.adapters.slack.ids`.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC
from typing import Any

from kruxt.adapters.durations import format_duration
from kruxt.adapters.slack import ids
from kruxt.adapters.slack.blocks import (
    MAX_DRAFT,
    MAX_HEADER,
    MAX_MODAL_TITLE,
    MAX_NOTIFICATION,
    MAX_TEXT,
    clip,
    code_block,
    context,
    escape,
    fit,
    hhmm,
    mentions,
    mrkdwn,
    plain,
    section,
    slack_date,
)
from kruxt.models.approvals import ApprovalKind, ApprovalRequest, ApprovalStatus, CloseApproval
from kruxt.models.enums import Category, Priority
from kruxt.models.incidents import (
    IncidentInput,
    IncidentStatus,
    IncidentStatusChange,
    TimelineEntry,
)
from kruxt.models.sla import SlaEventKind, SlaNotice

__all__ = [
    "approval_blocks",
    "approval_notification",
    "closed_incident_blocks",
    "decided_blocks",
    "decided_line",
    "decided_notification",
    "incident_blocks",
    "incident_closed_notification",
    "incident_notification",
    "modal_view",
    "page_text",
    "reminder_text",
    "sla_blocks",
    "sla_notification",
    "sla_text",
    "timeline_text",
]


# --- approvals ----------------------------------------------------------------------------


def _compact(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def _preview_lines(preview: list[dict[str, Any]]) -> list[str]:
    lines = []
    for item in preview:
        step = str(item.get("step", "step"))
        rest = {k: v for k, v in item.items() if k != "step"}
        if "before" in rest and "after" in rest:
            lines.append(f"{step}: {_compact(rest['before'])} → {_compact(rest['after'])}")
        else:
            lines.append(f"{step}: {_compact(rest)}")
    return lines


def _kind_label(request: ApprovalRequest) -> str:
    return "Rollback" if request.kind is ApprovalKind.ROLLBACK else "Plan"


def _summary_blocks(request: ApprovalRequest, *, ticket_url: str | None) -> list[dict[str, Any]]:
    """What both the open and the closed message show."""
    ticket = escape(request.summary)
    if ticket_url:
        ticket = f"<{ticket_url}|{ticket}>"
    blocks: list[dict[str, Any]] = [
        section(escape(request.plain_explanation.strip()), block_id="plain"),
        context(
            f"*Ticket:* {ticket}",
            f"*{request.severity.value}* · confidence {request.confidence:.0%} · "
            f"`{escape(request.playbook)}` · needs {request.required_role.value}",
        ),
    ]
    if request.preview:
        blocks.append(
            section(code_block("*Dry run: what would change*", _preview_lines(request.preview)))
        )
    if request.draft_reply.strip():
        quoted = "\n".join(
            f">{line}" for line in clip(escape(request.draft_reply.strip()), MAX_DRAFT).split("\n")
        )
        blocks.append(section(f"*Reply to the customer (draft)*\n{quoted}", block_id="draft"))
    blocks.append(context(f"*Rollback:* {escape(request.rollback_plan.strip())}"))
    blocks.append(context(f"*Technical:* {escape(request.technical_explanation.strip())}"))
    return blocks


def approval_blocks(
    request: ApprovalRequest, *, ticket_url: str | None = None
) -> list[dict[str, Any]]:
    """The approval request as Block Kit: plain words first, then details, then the buttons.

    Every button's ``value`` is the approval id. Approve asks for a confirmation (a tap in
    a pocket must not run a playbook); Reject and "Triage wrong" open a modal.
    """
    value = str(request.approval_id)
    header = f"{'↩️ Rollback' if request.kind is ApprovalKind.ROLLBACK else '🔐 Approval'} needed"
    elements: list[dict[str, Any]] = [
        {
            "type": "button",
            "action_id": ids.ACTION_APPROVE,
            "text": plain("Approve", 75),
            "style": "primary",
            "value": value,
            "confirm": {
                "title": plain("Approve and run?", 100),
                "text": plain(
                    f"The {request.playbook} steps run as soon as you confirm."
                    if request.kind is ApprovalKind.PLAN
                    else "The rollback runs as soon as you confirm.",
                    300,
                ),
                "confirm": plain("Approve", 30),
                "deny": plain("Cancel", 30),
            },
        },
        {
            "type": "button",
            "action_id": ids.ACTION_REJECT,
            "text": plain("Reject", 75),
            "style": "danger",
            "value": value,
        },
        {
            "type": "button",
            "action_id": ids.ACTION_TRIAGE_WRONG,
            "text": plain("Triage wrong", 75),
            "value": value,
        },
    ]
    if ticket_url:
        elements.append(
            {
                "type": "button",
                "action_id": ids.ACTION_OPEN_TICKET,
                "text": plain("Open ticket", 75),
                "url": ticket_url,
                "value": value,
            }
        )
    blocks = [
        {
            "type": "header",
            "text": plain(f"{header} · {request.severity.value} · {request.playbook}", MAX_HEADER),
        },
        *_summary_blocks(request, ticket_url=ticket_url),
        context(f"⏰ Decide by {slack_date(request.expires_at)}"),
        {"type": "actions", "block_id": ids.ACTIONS_BLOCK, "elements": elements},
    ]
    return fit(blocks)


def decided_line(decision: CloseApproval) -> str:
    """One line saying who decided what and when (plain text; escape it for mrkdwn)."""
    status, by, at = decision.status, decision.decided_by or "nobody", decision.decided_at
    if status is ApprovalStatus.APPROVED:
        return f"✅ Approved by {by} at {hhmm(at)}"
    if status is ApprovalStatus.REJECTED:
        why = f": {decision.reason.strip()}" if decision.reason.strip() else ""
        return f"❌ Rejected by {by}{why} ({hhmm(at)})"
    if status is ApprovalStatus.EXPIRED:
        return f"⌛ Expired without a decision ({hhmm(at)})"
    raise ValueError(f"an approval that is {status.value} is not decided")


def decided_blocks(
    decision: CloseApproval, *, ticket_url: str | None = None
) -> list[dict[str, Any]]:
    """The same request, closed: the outcome on top, the summary below, no buttons."""
    request, line = decision.request, decided_line(decision)
    blocks = [
        {
            "type": "header",
            "text": plain(
                f"{_kind_label(request)} {decision.status.value} · {request.severity.value} · "
                f"{request.playbook}",
                MAX_HEADER,
            ),
        },
        section(f"*{escape(line)}*", block_id="outcome"),
        *_summary_blocks(request, ticket_url=ticket_url),
    ]
    return fit(blocks)


def reminder_text(request: ApprovalRequest, level: int) -> str:
    """The text of a reminder (level 1) or an escalation (level 2 and up), mrkdwn."""
    what = (
        f"*{request.severity.value}* `{escape(request.playbook)}`: "
        f"{escape(clip(request.summary, 200))}"
    )
    deadline = f"It expires {slack_date(request.expires_at)}."
    if level <= 1:
        return f"⏰ Still waiting for a decision on {what}. {deadline}"
    return f"🚨 Escalation (level {level}): nobody has decided {what} yet. {deadline}"


def approval_notification(request: ApprovalRequest) -> str:
    """What a phone's notification shows: severity, the ask, the deadline."""
    return clip(
        f"{request.severity.value} {_kind_label(request).lower()} approval needed: "
        f"{escape(request.summary)} (decide by {hhmm(request.expires_at)})",
        MAX_NOTIFICATION,
    )


def decided_notification(decision: CloseApproval) -> str:
    """What a phone shows when the request is closed."""
    line = escape(decided_line(decision))
    return clip(f"{line}: {escape(decision.request.summary)}", MAX_NOTIFICATION)


def modal_view(approval_id: uuid.UUID, kind: ids.ModalKind) -> dict[str, Any]:
    """The "why reject?" or the "triage wrong" modal."""
    return _reason_modal(approval_id) if kind == "reject" else _triage_modal(approval_id)


# --- modals -------------------------------------------------------------------------------


def _option(text: str, value: str) -> dict[str, Any]:
    return {"text": plain(text, 75), "value": value}


def _modal(callback_id: str, approval_id: uuid.UUID, *, title: str, submit: str) -> dict[str, Any]:
    """A modal about one approval (its id comes back as ``private_metadata``), no blocks yet."""
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": str(approval_id),
        "title": plain(title, MAX_MODAL_TITLE),
        "submit": plain(submit, MAX_MODAL_TITLE),
        "close": plain("Cancel", MAX_MODAL_TITLE),
    }


def _reason_modal(approval_id: uuid.UUID) -> dict[str, Any]:
    return {
        **_modal(ids.VIEW_REJECT, approval_id, title="Reject the plan", submit="Reject"),
        "blocks": [
            {
                "type": "input",
                "block_id": ids.REASON_BLOCK,
                "label": plain("Why? (kept in the audit trail)", 2000),
                "element": {
                    "type": "plain_text_input",
                    "action_id": ids.REASON_ACTION,
                    "multiline": True,
                    "max_length": 2000,
                    "placeholder": plain("e.g. the customer already fixed it", 150),
                },
            }
        ],
    }


def _triage_modal(approval_id: uuid.UUID) -> dict[str, Any]:
    return {
        **_modal(
            ids.VIEW_TRIAGE_WRONG, approval_id, title="Triage was wrong", submit="Reject plan"
        ),
        "blocks": [
            {
                "type": "section",
                "text": mrkdwn(
                    "The plan was built from this triage, so it is rejected; your correction "
                    "is recorded to improve triage."
                ),
            },
            {
                "type": "input",
                "block_id": ids.CATEGORY_BLOCK,
                "optional": True,
                "label": plain("Right category", 2000),
                "element": {
                    "type": "static_select",
                    "action_id": ids.CATEGORY_ACTION,
                    "options": [_option(c.value.replace("_", " "), c.value) for c in Category],
                },
            },
            {
                "type": "input",
                "block_id": ids.SEVERITY_BLOCK,
                "optional": True,
                "label": plain("Right severity", 2000),
                "element": {
                    "type": "static_select",
                    "action_id": ids.SEVERITY_ACTION,
                    "options": [_option(p.value, p.value) for p in Priority],
                },
            },
            {
                "type": "input",
                "block_id": ids.NOTE_BLOCK,
                "optional": True,
                "label": plain("What was wrong?", 2000),
                "element": {
                    "type": "plain_text_input",
                    "action_id": ids.NOTE_ACTION,
                    "multiline": True,
                    "max_length": 2000,
                },
            },
        ],
    }


# --- incidents and SLA alerts -------------------------------------------------------------


def _summary(incident: IncidentInput, *, tickets: int) -> list[dict[str, Any]]:
    return [
        section(f"*{escape(incident.title)}*", block_id="title"),
        context(
            f"*{incident.priority.value}* · {incident.category.value.replace('_', ' ')} · "
            f"{tickets} ticket{'s' if tickets != 1 else ''}",
            f"opened {slack_date(incident.opened_at)}",
            f"`{escape(str(incident.incident_id))}`",
        ),
    ]


def incident_blocks(
    incident: IncidentInput, *, tickets: int = 1, mention_user_ids: list[str] | None = None
) -> list[dict[str, Any]]:
    """The incident as Block Kit: what is broken, who is paged, and the Acknowledge button.

    The button's ``value`` is the incident id; acknowledging asks for a confirmation.
    """
    paged = mentions(mention_user_ids or [])
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": plain(f"🚨 {incident.priority.value} incident · {incident.title}", MAX_HEADER),
        },
        *_summary(incident, tickets=tickets),
    ]
    if paged:
        blocks.append(section(f"Paging {paged}", block_id="paging"))
    blocks.append(
        {
            "type": "actions",
            "block_id": ids.INCIDENT_ACTIONS_BLOCK,
            "elements": [
                {
                    "type": "button",
                    "action_id": ids.ACTION_INCIDENT_ACK,
                    "text": plain("Acknowledge", 75),
                    "style": "primary",
                    "value": str(incident.incident_id),
                    "confirm": {
                        "title": plain("Acknowledge?", 100),
                        "text": plain(
                            "You take the incident: paging stops and the team sees your name.",
                            300,
                        ),
                        "confirm": plain("Acknowledge", 30),
                        "deny": plain("Cancel", 30),
                    },
                }
            ],
        }
    )
    return blocks


def closed_incident_blocks(change: IncidentStatusChange) -> list[dict[str, Any]]:
    """The incident message after an acknowledgement or the resolution: no button any more."""
    incident, by, at = change.incident, change.actor, change.at
    if change.status is IncidentStatus.ACKNOWLEDGED:
        line = f"👀 Acknowledged by {by} at {hhmm(at)}"
    elif change.status is IncidentStatus.RESOLVED:
        note = f": {change.note.strip()}" if change.note else ""
        line = f"✅ Resolved by {by} at {hhmm(at)}{note}"
    else:
        raise ValueError("an open incident is not closed")
    return [
        {
            "type": "header",
            "text": plain(
                f"{incident.priority.value} incident {change.status.value} · {incident.title}",
                MAX_HEADER,
            ),
        },
        section(f"*{escape(line)}*", block_id="outcome"),
        *_summary(incident, tickets=change.tickets),
    ]


def page_text(
    incident: IncidentInput, *, level_name: str, loop: int, mention_user_ids: list[str]
) -> str:
    """A page threaded under the incident (mrkdwn); ``loop`` is 0-based."""
    again = f" (round {loop + 1})" if loop else ""
    who = mentions(mention_user_ids)
    return clip(
        f"{who} 📟 Paging *{escape(level_name)}*{again}: {incident.priority.value} "
        f"{escape(incident.title)} is not acknowledged yet. Press *Acknowledge* above, or "
        f"run `kruxt incident ack {incident.incident_id} --as YOUR_EMAIL`.".strip(),
        MAX_TEXT,
    )


def timeline_text(
    incident: IncidentInput, *, entries: list[TimelineEntry], resolved_by: str, note: str
) -> str:
    """The timeline posted when the incident is resolved (mrkdwn, a code block)."""
    head = f"✅ *Resolved by {escape(resolved_by)}*" + (f": {escape(note)}" if note else "")
    lines = [
        escape(f"{e.at.astimezone(UTC):%Y-%m-%d %H:%M} {e.what}").replace("```", "`\u200b``")
        for e in entries
    ]
    fence = "\n*Timeline (UTC)*\n```"
    gap = f"… {{}} more lines: kruxt incident show {incident.incident_id}"
    body = ends_of(lines, MAX_TEXT - len(head) - len(fence) - 3, gap=gap)
    return head + fence + clip(body, MAX_TEXT - len(head) - len(fence) - 3) + "```"


def ends_of(lines: list[str], limit: int, *, gap: str) -> str:
    """The lines joined, or when they run past ``limit`` characters, the first and the last
    that fit around ``gap`` (formatted with how many were left out): how an incident began
    and how it ended, however many tickets joined in between."""
    whole = "\n".join(lines)
    if len(whole) <= limit:
        return whole
    room = limit - len(gap.format(len(lines))) - 2
    first: list[str] = []
    last: list[str] = []
    used = 0
    # Alternate ends so both get about half the room.
    for i in range(len(lines)):
        line = lines[i // 2] if i % 2 == 0 else lines[len(lines) - 1 - i // 2]
        if used + len(line) + 1 > room:
            break
        (first if i % 2 == 0 else last).append(line)
        used += len(line) + 1
    left_out = len(lines) - len(first) - len(last)
    return "\n".join([*first, gap.format(left_out), *reversed(last)])


def sla_text(notice: SlaNotice, *, mention_user_ids: list[str] | None = None) -> str:
    """An SLA warning or breach (mrkdwn)."""
    clock = notice.clock.value.replace("_", " ")
    ticket = f"ticket `{str(notice.ticket_id)[:8]}`"
    what = f"*{notice.priority.value}* {ticket}: {escape(clip(notice.summary, 200))}"
    target = format_duration(notice.target_seconds)
    if notice.event is SlaEventKind.WARNING:
        return (
            f"⏳ SLA warning: the {clock} target ({target}) of {what} "
            f"is due {slack_date(notice.deadline)}."
        )
    who = mentions(mention_user_ids or [])
    overdue = notice.overdue_seconds
    return (
        f"{who} 🚨 SLA breached: the {clock} target ({target}) of "
        f"{what} passed {slack_date(notice.deadline)}"
        + (f", {format_duration(overdue)} ago" if overdue >= 60 else "")
        + "."
    ).strip()


def sla_blocks(
    notice: SlaNotice, *, mention_user_ids: list[str] | None, ticket_url: str | None
) -> list[dict[str, Any]]:
    """An SLA warning or breach as Block Kit, with a link to the ticket when there is one."""
    blocks: list[dict[str, Any]] = [section(sla_text(notice, mention_user_ids=mention_user_ids))]
    if ticket_url is not None:
        blocks.append(context(f"<{ticket_url}|Open the ticket>"))
    return blocks


def sla_notification(notice: SlaNotice) -> str:
    """What a phone shows for an SLA warning or breach."""
    breach = notice.event is SlaEventKind.BREACH
    return clip(
        f"SLA {'breached' if breach else 'warning'}: {notice.priority.value} "
        f"{escape(notice.summary)}",
        MAX_NOTIFICATION,
    )


def incident_notification(incident: IncidentInput) -> str:
    """What a phone shows for a new incident."""
    return clip(
        f"{incident.priority.value} incident: {escape(incident.title)} "
        "(acknowledge to stop paging)",
        MAX_NOTIFICATION,
    )


def incident_closed_notification(
    incident: IncidentInput, *, status: IncidentStatus, by: str
) -> str:
    """What a phone shows when an incident is acknowledged or resolved."""
    return clip(
        f"{incident.priority.value} incident {status.value} by {escape(by)}: "
        f"{escape(incident.title)}",
        MAX_NOTIFICATION,
    )
