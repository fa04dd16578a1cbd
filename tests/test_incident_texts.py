"""What a large outage's incident says: pages name the last tickets and count them all; the
resolved timeline in Slack keeps how it began and how it ended, within Slack's limit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from kruxt.adapters.email_texts import PAGE_TICKETS, render_page_email
from kruxt.adapters.slack import timeline_text
from kruxt.adapters.slack.blocks import MAX_TEXT
from kruxt.models.enums import Priority
from kruxt.models.incidents import AttachTicket, TimelineEntry
from tests.support import login_outage

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def ticket(n: int) -> AttachTicket:
    return AttachTicket(
        ticket_id=uuid.uuid4(), workflow_id=f"ticket-{n}", priority=Priority.P2, summary=f"#{n}"
    )


INCIDENT = login_outage(opened_at=NOW, first_ticket=ticket(0))


def test_a_page_names_the_last_tickets_and_counts_them_all() -> None:
    held = [ticket(n) for n in range(1, 31)]
    mail = render_page_email(
        INCIDENT,
        to="oncall@kruxt.dev",
        level=INCIDENT.policy.levels[0],
        loop=0,
        tickets=held,
        ticket_count=3512,
        public_url="http://kruxt.test",
        slack_channel=None,
    )
    body = mail.text
    assert f"Tickets (3512, the last {PAGE_TICKETS} here):" in body
    named = [line for line in body.splitlines() if line.startswith("- ")]
    assert f"Tickets (3512, the last {PAGE_TICKETS} here)</h3>" in mail.html
    assert [line.split()[3] for line in named] == [t.summary for t in held[-PAGE_TICKETS:]]


def test_a_page_of_a_small_incident_names_every_ticket() -> None:
    mail = render_page_email(
        INCIDENT,
        to="oncall@kruxt.dev",
        level=INCIDENT.policy.levels[0],
        loop=0,
        tickets=[ticket(1), ticket(2)],
        public_url="http://kruxt.test",
        slack_channel=None,
    )
    assert "Tickets (2):" in mail.text
    assert "Tickets (2)</h3>" in mail.html


def test_the_timeline_of_thousands_keeps_its_beginning_and_its_end() -> None:
    entries = [TimelineEntry(at=NOW, what="opened by ticket 0 (P1): Login API returns 500")]
    entries += [
        TimelineEntry(at=NOW + timedelta(seconds=n), what=f"ticket {uuid.uuid4()} (P2) attached")
        for n in range(3000)
    ]
    entries.append(TimelineEntry(at=NOW + timedelta(hours=2), what="resolved by maya: failover"))
    text = timeline_text(INCIDENT, entries=entries, resolved_by="maya", note="failover")
    assert len(text) <= MAX_TEXT
    assert "opened by ticket 0 (P1)" in text
    assert text.endswith("resolved by maya: failover```")
    left_out = text.split("… ")[1].split(" more lines")[0]
    shown = text.count(" attached")
    assert int(left_out) + shown == 3000
    assert f"kruxt incident show {INCIDENT.incident_id}" in text


def test_a_short_timeline_is_whole() -> None:
    entries = [TimelineEntry(at=NOW, what=f"step {n}") for n in range(5)]
    text = timeline_text(INCIDENT, entries=entries, resolved_by="maya", note="")
    assert all(f"step {n}" in text for n in range(5))
    assert "more lines" not in text
