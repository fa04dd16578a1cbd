"""Every notification mail's words in one place: approval requests, SLA breaches, pages.

Everything taken from a ticket, a model or an approver is escaped in the HTML part:
summaries and drafts come from customers and models, not from us.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from typing import Any

from kruxt.adapters.durations import format_duration
from kruxt.adapters.email import EmailMessage, one_line
from kruxt.models.approvals import ApprovalKind, ApprovalRequest
from kruxt.models.incidents import AttachTicket, EscalationLevel, IncidentInput
from kruxt.models.sla import SlaNotice

__all__ = [
    "action_title",
    "format_utc",
    "preview_lines",
    "render_approval_email",
    "render_breach_email",
    "render_page_email",
    "render_sign_in_email",
]


def format_utc(moment: datetime) -> str:
    """``2025-03-01 14:30 UTC``."""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def action_title(request: ApprovalRequest) -> str:
    """What is asked, in a few words: ``auth login`` or ``roll back auth login``."""
    playbook = request.playbook.replace("_", " ")
    return f"roll back {playbook}" if request.kind is ApprovalKind.ROLLBACK else playbook


_PREVIEW_ORDER = {"before": 0, "after": 1}
# A page names at most this many of the incident's tickets (the latest): an outage has more.
PAGE_TICKETS = 20


def preview_lines(preview: list[dict[str, Any]]) -> list[str]:
    """The dry-run preview, one line per step: ``s1: before {...}; after {...}``."""
    lines = []
    for number, item in enumerate(preview, start=1):
        step = str(item.get("step", number))
        # Stored as jsonb, whose keys come back shortest first ("after" before "before").
        keys = sorted(item.keys() - {"step"}, key=lambda k: (_PREVIEW_ORDER.get(k, 2), k))
        parts = [f"{key} {_compact(item[key])}" for key in keys]
        lines.append(f"{step}: {'; '.join(parts) or 'no change previewed'}")
    return lines


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def render_approval_email(
    request: ApprovalRequest,
    *,
    approver_email: str,
    approver_name: str,
    approve_url: str,
    reject_url: str,
) -> EmailMessage:
    """The approval request as a mail with its two personal links.

    Everything taken from the request is escaped in the HTML part: summaries and drafts
    come from customers and models, not from us.
    """
    ticket = str(request.ticket_id)[:8]
    subject = one_line(
        f"[{request.severity.value}] Approve: {action_title(request)} for ticket {ticket}"
        f" ({request.summary})",
        150,
    )
    deadline = format_utc(request.expires_at)
    preview = preview_lines(request.preview) or ["(no dry-run preview)"]
    facts = (
        f"Severity {request.severity.value} · triage confidence {request.confidence:.0%} · "
        f"playbook {request.playbook} · needs role {request.required_role.value}"
    )
    how = (
        "Each link opens a page that shows the request and asks you to confirm: nothing is "
        f"decided until you press the button there. The links are yours alone, work once and "
        f"expire {deadline}. Please do not forward this mail."
    )
    sections: list[tuple[str, str]] = [
        ("Technical explanation", request.technical_explanation),
        ("Dry-run preview", "\n".join(preview)),
        ("Rollback plan", request.rollback_plan),
    ]
    if request.draft_reply:
        sections.append(("Drafted reply to the customer", request.draft_reply))

    text_lines = [
        f"Hi {approver_name},",
        "",
        request.plain_explanation,
        "",
        f"Approve: {approve_url}",
        f"Reject:  {reject_url}",
        "",
        how,
        "",
        f"Ticket {request.ticket_id}: {request.summary}",
        facts,
        f"Decide by: {deadline} (after that the request expires and nothing is changed)",
    ]
    for title, body in sections:
        text_lines += ["", title, "-" * len(title), body]
    text = "\n".join(text_lines) + "\n"

    e = html.escape
    pre = "white-space:pre-wrap;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px"
    button = (
        "display:inline-block;padding:12px 22px;margin:4px 8px 4px 0;border-radius:6px;"
        "color:#fff;text-decoration:none;font-weight:bold;background:"
    )
    html_sections = "".join(
        f'<h3 style="margin:20px 0 6px">{e(title)}</h3><div style="{pre}">{e(body)}</div>'
        for title, body in sections
    )
    html_body = (
        "<!doctype html><html><body "
        'style="font-family:-apple-system,Segoe UI,Roboto,sans-serif;max-width:640px;'
        'margin:0 auto;padding:16px;color:#1a1a1a;line-height:1.45">'
        f"<p>Hi {e(approver_name)},</p>"
        f'<p style="font-size:16px;white-space:pre-wrap">{e(request.plain_explanation)}</p>'
        f'<p><a href="{e(approve_url)}" style="{button}#1a7f37">Approve…</a>'
        f'<a href="{e(reject_url)}" style="{button}#b42318">Reject…</a></p>'
        f'<p style="font-size:13px;color:#555">{e(how)}</p>'
        f'<h3 style="margin:20px 0 6px">Ticket {e(ticket)}: {e(request.summary)}</h3>'
        f"<p>{e(facts)}<br>Decide by: <strong>{e(deadline)}</strong></p>"
        f"{html_sections}"
        "</body></html>"
    )
    return EmailMessage(
        to=approver_email,
        to_name=approver_name,
        subject=subject,
        text=text,
        html=html_body,
        links={"approve": approve_url, "reject": reject_url},
        about=f"{action_title(request)} on ticket {ticket}",
    )


# --- the staff console's sign-in link ---------------------------------------------------


def render_sign_in_email(*, to: str, name: str, url: str, expires_at: datetime) -> EmailMessage:
    """The console's single-use sign-in link, to a person of the approvers directory."""
    until = format_utc(expires_at)
    text = (
        f"Hello {name},\n\nSign in to the KRUXT support console:\n{url}\n\n"
        f"The link works once, until {until}. If you did not ask for it, ignore this mail: "
        "nobody can use it without this mailbox.\n"
    )
    e = html.escape
    body = (
        '<!doctype html><html><body style="font-family:-apple-system,Segoe UI,Roboto,'
        'sans-serif;max-width:640px;margin:0 auto;padding:16px;color:#1a1a1a">'
        f"<p>Hello {e(name)},</p>"
        f'<p><a href="{e(url)}" style="display:inline-block;padding:12px 20px;'
        "background:#1f4e8c;color:#fff;border-radius:6px;font-weight:bold;"
        'text-decoration:none">Sign in to the support console</a></p>'
        f"<p>The link works once, until {e(until)}. If you did not ask for it, ignore this "
        "mail.</p></body></html>"
    )
    return EmailMessage(
        to=to,
        to_name=name,
        subject="Your sign-in link to the KRUXT support console",
        text=text,
        html=body,
        links={"sign in": url},
        about="the support console",
    )


