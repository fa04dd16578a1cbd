"""Plain-text renderings for the terminal."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from kruxt.adapters.postgres.ticket_history import StaffChanges
from kruxt.models.enums import Channel
from kruxt.models.lifecycle import lifecycle_line

# Types only: a command imports what it renders (the KPI report's module is kpi's alone).
if TYPE_CHECKING:
    from kruxt.adapters.postgres.ticket_history import StaffChange
    from kruxt.models.approvals import PendingApproval
    from kruxt.models.defects import DefectIssueLink
    from kruxt.models.kpi import KpiReport
    from kruxt.models.tickets import TicketSummary, TicketView

# Terminal control sequences hidden in ticket text could move the cursor, rewrite what was
# printed, retitle the window or smuggle hyperlinks. Each alternative starts at one fixed
# introducer and is followed by classes that do not overlap, so matching is linear.
_SEQUENCES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"  # CSI: colours, cursor moves, erases
    r"|(?:\x1b[\]P^_X]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"  # OSC...
    r"|\x1b[ -/]*[0-~]?"  # every other escape
)
# What is left: C0 controls but newline and tab, DEL, C1 controls and the bidi overrides
# and isolates that make text read differently from what it is (U+202E and friends).
_CONTROLS = dict.fromkeys(
    [c for c in range(0x20) if c not in (0x09, 0x0A)]
    + list(range(0x7F, 0xA0))
    + [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
)


def terminal_safe(text: str) -> str:
    """``text`` without escape sequences, control characters or bidi overrides."""
    return _SEQUENCES.sub("", text).translate(_CONTROLS)


def ticket(
    view: TicketView,
    issue: DefectIssueLink | None = None,
    changes: StaffChanges | None = None,
) -> str:
    """A ticket as a readable block: header, triage, then the thread; ``issue``: the GitHub
    issue its product defect is filed as; ``changes``: staff's priority change and resolution."""
    changes = changes or StaffChanges()
    lines = [
        f"Ticket   {view.ticket_id}",
        f"Subject  {view.subject}",
        f"From     {view.requester.name + ' ' if view.requester.name else ''}"
        f"<{view.requester.email}> via {view.channel.value} ({view.external_id})",
        f"Replies  {_replies_go(view)}",
        f"Status   {view.status.value}"
        + (f" · assigned to {view.assignee}" if view.assignee else ""),
        f"Priority {view.priority.value if view.priority else '-'}" + _changed(changes.priority),
        f"Opened   {view.created_at:%Y-%m-%d %H:%M:%S %Z}",
    ]
    if view.first_response_at:
        lines.append(f"Answered {view.first_response_at:%Y-%m-%d %H:%M:%S %Z}")
    if view.resolved_at:
        lines.append(f"Resolved {view.resolved_at:%Y-%m-%d %H:%M:%S %Z}" + _by(changes.resolution))
    lifecycle = lifecycle_line(view.lifecycle) if view.lifecycle is not None else None
    if lifecycle is not None:
        lines.append(f"Lifecycle {lifecycle}")
    if view.previous_ticket_id is not None:
        lines.append(f"Follows  ticket {view.previous_ticket_id} (resolved; its window ended)")
    if view.sla is not None:
        lines.append(f"SLA      {view.sla.line()}" + (" (BREACHED)" if view.sla.breached else ""))
    if view.incident_id is not None:
        lines.append(f"Incident {view.incident_id}")
    if issue is not None:
        lines.append(f"Issue    {defect_issue(issue)}")
    for a in view.approvals:
        lines.append(
            f"Approval {a.approval_id} · {a.kind} {a.playbook} · {a.status}"
            + (f" by {a.decided_by}" if a.decided_by else f" · needs {a.required_role}")
        )
    for run in view.runs:
        lines.append(
            f"Run      {run.run_id} · {run.playbook} · {run.status} · approved by {run.approved_by}"
        )
    if view.triage:
        t = view.triage.result
        fallback = (
            f" (fallback: {view.triage.fallback_reason})" if view.triage.fallback_reason else ""
        )
        lines += [
            "",
            f"Triage   {t.severity.value} · {t.category.value} · playbook {t.playbook or 'none'}"
            f" · confidence {t.confidence:.2f} · by {view.triage.model}{fallback}",
            f"  summary      {t.summary}",
            f"  root cause   {t.probable_root_cause}",
            f"  recommended  {t.recommended_action}",
        ]
        if t.severity_floor_reasons:
            lines.append(f"  floor        {'; '.join(t.severity_floor_reasons)} (severity policy)")
    lines += ["", f"Messages ({len(view.messages)})"]
    for m in view.messages:
        note = " (staff only, not sent)" if m.direction.value == "internal" else ""
        lines.append(f"  [{m.created_at:%H:%M:%S}] {m.direction.value} {m.kind} — {m.author}{note}")
        lines += [textwrap.indent(_fill(p), "      ") for p in m.body.splitlines() if p]
    return terminal_safe("\n".join(lines))


