"""A day of mixed tickets through the real TicketWorkflow, on the time-skipping server: who is
paged? Single users' P2s page nobody; a cluster of P2s of one cause and the gym's P1 outage do.

Triage is the rules triager; Slack and SendGrid are the local fakes, through their official
clients. Pages are counted where they land: the incident channel's incident messages, the
SendGrid page mails, and the ``incident.paged`` rows of the audit log.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from kruxt.adapters.email import SendGridMailer
from kruxt.adapters.slack import ACTION_INCIDENT_ACK
from kruxt.models.enums import Priority, TicketStatus
from kruxt.models.incidents import EscalationLevel, EscalationPolicy
from kruxt.models.sla import ClockKind
from kruxt.models.tickets import TicketState
from kruxt.workers.composition import Outside, build_worker
from tests.fakes.sendgrid_server import FakeSendGridServer
from tests.fakes.slack_server import FakeSlackServer
from tests.support import intake, slack_incidents, start_ticket, state_where

CHANNEL = "C-INCIDENTS"
ONCALL = "oncall@kruxt.app"
POLICY = EscalationPolicy(
    levels=[
        EscalationLevel(
            name="on-call", emails=[ONCALL], slack_user_ids=["UONCALL"], delay_minutes=30
        )
    ],
    loops=1,
)

# (subject, body): one user each, each cause alone within the cluster window.
SINGLE_P2 = [
    ("Locked out", "I am locked out of my account after too many attempts."),
    ("Charged twice", "I was charged twice for my membership this month."),
    ("Workout not saving", "My workout fails to save every time I press finish."),
]
CLUSTER_P2 = [
    ("Workout won't save", "My workout fails to save every time, since this morning."),
    ("Can't save my session", "Today my workout fails to save when I press finish."),
    ("Workout fails to save", "My workout fails to save when I press finish, I cannot log it."),
]
OUTAGE_P1 = (
    "Nobody at our gym can log in",
    "Since 7am none of our members can log in, everyone gets an error. Whole gym down.",
)


async def _arrive(
    ts_env: WorkflowEnvironment, queue: str, subject: str, body: str
) -> tuple[WorkflowHandle[Any, Any], TicketState]:
    """A ticket arrives; returns once it is triaged, has its incident decision and is routed."""
    handle = await start_ticket(ts_env.client, intake(subject=subject, body=body), task_queue=queue)
    state = await state_where(
        handle, lambda s: s.status not in (TicketStatus.NEW, TicketStatus.TRIAGED)
    )
    return handle, state


def _clocks(state: TicketState) -> dict[ClockKind, int]:
    assert state.sla is not None, state
    return {c.kind: int(c.target_seconds) for c in state.sla.clocks}


async def test_a_day_of_tickets_pages_only_for_the_cluster_and_the_outage(
    ts_env: WorkflowEnvironment,
    pool: asyncpg.Pool[Any],
    task_queue: str,
    slack_server: FakeSlackServer,
    sendgrid: FakeSendGridServer,
) -> None:
    outside = Outside(
        incident_slack=slack_incidents(slack_server, incident_channel=CHANNEL),
        mailer=SendGridMailer(sendgrid.api_key, "autopilot@kruxt.app", host=sendgrid.base_url),
        escalation=POLICY,
    )
    async with build_worker(ts_env.client, task_queue=task_queue, pool=pool, outside=outside):
        # Morning: three users, three P2s of three causes, an hour apart.
        singles = []
        for subject, body in SINGLE_P2:
            _, state = await _arrive(ts_env, task_queue, subject, body)
            singles.append(state)
            await ts_env.sleep(timedelta(hours=1))
        # Late morning: three users hit by one cause within 20 minutes.
        cluster = []
        for subject, body in CLUSTER_P2:
            cluster.append(await _arrive(ts_env, task_queue, subject, body))
            await ts_env.sleep(timedelta(minutes=10))
        # Afternoon: the gym's outage, with the same triaged cause as the morning's lockout.
        await ts_env.sleep(timedelta(hours=2))
        _, outage = await _arrive(ts_env, task_queue, *OUTAGE_P1)

        # Every ticket has its severity and its SLA clocks (P1/P2: 15 minutes to respond).
        for state in [*singles, *(s for _, s in cluster), outage]:
            assert state.priority is (Priority.P1 if state is outage else Priority.P2), state
            assert _clocks(state)[ClockKind.FIRST_RESPONSE] == 15 * 60
        assert [s.incident_id for s in singles] == [None, None, None]
        assert outage.incident_id is not None
        # The cluster's first two tickets learn of the incident their third one opened.
        tickets = []
        for handle, _ in cluster:
            tickets.append(await state_where(handle, lambda s: s.incident_id is not None))
        cluster_incident = tickets[0].incident_id
        assert {s.incident_id for s in tickets} == {cluster_incident}
        assert cluster_incident != outage.incident_id

    async with pool.acquire() as conn:
        paged = await conn.fetch(
            "SELECT DISTINCT (details->>'incident_id')::uuid AS id FROM support_audit_log "
            "WHERE action = 'incident.paged'"
        )
        opened = await conn.fetch("SELECT id, priority, title FROM support_incidents")
    assert {r["id"] for r in paged} == {cluster_incident, outage.incident_id}
    titles = {r["id"]: (r["priority"], r["title"]) for r in opened}
    assert set(titles) == {cluster_incident, outage.incident_id}
    # The outage's incident is its own, titled by it, not by the morning's lockout.
    assert titles[outage.incident_id][0] == "P1"
    assert OUTAGE_P1[0] in titles[outage.incident_id][1]
    assert titles[cluster_incident][0] == "P2"

    # Slack: one incident message for each, none for a single user's ticket.
    roots = [
        c.body
        for c in slack_server.calls_to("chat.postMessage")
        if c.body.get("channel") == CHANNEL and ACTION_INCIDENT_ACK in str(c.body.get("blocks"))
    ]
    headers = sorted(str(r["blocks"][0]["text"]["text"]) for r in roots)
    assert [h.split(" · ")[0] for h in headers] == ["🚨 P1 incident", "🚨 P2 incident"]
    # SendGrid: the page mails name only those two incidents.
    pages = [
        r.json["subject"]
        for r in sendgrid.requests
        if r.status == 202 and "Incident:" in r.json["subject"]
    ]
    assert sorted(p[:4] for p in pages) == ["[P1]", "[P2]"]
    for subject, _ in SINGLE_P2:
        assert not any(subject in p for p in pages + headers), subject