# --- SLA breaches and incident pages -------------------------------------------------


def render_breach_email(notice: SlaNotice, *, to: str, ticket_url: str) -> EmailMessage:
    """An SLA breach as a mail to the escalation policy's first level."""
    clock = notice.clock.value.replace("_", " ")
    subject = (
        f"[{notice.priority.value}] SLA breached ({clock}): ticket {str(notice.ticket_id)[:8]}"
        f" {notice.summary}"
    )[:150]
    lines = [
        f"The {clock} target of a {notice.priority.value} ticket has passed.",
        "",
        f"Ticket: {notice.summary}",
        f"Target: {format_duration(notice.target_seconds)}; deadline {format_utc(notice.deadline)}"
        + (
            f"; overdue by {format_duration(notice.overdue_seconds)}"
            if notice.overdue_seconds
            else ""
        ),
        f"Open it: {ticket_url}",
        "",
        f"Or on the command line: kruxt ticket show {notice.ticket_id}",
    ]
    e = html.escape
    body = (
        '<!doctype html><html><body style="font-family:-apple-system,Segoe UI,Roboto,'
        'sans-serif;max-width:640px;margin:0 auto;padding:16px">'
        f"<p>The <strong>{e(clock)}</strong> target of a "
        f"<strong>{e(notice.priority.value)}</strong> ticket has passed.</p>"
        f'<p style="font-size:16px">{e(notice.summary)}</p>'
        f"<p>Target {e(format_duration(notice.target_seconds))}; deadline "
        f"{e(format_utc(notice.deadline))}</p>"
        f'<p><a href="{e(ticket_url)}">Open the ticket</a></p>'
        "</body></html>"
    )
    return EmailMessage(
        to=to,
        subject=subject,
        text="\n".join(lines) + "\n",
        html=body,
        links={"open": ticket_url},
        about=f"SLA-breached ticket {str(notice.ticket_id)[:8]}",
    )


