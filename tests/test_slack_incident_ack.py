"""The incident page's Acknowledge button, end to end: a P1 ticket opens an incident through
the real TicketWorkflow and IncidentWorkflow, Slack (the fake, through slack_sdk) shows the
button, and signed clicks reach the real API's Slack routes and IncidentService."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from kruxt.adapters.approvers import Approver, ApproverDirectory
from kruxt.adapters.email import OutboxMailer
from kruxt.adapters.postgres.incidents import IncidentStore
from kruxt.adapters.slack import ACTION_INCIDENT_ACK
from kruxt.models.enums import Priority
from kruxt.models.incidents import (
    EscalationLevel,
    EscalationPolicy,
    IncidentState,
    IncidentStatus,
    incident_workflow_id,
)
from kruxt.models.playbooks import ApproverRole
from kruxt.starter.api.slack_routes import SlackContext
from kruxt.starter.incidents import IncidentService, responders_of
from kruxt.workers.composition import Outside, build_worker
from kruxt.workflows.incident import IncidentWorkflow
from tests.fakes.slack_server import FakeSlackServer
from tests.support import (
    SLACK_SIGNING_SECRET,
    api_with_slack,
    asgi_client,
    eventually,
    intake,
    outbox_mails,
    slack_approvals,
    slack_context,
    slack_incidents,
    slack_interaction,
    start_ticket,
    state_where,
)

INCIDENTS = "C0INCIDENTS"
OUTAGE = {
    "subject": "Nobody at our gym can log in",
    "body": "Since 7am none of our members can log in, everyone gets an error. Whole gym down.",
}
POLICY = EscalationPolicy(
    levels=[
        EscalationLevel(
            name="on-call", emails=["oncall@kruxt.app"], slack_user_ids=["UONCALL"], delay_minutes=5
        ),
        EscalationLevel(
            name="founders", emails=["maya@kruxt.app"], slack_user_ids=["UMAYA"], delay_minutes=10
        ),
    ],
    loops=2,
)
# Maya is on the policy and in the approvers directory: Slack identifies her by her user id.
APPROVERS = ApproverDirectory(
    [
        Approver(
            name="Maya", email="maya@kruxt.app", slack_user_id="UMAYA", roles=[ApproverRole.ADMIN]
        )
    ]
)


@dataclass
class Stack:
    ts: WorkflowEnvironment
    http: httpx.AsyncClient
    slack: FakeSlackServer
    ctx: SlackContext
    outbox: Path
    pool: asyncpg.Pool[Any]
    queue: str

    async def click(self, user_id: str, action: dict[str, Any], *, name: str) -> None:
        """A button click as Slack posts it: form-encoded payload, v0 HMAC signature."""
        payload = {
            "type": "block_actions",
            "user": {"id": user_id},
            "channel": {"id": INCIDENTS},
            "response_url": self.slack.response_url(name),
            "actions": [action],
        }
        body, headers = slack_interaction(payload, secret=SLACK_SIGNING_SECRET)
        r = await self.http.post("/slack/interactions", content=body, headers=headers)
        assert r.status_code == 200

    async def told(self, name: str) -> str:
        """What the clicking person was told (ephemerally, through the response_url)."""

        async def answered() -> str | None:
            await self.ctx.drain()
            said = [c for c in self.slack.calls_to("response") if c.path.endswith(f"/{name}")]
            return str(said[-1].body.get("text")) if said else None

        return await eventually(answered)

    def pages_in_thread(self, root_ts: str) -> list[str]:
        """The text of each page threaded under the incident's message."""
        return [
            str(c.body.get("text"))
            for c in self.slack.calls_to("chat.postMessage")
            if c.body.get("thread_ts") == root_ts
        ]

    def paged_mails(self, incident_id: uuid.UUID) -> list[str]:
        mails = outbox_mails(self.outbox)
        return [str(mail["To"]) for mail in mails if str(incident_id) in mail.as_string()]


