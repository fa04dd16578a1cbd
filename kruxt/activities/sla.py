"""SLA side effects: warnings and breaches told to people and recorded; met clocks recorded.

A warning goes to Slack (the approval channel, where people already watch tickets). A
breach goes to the incident channel and by e-mail to the first level of the escalation
policy. Both become a KPI event (``sla_warning`` / ``sla_breached``, value: seconds
overdue) and an audit entry; a met clock becomes ``sla_met`` with the time it took.
"""

from __future__ import annotations

import html

from temporalio import activity

from kruxt.activities._keys import activity_key
from kruxt.activities._notify import notify_failure
from kruxt.adapters.email import EmailMessage, Mailer, MailRejected, MailUnavailable, format_utc
from kruxt.adapters.postgres.incidents import SlaEventStore
from kruxt.adapters.slack import SlackError, SlackUnavailable
from kruxt.adapters.slack_incidents import SlackIncidents
from kruxt.models.incidents import EscalationPolicy
from kruxt.models.sla import SlaEventKind, SlaMet, SlaNotice

__all__ = ["SlaActivities", "render_breach_email"]


def _minutes(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes / 60:.1f} h"


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
        f"Target: {_minutes(notice.target_seconds)}; deadline {format_utc(notice.deadline)}"
        + (f"; overdue by {_minutes(notice.overdue_seconds)}" if notice.overdue_seconds else ""),
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
        f"<p>Target {e(_minutes(notice.target_seconds))}; deadline "
        f"{e(format_utc(notice.deadline))}</p>"
        f'<p><a href="{e(ticket_url)}">Open the ticket</a></p>'
        "</body></html>"
    )
    return EmailMessage(
        to=to,
        subject=subject,
        text="\n".join(lines) + "\n",
        html=body,
        links={"ticket": ticket_url},
    )


class SlaActivities:
    """Tell people about SLA warnings and breaches; record them and met clocks as KPIs."""

    def __init__(
        self,
        store: SlaEventStore,
        *,
        slack: SlackIncidents | None,
        mailer: Mailer | None,
        policy: EscalationPolicy,
        public_url: str,
    ) -> None:
        self._store = store
        self._slack = slack
        self._mailer = mailer
        self._policy = policy
        self._public_url = public_url

    @activity.defn
    async def notify_sla(self, notice: SlaNotice) -> list[str]:
        """Send the warning or breach and record it; returns who was told.

        Recorded once per activity: a retry after the record is a no-op; a retry before it
        may repeat a Slack message, never the KPI event.
        """
        key = activity_key()
        if await self._store.recorded(key):
            return []
        told: list[str] = []
        errors: list[SlackError | MailUnavailable | MailRejected] = []
        breach = notice.event is SlaEventKind.BREACH
        first = self._policy.levels[0]
        # Each channel on its own: a broken Slack must not silence the e-mail, or vice versa.
        if self._slack is not None:
            try:
                await self._slack.post_sla(
                    notice, mention_user_ids=first.slack_user_ids if breach else None
                )
                told.append("slack")
            except SlackError as exc:
                errors.append(exc)
        if breach and self._mailer is not None:
            url = f"{self._public_url.rstrip('/')}/v1/tickets/{notice.ticket_id}"
            for person in first.emails:
                try:
                    await self._mailer.send(
                        render_breach_email(notice, to=str(person), ticket_url=url)
                    )
                except (MailUnavailable, MailRejected) as exc:
                    errors.append(exc)
                else:
                    told.append(str(person))
        if errors and not told:
            # Nothing went out, so a retry repeats nothing: retry when it may help.
            worth = [e for e in errors if isinstance(e, SlackUnavailable | MailUnavailable)]
            raise notify_failure((worth or errors)[0]) from (worth or errors)[0]
        await self._store.record_notice(notice=notice, recipients=told, idempotency_key=key)
        return told

    @activity.defn
    async def record_sla_met(self, met: SlaMet) -> None:
        """KPI ``sla_met``: the clock stopped within its target, after ``met.seconds``."""
        await self._store.record_met(met=met, idempotency_key=activity_key())
