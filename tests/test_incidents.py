"""Incidents: open-or-join in Postgres, and IncidentWorkflow on the time-skipping server.

The workflow runs with its real activities against a fake Slack, the outbox mailer and a
real database. Tickets are played by a small stand-in workflow that does what the ticket
workflow does for a P1/P2 (``open_or_join_incident``) and waits for ``incident_resolved``.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import asyncpg
    from temporalio.client import WorkflowHandle
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker

    from kruxt.activities.incidents import IncidentActivities
    from kruxt.adapters.email import OutboxMailer
    from kruxt.adapters.postgres.incidents import IncidentStateError, IncidentStore, JoinResult
    from kruxt.adapters.postgres.tickets import TicketStore
    from kruxt.adapters.settings import Settings
    from kruxt.adapters.slack import ACTION_INCIDENT_ACK
    from kruxt.models.approvals import DecisionChannel
    from kruxt.models.enums import Category, Priority
    from kruxt.models.incidents import (
        DEV_FOUNDER,
        AttachTicket,
        EscalationLevel,
        EscalationPolicy,
        IncidentInput,
        IncidentJoin,
        IncidentResolved,
        IncidentState,
        IncidentStatus,
        OpenIncidentInput,
        default_escalation_policy,
        incident_key,
        incident_workflow_id,
        parse_escalation_policy,
    )
    from kruxt.models.tickets import TicketIntake, workflow_id_for
    from kruxt.starter.incident_cli import add_incident_parser, run_incident
    from kruxt.starter.incidents import IncidentRefusedError, IncidentService
    from kruxt.workers.composition import workflow_runner
    from kruxt.workflows.incident import IncidentWorkflow
    from kruxt.workflows.policies import DB_RETRY, DB_TIMEOUT
    from tests.fakes.slack_server import FakeSlackServer, slack_error
    from tests.support import eventually, intake, outbox_mails, slack_incidents

WINDOW = timedelta(minutes=360)
KEY = incident_key(Category.AUTH_LOGIN, "Login API returns 500 since the deploy.")
CHANNEL = "C-INCIDENTS"
POLICY = EscalationPolicy(
    levels=[
        EscalationLevel(
            name="on-call", emails=["oncall@kruxt.app"], slack_user_ids=["UONCALL"], delay_minutes=5
        ),
        EscalationLevel(
            name="founders",
            emails=["maya@kruxt.app", "sam@kruxt.app"],
            slack_user_ids=["UMAYA"],
            delay_minutes=10,
        ),
    ],
    loops=2,
)


# -- the policy --------------------------------------------------------------------------


def test_policy_from_yaml_and_json_with_a_dev_default() -> None:
    policy = parse_escalation_policy(
        "loops: 3\nlevels:\n  - name: on-call\n    emails: [oncall@kruxt.app]\n"
        "    delay_minutes: 10\n  - name: cto\n    slack_user_ids: [U1]\n    delay_minutes: 20\n"
    )
    assert policy.loops == 3
    assert [lvl.name for lvl in policy.levels] == ["on-call", "cto"]
    assert parse_escalation_policy(POLICY.model_dump_json()) == POLICY
    default = parse_escalation_policy(None)
    assert default == default_escalation_policy()
    assert default.loops == 2
    assert [str(e) for e in default.levels[0].emails] == [DEV_FOUNDER]
    assert default.levels[0].delay_minutes == 15


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("levels: [", "not JSON or YAML"),
        ("levels: []\nloops: 1", "levels"),
        (
            '{"levels": [{"name": "x", "emails": ["a@b.co"], "delay_minutes": 5}], "loops": 0}',
            "loops",
        ),
        ('{"levels": [{"name": "x", "delay_minutes": 5}]}', "pages nobody"),
        ('{"levels": [{"name": "x", "emails": ["nope"], "delay_minutes": 5}]}', "emails"),
        ('{"levels": [{"name": "x", "emails": ["a@b.co"], "delay_minutes": 0}]}', "delay_minutes"),
    ],
)
def test_a_bad_policy_is_a_clear_error(text: str, why: str) -> None:
    with pytest.raises(ValueError, match="invalid KRUXT_ESCALATION_POLICY") as err:
        parse_escalation_policy(text, source="KRUXT_ESCALATION_POLICY")
    assert why in str(err.value)


def test_incident_key_ignores_case_and_punctuation() -> None:
    assert incident_key(Category.AUTH_LOGIN, "Login API down.") == incident_key(
        Category.AUTH_LOGIN, "  login   API down"
    )
    assert incident_key(Category.AUTH_LOGIN, "x") != incident_key(Category.BILLING_INVOICE, "x")
    assert incident_key(Category.OTHER, None) == "other:unknown"


# -- open or join (Postgres) -------------------------------------------------------------


async def new_ticket(pool: asyncpg.Pool[Any], **kw: Any) -> TicketIntake:
    ticket = intake(**kw)
    await TicketStore(pool).persist_ticket(
        intake=ticket,
        workflow_id=workflow_id_for(ticket.ticket_id),
        idempotency_key=f"persist-{ticket.ticket_id}",
    )
    return ticket


async def join(
    store: IncidentStore, ticket: TicketIntake, *, at: datetime, key: str = KEY, who: str = ""
) -> JoinResult:
    return await store.open_or_join(
        key=key,
        ticket_id=ticket.ticket_id,
        priority=Priority.P2,
        category=Category.AUTH_LOGIN,
        title=ticket.subject,
        window=WINDOW,
        idempotency_key=who or f"join-{ticket.ticket_id}",
        now=at,
    )


async def opened_incident(
    pool: asyncpg.Pool[Any],
    *,
    at: datetime,
    policy: EscalationPolicy = POLICY,
    priority: Priority = Priority.P1,
    history_limit: int | None = None,
) -> IncidentInput:
    """An incident opened in the database for a fresh ticket, as its workflow's input."""
    ticket = await new_ticket(pool)
    joined = await join(IncidentStore(pool), ticket, at=at)
    return IncidentInput(
        incident_id=joined.incident_id,
        key=KEY,
        priority=priority,
        category=Category.AUTH_LOGIN,
        title="Login API returns 500",
        first_ticket=AttachTicket(
            ticket_id=ticket.ticket_id,
            workflow_id=workflow_id_for(ticket.ticket_id),
            priority=priority,
            summary=ticket.subject,
        ),
        policy=policy,
        opened_at=at,
        history_limit=history_limit,
    )