def _ticket_url(public_url: str, ticket: AttachTicket) -> str:
    return f"{public_url.rstrip('/')}/v1/tickets/{ticket.ticket_id}"


def render_page_email(
    incident: IncidentInput,
    *,
    to: str,
    level: EscalationLevel,
    loop: int,
    tickets: list[AttachTicket],
    public_url: str,
    slack_channel: str | None,
    ack_url: str | None = None,
    ticket_count: int = 0,
) -> EmailMessage:
    """The page as a mail: what is broken, how to acknowledge, the tickets.

    With ``ack_url`` (a signed link for this person) the mail leads with it; the CLI
    command is always there as the fallback. A large outage's incident has thousands of
    tickets: the mail names the last ``PAGE_TICKETS`` of ``ticket_count``.
    """
    count = max(ticket_count, len(tickets))
    tickets = tickets[-PAGE_TICKETS:]
    heading = (
        f"Tickets ({count})"
        if count == len(tickets)
        else (f"Tickets ({count}, the last {len(tickets)} here)")
    )
    ack = f"kruxt incident ack {incident.incident_id} --as {to}"
    again = f" (round {loop + 1})" if loop else ""
    subject = f"[{incident.priority.value}] Incident: {incident.title}"[:140] + " (please ack)"
    if ack_url:
        how = [
            f"Acknowledge it (this stops the paging):  {ack_url}",
            f"or from a terminal:  {ack}",
        ]
    else:
        how = [f"Acknowledge it (this stops the paging):  {ack}"]
    if slack_channel:
        how.append(f"or press Acknowledge on the incident in Slack ({slack_channel}).")
    ticket_lines = [
        f"- {str(t.ticket_id)[:8]} {t.priority.value} {t.summary}  {_ticket_url(public_url, t)}"
        for t in tickets
    ]
    text = "\n".join(
        [
            f"A {incident.priority.value} incident is open and nobody has acknowledged it yet.",
            "",
            incident.title,
            "",
            *how,
            "",
            f"You are paged as {level.name}{again}.",
            "",
            f"{heading}:",
            *ticket_lines,
            "",
            f"Incident {incident.incident_id}, opened {format_utc(incident.opened_at)}, "
            f"category {incident.category.value}.",
        ]
    )
    e = html.escape
    items = "".join(
        f'<li><a href="{e(_ticket_url(public_url, t))}">{e(str(t.ticket_id)[:8])}</a> '
        f"{e(t.priority.value)} {e(t.summary)}</li>"
        for t in tickets
    )
    slack_line = (
        f"<p>or press <strong>Acknowledge</strong> on the incident in Slack "
        f"({e(slack_channel)}).</p>"
        if slack_channel
        else ""
    )
    if ack_url:
        ack_html = (
            f'<p><a href="{e(ack_url)}" style="display:inline-block;padding:12px 20px;'
            "background:#b42318;color:#fff;border-radius:6px;font-weight:bold;"
            "text-decoration:none\">Acknowledge: I'm on it</a></p>"
            "<p>This stops the paging. Or from a terminal:</p>"
        )
    else:
        ack_html = "<p>Acknowledge it (this stops the paging):</p>"
    body = (
        '<!doctype html><html><body style="font-family:-apple-system,Segoe UI,Roboto,'
        'sans-serif;max-width:640px;margin:0 auto;padding:16px;color:#1a1a1a">'
        f"<p>A <strong>{e(incident.priority.value)}</strong> incident is open and nobody has "
        "acknowledged it yet.</p>"
        f'<p style="font-size:17px"><strong>{e(incident.title)}</strong></p>'
        f"{ack_html}"
        f'<pre style="background:#f4f4f4;padding:8px">{e(ack)}</pre>'
        f"{slack_line}"
        f"<p>You are paged as {e(level.name)}{e(again)}.</p>"
        f"<h3>{e(heading)}</h3><ul>{items}</ul>"
        f'<p style="color:#555;font-size:13px">Incident {e(str(incident.incident_id))}, '
        f"opened {e(format_utc(incident.opened_at))}.</p></body></html>"
    )
    return EmailMessage(
        to=to,
        subject=subject,
        text=text + "\n",
        html=body,
        links={"acknowledge": ack_url} if ack_url else {},
        about=f"{incident.priority.value} incident {str(incident.incident_id)[:8]}",
    )