@pytest.fixture
async def stack(
    ts_env: WorkflowEnvironment,
    pool: asyncpg.Pool[Any],
    task_queue: str,
    tmp_path: Path,
    slack_server: FakeSlackServer,
) -> AsyncIterator[Stack]:
    outbox = tmp_path / "outbox"
    store = IncidentStore(pool)
    ctx = slack_context(
        ts_env.client,
        pool,
        approvers=APPROVERS,
        slack=slack_approvals(slack_server),
        incidents=IncidentService(
            ts_env.client, store=store, responders=responders_of(POLICY, APPROVERS)
        ),
        audit_incident_refusal=store.record_refused_ack,
    )
    api = api_with_slack(ts_env.client, pool, task_queue=task_queue, slack=ctx)
    outside = Outside(
        approvers=APPROVERS,
        incident_slack=slack_incidents(slack_server, incident_channel=INCIDENTS),
        mailer=OutboxMailer(outbox),
        escalation=POLICY,
    )
    async with (
        build_worker(ts_env.client, task_queue=task_queue, pool=pool, outside=outside),
        asgi_client(api) as http,
    ):
        yield Stack(ts_env, http, slack_server, ctx, outbox, pool, task_queue)
        await ctx.drain()


async def open_p1(stack: Stack) -> WorkflowHandle[Any, Any]:
    """An outage ticket, triaged P1 by the real workflow, which opens the incident."""
    ticket = intake(subject=OUTAGE["subject"], body=OUTAGE["body"])
    handle = await start_ticket(stack.ts.client, ticket, task_queue=stack.queue)
    state = await state_where(handle, lambda state: state.incident_id is not None, timeout=60)
    assert state.priority is Priority.P1
    assert state.incident_id is not None
    return stack.ts.client.get_workflow_handle_for(
        IncidentWorkflow.run, incident_workflow_id(state.incident_id)
    )


async def pages(handle: WorkflowHandle[Any, Any], count: int) -> IncidentState:
    async def probe() -> IncidentState | None:
        state: IncidentState = await handle.query(IncidentWorkflow.state)
        return state if len(state.pages) >= count else None

    state = await eventually(probe, timeout=60)
    assert len(state.pages) == count, state.pages
    return state


async def paged_with_button(
    stack: Stack,
) -> tuple[WorkflowHandle[Any, Any], IncidentState, dict[str, Any]]:
    """A P1's incident, paged once, and the Acknowledge button its activity posted to the
    incident channel."""
    incident = await open_p1(stack)
    state = await pages(incident, 1)
    [root] = [
        c.body
        for c in stack.slack.calls_to("chat.postMessage")
        if c.body["channel"] == INCIDENTS and "blocks" in c.body
    ]
    [button] = [
        e for b in root["blocks"] if b["type"] == "actions" for e in b["elements"] if e.get("value")
    ]
    return incident, state, button


async def refused_acks(stack: Stack) -> list[Any]:
    """The audit log's refused acknowledgements."""
    async with stack.pool.acquire() as conn:
        rows: list[Any] = await conn.fetch(
            "SELECT actor, details FROM support_audit_log WHERE action = 'incident.ack_refused'"
        )
    return rows


