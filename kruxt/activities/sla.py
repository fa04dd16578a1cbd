"""SLA side effects: warnings and breaches told to people and recorded; met clocks recorded.

A warning goes to Slack (the approval channel, where people already watch tickets). A
breach goes to the incident channel and by e-mail to the first level of the escalation
policy. Both become a KPI event (``sla_warning`` / ``sla_breached``, value: seconds
overdue) and an audit entry; a met clock becomes ``sla_met`` with the time it took.
"""

from __future__ import annotations

from temporalio import activity

from kruxt.activities._keys import activity_key
from kruxt.activities._notify import most_hopeful, notify_failure
from kruxt.adapters import metrics
from kruxt.adapters.email import Mailer
from kruxt.adapters.email_texts import render_breach_email
from kruxt.adapters.notifier import NotifyError, SlaNotifier
from kruxt.adapters.postgres.incidents import SlaEventStore
from kruxt.models.incidents import EscalationPolicy
from kruxt.models.sla import SlaEventKind, SlaMet, SlaNotice

__all__ = ["SlaActivities"]


class SlaActivities:
    """Tell people about SLA warnings and breaches; record them and met clocks as KPIs."""

    def __init__(
        self,
        store: SlaEventStore,
        *,
        chat: SlaNotifier | None,
        mailer: Mailer | None,
        policy: EscalationPolicy,
        public_url: str,
    ) -> None:
        self._store = store
        self._slack = chat  # the chat channel (Slack today)
        self._mailer = mailer
        self._policy = policy
        self._public_url = public_url

    @activity.defn
    async def notify_sla(self, notice: SlaNotice) -> list[str]:
        """Send the warning or breach and record it; returns who was told (nobody while the
        ticket's incident is open: the notice is left to it).

        Recorded once per activity: a retry after the record is a no-op; a retry before it
        may repeat a Slack message, never the KPI event.
        """
        key = activity_key()
        if await self._store.recorded(key):
            return []
        # While the ticket's incident is open it pages people about the very cause that holds
        # the ticket up: thousands of tickets of one outage would each post their warning and
        # breach on top. The notice is recorded all the same, and names the incident.
        incident_id = await self._store.open_incident_of(notice.ticket_id)
        told = [] if incident_id is not None else await self._send(notice)
        await self._store.record_notice(
            notice=notice, recipients=told, idempotency_key=key, incident_id=incident_id
        )
        if notice.event is SlaEventKind.BREACH:
            metrics.sla_breached(notice.clock.value, notice.priority.value)
        return told

    async def _send(self, notice: SlaNotice) -> list[str]:
        """Post the notice to Slack and mail a breach to the first level; who was told.

        Raises:
            ApplicationError: nothing went out (retryable when a retry may help).
        """
        told: list[str] = []
        errors: list[NotifyError] = []
        breach = notice.event is SlaEventKind.BREACH
        first = self._policy.levels[0]
        # Each channel on its own: a broken Slack must not silence the e-mail, or vice versa.
        if self._slack is not None:
            try:
                await self._slack.post_sla(
                    notice, mention_user_ids=first.slack_user_ids if breach else None
                )
                told.append("slack")
            except NotifyError as exc:
                errors.append(exc)
        if breach and self._mailer is not None:
            url = f"{self._public_url.rstrip('/')}/v1/tickets/{notice.ticket_id}"
            for person in first.emails:
                try:
                    await self._mailer.send(
                        render_breach_email(notice, to=str(person), ticket_url=url)
                    )
                except NotifyError as exc:
                    errors.append(exc)
                else:
                    told.append(str(person))
        if errors and not told:
            # Nothing went out, so a retry repeats nothing: retry when it may help.
            cause = most_hopeful(errors)
            raise notify_failure(cause) from cause
        return told

    @activity.defn
    async def record_sla_met(self, met: SlaMet) -> None:
        """KPI ``sla_met``: the clock stopped within its target, after ``met.seconds``."""
        await self._store.record_met(met=met, idempotency_key=activity_key())