async def test_tickets_with_one_key_within_the_window_share_one_incident(
    pool: asyncpg.Pool[Any],
) -> None:
    store = IncidentStore(pool)
    t0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    a, b, c, d = [await new_ticket(pool) for _ in range(4)]
    first = await join(store, a, at=t0)
    assert first.created
    assert first.workflow_id == f"incident-{first.incident_id}"
    second = await join(store, b, at=t0 + timedelta(minutes=30))
    assert second == (first.incident_id, first.workflow_id, False)
    # A retry of the first join finds its own answer and writes nothing again.
    assert await join(store, a, at=t0) == first
    # Another root cause: another incident.
    other = await join(
        store, c, at=t0 + timedelta(minutes=31), key=incident_key(Category.OTHER, "x")
    )
    assert other.created
    assert other.incident_id != first.incident_id
    # After the window: a new incident, even for the same root cause.
    late = await join(store, d, at=t0 + WINDOW + timedelta(minutes=1))
    assert late.created
    assert late.incident_id != first.incident_id

    record = await store.get(first.incident_id)
    assert record is not None
    assert record.ticket_count == 2
    assert record.recent_ticket_ids == [b.ticket_id, a.ticket_id]
    assert record.status is IncidentStatus.OPEN
    assert [r.id for r in await store.list_open()] != []
    async with pool.acquire() as conn:
        actions = await conn.fetch(
            "SELECT action, ticket_id FROM support_audit_log WHERE action LIKE 'incident.%' "
            "ORDER BY id"
        )
        opened = await conn.fetchval(
            "SELECT count(*) FROM support_kpi_events WHERE event = 'incident_opened'"
        )
    assert [(r["action"], r["ticket_id"]) for r in actions] == [
        ("incident.opened", a.ticket_id),
        ("incident.ticket_attached", b.ticket_id),
        ("incident.opened", c.ticket_id),
        ("incident.opened", d.ticket_id),
    ]
    assert opened == 3
    timeline = await store.timeline(first.incident_id)
    assert [e.what.split(" ")[0] for e in timeline] == ["opened", "ticket"]