def _fill(paragraph: str) -> str:
    """Wrapped at 90 columns, but a link (or any long word) stays whole on its own line, so it
    can be copied or clicked from the terminal."""
    return textwrap.fill(paragraph, 90, break_long_words=False, break_on_hyphens=False)


def _changed(change: StaffChange | None) -> str:
    if change is None:
        return ""
    why = f": {change.reason}" if change.reason else ""
    return f" · changed from {change.before or '-'} by {change.actor} {change.at:%Y-%m-%d}{why}"


def _by(resolution: StaffChange | None) -> str:
    if resolution is None:
        return ""
    note = f" · note: {resolution.reason}" if resolution.reason else ""
    return f" by {resolution.actor}{note}"


# Where a channel's answers are shown: an answer always goes back where the question came in.
_REPLIES_GO = {
    Channel.ZENDESK: "to Zendesk ticket #{id}: public comments, drafts as internal notes",
    Channel.INTERCOM: "to Intercom conversation {id}: replies, drafts as notes",
}


def _replies_go(view: TicketView) -> str:
    """Where the ticket's answers went (its channel's own thread, else the ticket's)."""
    where = _REPLIES_GO.get(view.channel, "to the ticket's thread (read by the app / the CLI)")
    return where.format(id=view.external_id)


def ticket_table(rows: Sequence[TicketSummary]) -> str:
    """Tickets as an aligned table."""
    if not rows:
        return "no tickets"
    header = f"{'TICKET':36}  {'STATUS':17}  {'PRI':3}  {'CATEGORY':22}  {'OPENED':16}  SUBJECT"
    out = [header]
    for r in rows:
        out.append(
            f"{r.ticket_id!s:36}  {r.status.value:17}  {(r.priority or '-'):3}  "
            f"{(r.category or '-'):22}  {r.created_at:%Y-%m-%d %H:%M}  {r.subject[:50]}"
        )
    return terminal_safe("\n".join(out))


def approvals_table(rows: Sequence[PendingApproval], *, now: datetime) -> str:
    """Pending approvals with their age and time left."""
    if not rows:
        return "no pending approvals"
    out = [
        f"{'APPROVAL':36}  {'KIND':8}  {'PLAYBOOK':22}  {'PRI':3}  {'ROLE':9}  "
        f"{'AGE':>6}  {'LEFT':>6}  SUMMARY"
    ]
    for r in rows:
        out.append(
            f"{r.approval_id!s:36}  {r.kind.value:8}  {r.playbook:22}  {r.severity.value:3}  "
            f"{r.required_role.value:9}  {_span(now - r.requested_at):>6}  "
            f"{_span(r.expires_at - now):>6}  {r.summary[:60]}"
        )
    return terminal_safe("\n".join(out))


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return "over"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"


def defect_issue(issue: DefectIssueLink) -> str:
    """``#12 (open) https://github.com/...``, or that it is not filed yet."""
    seen = f"{issue.occurrences} resolution(s) of this defect"
    if issue.issue_number is None:
        return f"not filed yet (GitHub off or unreachable) · {seen}"
    return f"#{issue.issue_number} ({issue.state}) {issue.issue_url} · {seen}"


def kpi_report(report: KpiReport) -> str:
    """The KPI report as a terminal page (``kruxt kpi``)."""
    from kruxt.starter.kpi_cli import render_table  # it renders with this module's helpers

    return render_table(report)