async def test_acknowledge_in_slack_takes_the_incident_and_stops_the_paging(stack: Stack) -> None:
    incident, first, button = await paged_with_button(stack)
    incident_id = first.incident_id
    assert button["action_id"] == ACTION_INCIDENT_ACK
    ref = await IncidentStore(stack.pool).slack_message(incident_id)
    assert ref is not None
    root_ts = ref[1]

    # Someone on neither the policy nor the approvers list: refused, told, audited.
    await stack.click("U0STRANGER", button, name="stranger")
    assert "Only people on the escalation policy or the approvers list" in await stack.told(
        "stranger"
    )

    [refusal] = await eventually(lambda: refused_acks(stack))
    assert refusal["actor"] == "slack:U0STRANGER"
    assert refusal["details"]["incident_id"] == str(incident_id)
    assert refusal["details"]["channel"] == "slack"
    still: IncidentState = await incident.query(IncidentWorkflow.state)
    assert (still.status, still.acknowledged_by) == (IncidentStatus.OPEN, None)

    # The paging goes on: five minutes later the founders are paged.
    await stack.ts.sleep(timedelta(minutes=5))
    await pages(incident, 2)
    assert len(stack.pages_in_thread(root_ts)) == 1
    assert stack.paged_mails(incident_id) == ["oncall@kruxt.app", "maya@kruxt.app"]

    # Maya (on the policy, known to Slack by her user id) takes it.
    await stack.click("UMAYA", button, name="maya")
    assert await stack.told("maya") == (
        "Incident acknowledged by maya@kruxt.app: escalation stopped."
    )
    taken: IncidentState = await incident.query(IncidentWorkflow.state)
    assert taken.status is IncidentStatus.ACKNOWLEDGED
    assert taken.acknowledged_by == "maya@kruxt.app"
    record = await IncidentStore(stack.pool).get(incident_id)
    assert record is not None
    assert (record.status, record.acknowledged_by) == (
        IncidentStatus.ACKNOWLEDGED,
        "maya@kruxt.app",
    )
    timeline = [e.what for e in await IncidentStore(stack.pool).timeline(incident_id)]
    assert "acknowledged by maya@kruxt.app via slack; escalation stopped" in timeline

    # Paging stopped: nobody is paged again, however long it stays acknowledged.
    await stack.ts.sleep(timedelta(hours=2))
    after = await pages(incident, 2)
    assert after.status is IncidentStatus.ACKNOWLEDGED
    assert len(stack.pages_in_thread(root_ts)) == 1
    assert stack.paged_mails(incident_id) == ["oncall@kruxt.app", "maya@kruxt.app"]

    # A second click is refused with who took it.
    await stack.click("UMAYA", button, name="again")
    assert "already acknowledged by maya@kruxt.app" in await stack.told("again")


async def test_the_on_call_person_of_the_policy_acknowledges_by_their_slack_e_mail(
    stack: Stack,
) -> None:
    """UONCALL is paged by the policy but is in no approvers list: Slack's users.info gives
    their e-mail, which the policy lists, so the button takes the incident for them."""
    stack.slack.add_member("UONCALL", "OnCall@KRUXT.app")
    incident, _, button = await paged_with_button(stack)
    await stack.click("UONCALL", button, name="oncall")
    assert await stack.told("oncall") == (
        "Incident acknowledged by oncall@kruxt.app: escalation stopped."
    )
    taken: IncidentState = await incident.query(IncidentWorkflow.state)
    assert (taken.status, taken.acknowledged_by) == (
        IncidentStatus.ACKNOWLEDGED,
        "oncall@kruxt.app",
    )
    [lookup] = stack.slack.calls_to("users.info")
    assert lookup.body["user"] == "UONCALL"


@pytest.mark.parametrize(
    ("member", "why"),
    [
        ({"email": "someone@elsewhere.example"}, "someone@elsewhere.example is neither"),
        ({"email": None}, "no e-mail in Slack"),  # the app lacks users:read.email
        ({"email": "oncall@kruxt.app", "deleted": True}, "no e-mail in Slack"),
        ({"email": "oncall@kruxt.app", "is_bot": True}, "no e-mail in Slack"),
        (None, "no e-mail in Slack"),  # users.info: user_not_found
    ],
)
async def test_a_member_slack_cannot_vouch_for_is_refused_told_and_audited(
    stack: Stack, member: dict[str, Any] | None, why: str
) -> None:
    if member is not None:
        stack.slack.add_member("U0OTHER", **member)
    incident, _, button = await paged_with_button(stack)
    await stack.click("U0OTHER", button, name="other")
    assert "Only people on the escalation policy or the approvers list" in await stack.told("other")

    [refusal] = await eventually(lambda: refused_acks(stack))
    assert refusal["actor"] == "slack:U0OTHER"
    assert why in refusal["details"]["reason"], refusal["details"]
    still: IncidentState = await incident.query(IncidentWorkflow.state)
    assert (still.status, still.acknowledged_by) == (IncidentStatus.OPEN, None)