async def test_simultaneous_tickets_open_one_incident(pool: asyncpg.Pool[Any]) -> None:
    store = IncidentStore(pool)
    now = datetime.now(UTC)
    tickets = [await new_ticket(pool) for _ in range(6)]
    results = await asyncio.gather(*(join(store, t, at=now) for t in tickets))
    assert len({r.incident_id for r in results}) == 1
    assert sum(r.created for r in results) == 1


async def test_a_resolved_incident_takes_no_new_tickets(pool: asyncpg.Pool[Any]) -> None:
    store = IncidentStore(pool)
    now = datetime.now(UTC)
    a, b = await new_ticket(pool), await new_ticket(pool)
    first = await join(store, a, at=now)
    told = await store.set_status(
        incident_id=first.incident_id,
        status=IncidentStatus.RESOLVED,
        actor="maya@kruxt.app",
        note="rolled back",
        idempotency_key="resolve-1",
    )
    assert [t.ticket_id for t in told] == [a.ticket_id]
    assert told[0].workflow_id == workflow_id_for(a.ticket_id)
    with pytest.raises(IncidentStateError, match="already resolved"):
        await store.set_status(
            incident_id=first.incident_id,
            status=IncidentStatus.ACKNOWLEDGED,
            actor="sam@kruxt.app",
            idempotency_key="ack-late",
        )
    again = await join(store, b, at=now + timedelta(minutes=1))
    assert again.created
    assert again.incident_id != first.incident_id


# -- the workflow ------------------------------------------------------------------------


class StandInInput(BaseModel):
    ticket_id: uuid.UUID
    key: str
    priority: Priority
    title: str


class StandInResult(BaseModel):
    join: IncidentJoin
    resolved: IncidentResolved


