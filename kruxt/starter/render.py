"""Plain-text renderings for the terminal."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from kruxt.models.tickets import TicketSummary, TicketView


def ticket(view: TicketView) -> str:
    """A ticket as a readable block: header, triage, then the thread."""
    lines = [
        f"Ticket   {view.ticket_id}",
        f"Subject  {view.subject}",
        f"From     {view.requester.name + ' ' if view.requester.name else ''}"
        f"<{view.requester.email}> via {view.channel.value}",
        f"Status   {view.status.value}",
        f"Opened   {view.created_at:%Y-%m-%d %H:%M:%S %Z}",
    ]
    if view.first_response_at:
        lines.append(f"Answered {view.first_response_at:%Y-%m-%d %H:%M:%S %Z}")
    if view.resolved_at:
        lines.append(f"Resolved {view.resolved_at:%Y-%m-%d %H:%M:%S %Z}")
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
    lines += ["", f"Messages ({len(view.messages)})"]
    for m in view.messages:
        lines.append(f"  [{m.created_at:%H:%M:%S}] {m.direction.value} {m.kind} — {m.author}")
        lines += [textwrap.indent(textwrap.fill(p, 90), "      ") for p in m.body.splitlines() if p]
    return "\n".join(lines)


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
    return "\n".join(out)