@workflow.defn
class TicketStandIn:
    """What TicketWorkflow does for a P1/P2: join the incident, then hear of its end."""

    def __init__(self) -> None:
        self._join: IncidentJoin | None = None
        self._resolved: IncidentResolved | None = None

    @workflow.run
    async def run(self, inp: StandInInput) -> StandInResult:
        self._join = await workflow.execute_activity_method(
            IncidentActivities.open_or_join_incident,
            OpenIncidentInput(
                ticket_id=inp.ticket_id,
                ticket_workflow_id=workflow.info().workflow_id,
                key=inp.key,
                priority=inp.priority,
                category=Category.AUTH_LOGIN,
                title=inp.title,
                at=workflow.now(),
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        await workflow.wait_condition(lambda: self._resolved is not None)
        assert self._resolved is not None
        return StandInResult(join=self._join, resolved=self._resolved)

    @workflow.signal
    def incident_resolved(self, resolved: IncidentResolved) -> None:
        self._resolved = resolved

    @workflow.query
    def joined(self) -> IncidentJoin | None:
        return self._join


@dataclass
class Env:
    ts: WorkflowEnvironment
    pool: asyncpg.Pool[Any]
    slack: FakeSlackServer
    outbox: Path
    queue: str
    db_dsn: str

    @property
    def store(self) -> IncidentStore:
        return IncidentStore(self.pool)

    def service(self) -> IncidentService:
        return IncidentService(self.ts.client, store=self.store)

    def mails(self) -> list[tuple[str, str]]:
        return [(str(mail["To"]), str(mail["Subject"])) for mail in outbox_mails(self.outbox)]

    def posts(self) -> list[dict[str, Any]]:
        return [c.body for c in self.slack.calls_to("chat.postMessage")]

    async def open_incident(self, policy: EscalationPolicy = POLICY) -> tuple[IncidentInput, Any]:
        """Open an incident for a fresh ticket and start its workflow directly."""
        incident = await opened_incident(
            self.pool, at=await self.ts.get_current_time(), policy=policy
        )
        handle = await self.ts.client.start_workflow(
            IncidentWorkflow.run,
            incident,
            id=incident_workflow_id(incident.incident_id),
            task_queue=self.queue,
        )
        return incident, handle

    async def pages(self, handle: WorkflowHandle[Any, Any], count: int) -> IncidentState:
        """Wait until ``count`` pages went out (and were recorded)."""

        async def probe() -> IncidentState | None:
            state: IncidentState = await handle.query(IncidentWorkflow.state)
            return state if len(state.pages) >= count else None

        state = await eventually(probe)
        assert len(state.pages) == count, state.pages
        return state


@pytest.fixture
async def env(
    ts_env: WorkflowEnvironment,
    pool: asyncpg.Pool[Any],
    db_dsn: str,
    slack_server: FakeSlackServer,
    tmp_path: Path,
    task_queue: str,
) -> AsyncIterator[Env]:
    outbox = tmp_path / "outbox"
    activities = IncidentActivities(
        IncidentStore(pool),
        chat=slack_incidents(slack_server, incident_channel=CHANNEL),
        mailer=OutboxMailer(outbox),
        public_url="http://kruxt.test",
        policy=POLICY,
        window=WINDOW,
    )
    async with Worker(
        ts_env.client,
        task_queue=task_queue,
        workflows=[IncidentWorkflow, TicketStandIn],
        activities=[
            activities.open_or_join_incident,
            activities.page_level,
            activities.record_incident_event,
            activities.set_incident_status,
            activities.post_timeline,
            activities.tell_incident_tickets,
        ],
        workflow_runner=workflow_runner(),
    ):
        yield Env(ts_env, pool, slack_server, outbox, task_queue, db_dsn)


async def test_escalation_goes_through_every_level_and_loop_until_acknowledged(env: Env) -> None:
    incident, handle = await env.open_incident()
    state = await env.pages(handle, 1)
    # 0': on-call; 5': founders; 15': on-call again; 20': founders again; 30': exhausted.
    for minutes, count in ((5, 2), (10, 3), (5, 4)):
        await env.ts.sleep(timedelta(minutes=minutes))
        state = await env.pages(handle, count)
    assert [(p.level_name, p.loop) for p in state.pages] == [
        ("on-call", 0),
        ("founders", 0),
        ("on-call", 1),
        ("founders", 1),
    ]
    assert not state.escalation_exhausted
    await env.ts.sleep(timedelta(minutes=10))

    async def exhausted() -> IncidentState | None:
        s: IncidentState = await handle.query(IncidentWorkflow.state)
        return s if s.escalation_exhausted else None

    state = await eventually(exhausted)
    await env.ts.sleep(timedelta(hours=3))  # no more pages, however long it waits
    state = await env.pages(handle, 4)
    assert state.status is IncidentStatus.OPEN

    # Slack: the incident with its button, then each page threaded and mentioning its level.
    posts = env.posts()
    root = posts[0]
    assert root["channel"] == CHANNEL
    button = root["blocks"][-1]["elements"][0]
    assert button["action_id"] == ACTION_INCIDENT_ACK
    assert button["value"] == str(incident.incident_id)
    assert "<@UONCALL>" in str(root["blocks"])
    threaded = posts[1:]
    ref = await env.store.slack_message(incident.incident_id)
    assert ref is not None
    assert [(p["channel"], p["thread_ts"]) for p in threaded] == [ref] * 3
    assert ["<@UMAYA>" in p["text"] for p in threaded] == [True, False, True]
    assert ["<@UONCALL>" in p["text"] for p in threaded] == [False, True, False]
    # E-mail: every person of each level, each time their level is paged.
    assert [to for to, _ in env.mails()] == [
        "oncall@kruxt.app",
        "maya@kruxt.app",
        "sam@kruxt.app",
        "oncall@kruxt.app",
        "maya@kruxt.app",
        "sam@kruxt.app",
    ]
    mail = message_from_bytes(
        sorted(env.outbox.glob("*.eml"))[0].read_bytes(), _class=EmailMessage, policy=default
    )
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert f"kruxt incident ack {incident.incident_id} --as oncall@kruxt.app" in text
    assert "Acknowledge on the incident in Slack" in text

    # The database follows: the last page's position, one timeline line per page, exhaustion.
    record = await env.store.get(incident.incident_id)
    assert record is not None
    assert (record.escalation_level, record.escalation_loop) == (1, 1)
    lines = [e.what for e in await env.store.timeline(incident.incident_id)]
    assert sum(line.startswith("paged ") for line in lines) == 4
    assert any(line.startswith("escalation exhausted") for line in lines)

    # An acknowledgement still lands after exhaustion; the message loses its button.
    ack = await env.service().acknowledge(
        incident.incident_id, by="maya@kruxt.app", channel=DecisionChannel.EMAIL
    )
    assert ack.by == "maya@kruxt.app"
    updates = env.slack.calls_to("chat.update")
    assert len(updates) == 1
    assert "Acknowledged by maya@kruxt.app" in str(updates[0].body["blocks"])
    assert "actions" not in [b["type"] for b in updates[0].body["blocks"]]
    record = await env.store.get(incident.incident_id)
    assert record is not None
    assert record.status is IncidentStatus.ACKNOWLEDGED
    assert record.acknowledged_by == "maya@kruxt.app"
    await env.service().resolve(incident.incident_id, by="maya@kruxt.app", note="rolled back")
    await handle.result()


async def test_an_acknowledgement_stops_the_paging(env: Env) -> None:
    incident, handle = await env.open_incident()
    await env.pages(handle, 1)
    await env.ts.sleep(timedelta(minutes=5))
    await env.pages(handle, 2)
    service = env.service()
    ack = await service.acknowledge(
        incident.incident_id, by="oncall@kruxt.app", channel=DecisionChannel.SLACK
    )
    assert ack.channel is DecisionChannel.SLACK
    await env.ts.sleep(timedelta(hours=2))
    state = await env.pages(handle, 2)  # nothing after the ack
    assert state.status is IncidentStatus.ACKNOWLEDGED
    assert state.acknowledged_by == "oncall@kruxt.app"
    assert not state.escalation_exhausted
    assert len(env.mails()) == 3  # on-call once, then both founders

    # A second acknowledgement is refused, naming who took it.
    with pytest.raises(IncidentRefusedError, match=r"already acknowledged by oncall@kruxt\.app"):
        await service.acknowledge(
            incident.incident_id, by="sam@kruxt.app", channel=DecisionChannel.CLI
        )
    resolved = await service.resolve(incident.incident_id, by="oncall@kruxt.app", note="fixed")
    assert resolved.status is IncidentStatus.RESOLVED
    outcome = await handle.result()
    assert outcome.acknowledged_by == "oncall@kruxt.app"
    # After the resolution: refused, with who resolved it (from the database).
    with pytest.raises(IncidentRefusedError, match=r"already resolved by oncall@kruxt\.app"):
        await service.acknowledge(
            incident.incident_id, by="sam@kruxt.app", channel=DecisionChannel.CLI
        )
    with pytest.raises(IncidentRefusedError, match="already resolved"):
        await service.resolve(incident.incident_id, by="sam@kruxt.app")
    async with env.pool.acquire() as conn:
        actions = await conn.fetch(
            "SELECT action FROM support_audit_log WHERE details->>'incident_id' = $1 ORDER BY id",
            str(incident.incident_id),
        )
    # The lifecycle in order: paged until acknowledged, never after; the refused attempts
    # acknowledged and resolved nothing. Other rows (timeline, tickets told) may come and go.
    lifecycle = ("incident.opened", "incident.paged", "incident.acknowledged", "incident.resolved")
    assert [r["action"] for r in actions if r["action"] in lifecycle] == [
        "incident.opened",
        "incident.paged",
        "incident.paged",
        "incident.acknowledged",
        "incident.resolved",
    ]
    assert outcome.tickets_told == []


async def test_a_broken_slack_still_pages_by_email(env: Env) -> None:
    env.slack.fail_next(slack_error("channel_not_found"))
    incident, handle = await env.open_incident()
    state = await env.pages(handle, 1)
    page = state.pages[0]
    assert not page.slack_posted
    assert page.emailed == ["oncall@kruxt.app"]
    assert page.failed is not None and "channel_not_found" in page.failed
    assert [to for to, _ in env.mails()] == ["oncall@kruxt.app"]
    lines = [e.what for e in await env.store.timeline(incident.incident_id)]
    assert any("failed: Slack" in line for line in lines)
    # Slack is back for the next level: the incident message is posted then.
    await env.ts.sleep(timedelta(minutes=5))
    state = await env.pages(handle, 2)
    assert state.pages[1].slack_posted
    await env.service().resolve(incident.incident_id, by="maya@kruxt.app")
    await handle.result()


async def start_stand_in(
    env: Env, *, key: str = KEY, priority: Priority = Priority.P2
) -> tuple[TicketIntake, WorkflowHandle[Any, StandInResult]]:
    ticket = await new_ticket(env.pool, subject=f"Cannot log in ({uuid.uuid4().hex[:4]})")
    handle = await env.ts.client.start_workflow(
        TicketStandIn.run,
        StandInInput(ticket_id=ticket.ticket_id, key=key, priority=priority, title=ticket.subject),
        id=workflow_id_for(ticket.ticket_id),
        task_queue=env.queue,
    )

    async def joined() -> IncidentJoin | None:
        result: IncidentJoin | None = await handle.query(TicketStandIn.joined)
        return result

    await eventually(joined)
    return ticket, handle


async def test_two_tickets_join_one_incident_and_its_resolution_tells_both(env: Env) -> None:
    # A P1 opens the incident; a P2 of the same cause joins it (alone it would open none).
    first, first_handle = await start_stand_in(env, priority=Priority.P1)
    second, second_handle = await start_stand_in(env)
    _, elsewhere_handle = await start_stand_in(
        env,
        key=incident_key(Category.INTEGRATION_SYNC, "Garmin tokens expired"),
        priority=Priority.P1,
    )
    join_1 = await first_handle.query(TicketStandIn.joined)
    join_2 = await second_handle.query(TicketStandIn.joined)
    join_3 = await elsewhere_handle.query(TicketStandIn.joined)
    assert join_1 is not None and join_2 is not None and join_3 is not None
    assert join_1.created and not join_2.created and join_3.created
    assert join_2.incident_id == join_1.incident_id
    assert join_3.incident_id != join_1.incident_id
    assert join_1.incident_id is not None and join_1.workflow_id is not None
    assert join_3.incident_id is not None

    # open_or_join started the incident workflow; both tickets are attached to it.
    incident = env.ts.client.get_workflow_handle_for(IncidentWorkflow.run, join_1.workflow_id)

    async def both() -> IncidentState | None:
        s: IncidentState = await incident.query(IncidentWorkflow.state)
        return s if len(s.tickets) == 2 and s.pages else None

    state = await eventually(both)
    assert {t.ticket_id for t in state.tickets} == {first.ticket_id, second.ticket_id}
    assert state.priority is Priority.P1  # the P1's; the P2 that joined does not lower it
    record = await env.store.get(join_1.incident_id)
    assert record is not None
    assert record.priority is Priority.P1
    assert record.ticket_count == 2
    assert record.recent_ticket_ids == [second.ticket_id, first.ticket_id]

    resolved = await env.service().resolve(
        join_1.incident_id, by="maya@kruxt.app", note="login API rolled back"
    )
    assert resolved.status is IncidentStatus.RESOLVED
    assert resolved.resolved_by == "maya@kruxt.app"
    for handle in (first_handle, second_handle):
        result = await handle.result()
        assert result.resolved == IncidentResolved(
            incident_id=join_1.incident_id, note="login API rolled back", by="maya@kruxt.app"
        )
    outcome = await incident.result()
    assert (outcome.told, outcome.not_told) == (2, 0)
    # The other incident's ticket heard nothing.
    assert await elsewhere_handle.query(TicketStandIn.joined) == join_3
    described = await elsewhere_handle.describe()
    assert described.status is not None and described.status.name == "RUNNING"

    # The timeline went to the incident's thread, and the database has it all.
    timeline_posts = [p for p in env.posts() if "Timeline" in p.get("text", "")]
    assert len(timeline_posts) == 1
    assert "login API rolled back" in timeline_posts[0]["text"]
    lines = [e.what for e in await env.store.timeline(join_1.incident_id)]
    assert lines[0].startswith(f"opened by ticket {first.ticket_id}")
    assert any(line.startswith(f"ticket {second.ticket_id} (P2) attached") for line in lines)
    assert sum("told of the resolution" in line for line in lines) == 2
    assert lines[-1].startswith("timeline of")
    record = await env.store.get(join_1.incident_id)
    assert record is not None
    assert record.status is IncidentStatus.RESOLVED
    assert [r.id for r in await env.store.list_open()] == [join_3.incident_id]

    await env.service().resolve(join_3.incident_id, by="maya@kruxt.app")
    assert (await elsewhere_handle.result()).resolved.incident_id == join_3.incident_id


async def test_the_cli_lists_acknowledges_and_resolves(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="kruxt")
    add_incident_parser(parser.add_subparsers(dest="command"))
    settings = Settings(
        DATABASE_URL=env.db_dsn,
        TEMPORAL_ADDRESS=env.ts.client.service_client.config.target_host,
        # Only people on the escalation policy (or approvers) may take an incident.
        KRUXT_ESCALATION_POLICY=(
            '{"loops": 1, "levels": [{"name": "on-call", "delay_minutes": 10,'
            ' "emails": ["maya@kruxt.app", "sam@kruxt.app"]}]}'
        ),
    )

    async def cli(*argv: str) -> int:
        return await run_incident(parser.parse_args(["incident", *argv]), settings)

    incident, handle = await env.open_incident()
    await env.pages(handle, 1)
    iid = str(incident.incident_id)
    assert await cli("list") == 0
    listing = capsys.readouterr().out
    assert iid in listing and "open" in listing

    assert await cli("ack", "not-a-uuid", "--as", "maya@kruxt.app") == 2
    assert "not an incident id" in capsys.readouterr().err
    assert await cli("ack", iid, "--as", "maya") == 2
    assert "e-mail" in capsys.readouterr().err
    assert await cli("ack", str(uuid.uuid4()), "--as", "maya@kruxt.app") == 1
    assert "no incident" in capsys.readouterr().err

    assert await cli("ack", iid, "--as", "mallory@example.com") == 1
    assert "neither on the escalation policy nor a configured approver" in (capsys.readouterr().err)
    assert await cli("ack", iid, "--as", "maya@kruxt.app") == 0
    assert "acknowledged by maya@kruxt.app" in capsys.readouterr().out
    assert await cli("ack", iid, "--as", "sam@kruxt.app") == 1
    assert "already acknowledged by maya@kruxt.app" in capsys.readouterr().err

    assert await cli("resolve", iid, "--as", "maya@kruxt.app", "--note", "fixed") == 0
    # Its one ticket has no workflow running (this test opened the incident directly).
    assert "resolved by maya@kruxt.app; 0 ticket(s) told (1 closed, not told)" in (
        capsys.readouterr().out
    )
    await handle.result()
    assert await cli("list") == 0
    assert capsys.readouterr().out.strip() == "no open incidents"
