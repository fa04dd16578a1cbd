"""SLA clocks: the pure arithmetic, then the clocks in a workflow on the time-skipping server.

The workflow part drives a small probe workflow with the same ``SlaTracker`` the ticket
workflow uses, the real ``notify_sla`` / ``record_sla_met`` activities, a fake Slack, the
outbox mailer and a real Postgres: warnings, breaches, pauses and priority changes land as
messages, KPI events, audit entries and the SlaBreached search attribute.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
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

    from kruxt.activities.sla import SlaActivities
    from kruxt.adapters.email import OutboxMailer
    from kruxt.adapters.postgres.incidents import IncidentStore, SlaEventStore
    from kruxt.adapters.postgres.tickets import TicketStore
    from kruxt.models import search_attributes as sa
    from kruxt.models.enums import Category, Priority
    from kruxt.models.incidents import EscalationLevel, EscalationPolicy, IncidentStatus
    from kruxt.models.sla import (
        ClockKind,
        ClockState,
        SlaClock,
        SlaEventKind,
        SlaSummary,
        SlaTargets,
        due_events,
        mark_events,
        next_wakeup,
        parse_sla_targets,
        start_clocks,
        summarize,
    )
    from kruxt.models.tickets import workflow_id_for
    from kruxt.workers.composition import workflow_runner
    from kruxt.workflows.sla import SlaTracker
    from tests.fakes.slack_server import FakeSlackServer
    from tests.support import eventually, intake, slack_incidents

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
TABLE = {  # DESIGN.md: first response, resolution (minutes)
    Priority.P1: (15, 240),
    Priority.P2: (15, 1440),
    Priority.P3: (240, 4320),
    Priority.P4: (240, 4320),
}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def clocks_for(priority: Priority, targets: SlaTargets | None = None) -> dict[ClockKind, SlaClock]:
    return {c.kind: c for c in start_clocks(targets or SlaTargets(), priority, T0)}


# -- targets -----------------------------------------------------------------------------


@pytest.mark.parametrize("priority", list(Priority))
def test_each_priority_gets_the_design_table_deadlines(priority: Priority) -> None:
    first, resolution = TABLE[priority]
    clocks = clocks_for(priority)
    assert clocks[ClockKind.FIRST_RESPONSE].deadline() == at(first)
    assert clocks[ClockKind.RESOLUTION].deadline() == at(resolution)
    assert clocks[ClockKind.FIRST_RESPONSE].warn_at() == at(first * 0.75)


@pytest.mark.parametrize("priority", list(Priority))
def test_each_priority_met_just_inside_and_breached_just_outside(priority: Priority) -> None:
    for kind, minutes in zip(ClockKind, TABLE[priority], strict=True):
        clock = clocks_for(priority)[kind]
        inside = clock.stop(at(minutes - 1))
        assert inside.met() is True
        assert inside.elapsed(at(10_000)) == (minutes - 1) * 60
        assert [e.kind for e in due_events([clock], at(minutes - 1))] == [SlaEventKind.WARNING]
        late = due_events([clock], at(minutes + 2))
        assert [(e.kind, e.clock) for e in late] == [(SlaEventKind.BREACH, kind)]
        assert late[0].overdue_seconds == 120
        assert clock.stop(at(minutes + 2)).met() is False


def test_targets_come_from_configuration_json_or_yaml() -> None:
    targets = parse_sla_targets(
        '{"first_response_minutes": {"P1": 5, "p3": 60}, "warn_fraction": 0.5}'
    )
    assert targets.minutes(ClockKind.FIRST_RESPONSE, Priority.P1) == 5
    assert targets.minutes(ClockKind.FIRST_RESPONSE, Priority.P3) == 60
    # What the configuration leaves out keeps DESIGN.md's value.
    assert targets.minutes(ClockKind.FIRST_RESPONSE, Priority.P2) == 15
    assert targets.minutes(ClockKind.RESOLUTION, Priority.P2) == 1440
    clock = clocks_for(Priority.P1, targets)[ClockKind.FIRST_RESPONSE]
    assert clock.deadline() == at(5)
    assert clock.warn_at() == at(2.5)
    yaml_targets = parse_sla_targets("resolution_minutes:\n  P1: 120\n")
    assert yaml_targets.minutes(ClockKind.RESOLUTION, Priority.P1) == 120
    assert parse_sla_targets(None) == SlaTargets()
    assert parse_sla_targets("  ") == SlaTargets()


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{not json", "not JSON or YAML"),
        ("[1, 2]", "expected an object"),
        ('{"first_response_minutes": {"P9": 5}}', "unknown priority 'P9'"),
        ('{"resolution_minutes": {"P1": 0}}', "at least 1 minute"),
        ('{"warn_fraction": 1.5}', "warn_fraction"),
        ('{"first_response": {"P1": 5}}', "first_response"),
    ],
)
def test_bad_targets_are_a_clear_error(text: str, why: str) -> None:
    with pytest.raises(ValueError, match="invalid SLA targets") as err:
        parse_sla_targets(text)
    assert why in str(err.value)


# -- warning, breach, pause, retarget ----------------------------------------------------


def test_warning_at_75_percent_then_breach_once_each() -> None:
    clocks = list(clocks_for(Priority.P1).values())
    assert next_wakeup(clocks) == at(11.25)
    assert due_events(clocks, at(11)) == []
    warned = due_events(clocks, at(11.25))
    assert [(e.kind, e.clock) for e in warned] == [(SlaEventKind.WARNING, ClockKind.FIRST_RESPONSE)]
    clocks = mark_events(clocks, warned)
    assert due_events(clocks, at(12)) == []  # reported once
    assert next_wakeup(clocks) == at(15)
    breached = due_events(clocks, at(15))
    assert [(e.kind, e.clock) for e in breached] == [
        (SlaEventKind.BREACH, ClockKind.FIRST_RESPONSE)
    ]
    clocks = mark_events(clocks, breached)
    # Next: the resolution clock's warning (240 * 0.75 = 180 min).
    assert next_wakeup(clocks) == at(180)
    assert summarize(clocks, at(16)).breached


def test_a_late_check_reports_the_breach_without_the_warning() -> None:
    clocks = list(clocks_for(Priority.P2).values())
    events = due_events(clocks, at(30))
    assert [(e.kind, e.clock) for e in events] == [(SlaEventKind.BREACH, ClockKind.FIRST_RESPONSE)]
    assert events[0].overdue_seconds == 15 * 60


def test_waiting_on_the_customer_pauses_the_resolution_clock() -> None:
    clock = clocks_for(Priority.P1)[ClockKind.RESOLUTION]  # 240 min
    paused = clock.pause(at(60))
    assert paused.paused
    assert paused.deadline() is None and paused.warn_at() is None
    assert next_wakeup([paused]) is None
    assert due_events([paused], at(500)) == []  # no breach while the customer has the ball
    assert paused.elapsed(at(500)) == 60 * 60
    assert summarize([paused], at(500)).clocks[0].state is ClockState.PAUSED
    resumed = paused.resume(at(150))  # 90 minutes with the customer
    assert resumed.deadline() == at(240 + 90)
    assert resumed.warn_at() == at(180 + 90)
    assert resumed.elapsed(at(200)) == 110 * 60
    # A second pause adds up.
    again = resumed.pause(at(200)).resume(at(230))
    assert again.deadline() == at(240 + 90 + 30)
    assert again.paused_seconds == 120 * 60
    # Pausing twice or resuming a running clock changes nothing.
    assert again.resume(at(240)) == again
    assert paused.pause(at(100)) == paused


def test_stopping_a_paused_clock_ends_the_pause_there() -> None:
    clock = clocks_for(Priority.P3)[ClockKind.RESOLUTION].pause(at(10))
    stopped = clock.stop(at(70))
    assert stopped.stopped and not stopped.paused
    assert stopped.elapsed(at(9999)) == 10 * 60
    assert stopped.met() is True
    assert stopped.stop(at(100)) == stopped


def test_priority_change_recomputes_from_the_ticket_start_keeping_pauses() -> None:
    p4 = clocks_for(Priority.P4)
    resolution = p4[ClockKind.RESOLUTION].pause(at(10)).resume(at(40))  # 30 min paused
    assert resolution.deadline() == at(4320 + 30)
    raised = resolution.retarget(SlaTargets().target_seconds(ClockKind.RESOLUTION, Priority.P1))
    assert raised.deadline() == at(240 + 30)  # from the start, not from the change
    assert raised.started_at == T0
    first = p4[ClockKind.FIRST_RESPONSE]
    # A P4 escalated to P1 after 30 minutes is already past P1's 15-minute first response.
    to_p1 = first.retarget(15 * 60)
    events = due_events([to_p1], at(30))
    assert [(e.kind, e.overdue_seconds) for e in events] == [(SlaEventKind.BREACH, 15 * 60)]


def test_retarget_rearms_the_warning_but_never_forgets_a_breach() -> None:
    first = clocks_for(Priority.P1)[ClockKind.FIRST_RESPONSE]
    warned = first.marked(SlaEventKind.WARNING)
    lowered = warned.retarget(240 * 60)  # P1 -> P3: a new 75 % mark at 180 min
    assert not lowered.warned
    assert [e.kind for e in due_events([lowered], at(180))] == [SlaEventKind.WARNING]
    breached = first.marked(SlaEventKind.BREACH).retarget(240 * 60)
    assert breached.breached and breached.warned
    assert due_events([breached], at(300)) == []
    assert summarize([breached], at(20)).clocks[0].state is ClockState.BREACHED


def test_summary_states_and_line() -> None:
    clocks = clocks_for(Priority.P2)
    first = clocks[ClockKind.FIRST_RESPONSE].stop(at(4))
    resolution = clocks[ClockKind.RESOLUTION]
    summary = summarize([first, resolution], at(1100))  # 1080 = 75 % of 1440
    states = {c.kind: c.state for c in summary.clocks}
    assert states == {
        ClockKind.FIRST_RESPONSE: ClockState.MET,
        ClockKind.RESOLUTION: ClockState.AT_RISK,
    }
    assert not summary.breached
    assert summary.line().startswith("first_response met (4m) · resolution at_risk, due ")
    assert summarize([resolution], at(10)).clocks[0].state is ClockState.RUNNING


def test_clocks_survive_serialization() -> None:
    clock = clocks_for(Priority.P1)[ClockKind.RESOLUTION].pause(at(3)).marked(SlaEventKind.WARNING)
    assert SlaClock.model_validate_json(clock.model_dump_json()) == clock


# -- in a workflow, on the time-skipping server -----------------------------------------


class ProbeInput(BaseModel):
    ticket_id: uuid.UUID
    priority: Priority
    started_at: datetime
    targets: SlaTargets = SlaTargets()


class ProbeState(BaseModel):
    summary: SlaSummary
    events: list[str]
    clocks: list[SlaClock]
    handled: int
    busy: bool


@workflow.defn
class SlaProbeWorkflow:
    """The ticket workflow's SLA duties and nothing else, driven by commands."""

    @workflow.init
    def __init__(self, inp: ProbeInput) -> None:
        self._sla = SlaTracker(inp.ticket_id, inp.targets)
        self._inbox: list[str] = []
        self._events: list[str] = []
        self._handled = 0
        self._busy = True

    @workflow.run
    async def run(self, inp: ProbeInput) -> list[str]:
        self._sla.start(inp.priority, inp.started_at)
        while True:
            self._busy = True
            await self._check()
            while self._inbox:
                command = self._inbox.pop(0)
                if command == "respond":
                    await self._sla.stop(ClockKind.FIRST_RESPONSE)
                elif command == "wait_customer":
                    self._sla.pause()
                elif command == "customer_replied":
                    self._sla.resume()
                elif command.startswith("priority:"):
                    self._sla.retarget(Priority(command.split(":", 1)[1]))
                elif command == "resolve":
                    await self._sla.stop(ClockKind.RESOLUTION)
                    return self._events
                await self._check()
                self._handled += 1
            self._busy = False
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: bool(self._inbox), timeout=self._sla.timeout()
                )

    async def _check(self) -> None:
        events = await self._sla.check(summary="Cannot log in")
        self._events += [f"{e.kind.value}:{e.clock.value}" for e in events]

    @workflow.signal
    def command(self, command: str) -> None:
        self._inbox.append(command)

    @workflow.query
    def state(self) -> ProbeState:
        return ProbeState(
            summary=self._sla.summary(),
            events=self._events,
            clocks=self._sla.clocks,
            handled=self._handled,
            busy=self._busy or bool(self._inbox),
        )


POLICY = EscalationPolicy(
    levels=[
        EscalationLevel(
            name="on-call", emails=["oncall@kruxt.app"], slack_user_ids=["UONCALL"], delay_minutes=5
        )
    ],
    loops=1,
)
APPROVALS = "C-APPROVALS"
INCIDENTS = "C-INCIDENTS"


@dataclass
class Probe:
    env: WorkflowEnvironment
    pool: asyncpg.Pool[Any]
    slack: FakeSlackServer
    outbox: Path
    queue: str

    async def start(
        self, priority: Priority, targets: SlaTargets | None = None
    ) -> tuple[uuid.UUID, WorkflowHandle[Any, Any]]:
        ticket = intake()
        await TicketStore(self.pool).persist_ticket(
            intake=ticket,
            workflow_id=workflow_id_for(ticket.ticket_id),
            idempotency_key=str(ticket.ticket_id),
        )
        now = await self.env.get_current_time()
        handle = await self.env.client.start_workflow(
            SlaProbeWorkflow.run,
            ProbeInput(
                ticket_id=ticket.ticket_id,
                priority=priority,
                started_at=now,
                targets=targets or SlaTargets(),
            ),
            id=f"sla-probe-{ticket.ticket_id}",
            task_queue=self.queue,
        )
        await self.idle(handle)
        return ticket.ticket_id, handle

    async def idle(self, handle: WorkflowHandle[Any, Any], handled: int = 0) -> ProbeState:
        async def probe() -> ProbeState | None:
            state: ProbeState = await handle.query(SlaProbeWorkflow.state)
            return None if state.busy or state.handled < handled else state

        return await eventually(probe)

    async def send(self, handle: WorkflowHandle[Any, Any], command: str) -> ProbeState:
        before: ProbeState = await handle.query(SlaProbeWorkflow.state)
        await handle.signal(SlaProbeWorkflow.command, command)
        if command == "resolve":
            return before
        return await self.idle(handle, before.handled + 1)

    async def sleep(self, handle: WorkflowHandle[Any, Any], minutes: float) -> None:
        await self.env.sleep(timedelta(minutes=minutes))

    async def until_events(self, handle: WorkflowHandle[Any, Any], count: int) -> ProbeState:
        """Wait until the workflow has reported ``count`` warnings/breaches."""

        async def probe() -> ProbeState | None:
            state: ProbeState = await handle.query(SlaProbeWorkflow.state)
            return state if len(state.events) >= count and not state.busy else None

        return await eventually(probe)

    async def kpis(self, ticket_id: uuid.UUID) -> list[tuple[str, str, float | None]]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT event, details->>'clock' AS clock, value_seconds FROM support_kpi_events "
                "WHERE ticket_id = $1 AND event LIKE 'sla_%' ORDER BY id",
                ticket_id,
            )
        return [(r["event"], r["clock"], r["value_seconds"]) for r in rows]

    async def audit(self, ticket_id: uuid.UUID) -> list[str]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT action FROM support_audit_log WHERE ticket_id = $1 AND action LIKE 'sla.%' "
                "ORDER BY id",
                ticket_id,
            )
        return [r["action"] for r in rows]

    def mails(self) -> list[tuple[str, str]]:
        found = []
        for path in sorted(self.outbox.glob("*.eml")) if self.outbox.exists() else []:
            mail = message_from_bytes(path.read_bytes())
            found.append((str(mail["To"]), str(mail["Subject"])))
        return found


@pytest.fixture
async def probe(
    ts_env: WorkflowEnvironment,
    pool: asyncpg.Pool[Any],
    slack_server: FakeSlackServer,
    tmp_path: Path,
    task_queue: str,
) -> AsyncIterator[Probe]:
    outbox = tmp_path / "outbox"
    activities = SlaActivities(
        SlaEventStore(pool),
        chat=slack_incidents(slack_server, incident_channel=INCIDENTS, warning_channel=APPROVALS),
        mailer=OutboxMailer(outbox),
        policy=POLICY,
        public_url="http://kruxt.test",
    )
    async with Worker(
        ts_env.client,
        task_queue=task_queue,
        workflows=[SlaProbeWorkflow],
        activities=[activities.notify_sla, activities.record_sla_met],
        workflow_runner=workflow_runner(),
    ):
        yield Probe(ts_env, pool, slack_server, outbox, task_queue)


@pytest.mark.parametrize("priority", list(Priority))
async def test_each_priority_in_a_workflow_first_response_met_resolution_breached(
    probe: Probe, priority: Priority
) -> None:
    first, resolution = TABLE[priority]
    ticket_id, handle = await probe.start(priority)
    await probe.sleep(handle, first - 1)
    await probe.until_events(handle, 1)  # the first-response warning
    state = await probe.send(handle, "respond")
    clocks = {c.kind: c.state for c in state.summary.clocks}
    assert clocks[ClockKind.FIRST_RESPONSE] is ClockState.MET
    # The resolution clock: warned at 75 %, breached at its target.
    await probe.sleep(handle, resolution * 0.75 - first + 2)
    await probe.until_events(handle, 2)
    await probe.sleep(handle, resolution * 0.25 + 1)
    state = await probe.until_events(handle, 3)
    assert state.events == ["warning:first_response", "warning:resolution", "breach:resolution"]
    assert state.summary.breached
    kpis = await probe.kpis(ticket_id)
    assert [(e, c) for e, c, _ in kpis] == [
        ("sla_warning", "first_response"),
        ("sla_met", "first_response"),
        ("sla_warning", "resolution"),
        ("sla_breached", "resolution"),
    ]
    met_seconds = kpis[1][2]
    assert met_seconds is not None and abs(met_seconds - (first - 1) * 60) < 30
    overdue = kpis[3][2]
    assert overdue is not None and 0 <= overdue < 90
    described = await handle.describe()
    assert described.typed_search_attributes.get(sa.SLA_BREACHED) is True
    await probe.send(handle, "resolve")
    await handle.result()
    # Resolved late: no "met" for the resolution clock.
    assert [e for e, _, _ in await probe.kpis(ticket_id)].count("sla_met") == 1


async def test_warning_then_breach_reaches_slack_email_kpis_and_the_search_attribute(
    probe: Probe,
) -> None:
    ticket_id, handle = await probe.start(Priority.P1)
    await probe.sleep(handle, 11.5)  # 75 % of 15 min = 11.25
    await probe.until_events(handle, 1)
    warnings = probe.slack.calls_to("chat.postMessage")
    assert len(warnings) == 1
    assert warnings[0].body["channel"] == APPROVALS
    assert "SLA warning" in warnings[0].body["text"]
    assert probe.mails() == []  # a warning is not e-mailed
    described = await handle.describe()
    assert described.typed_search_attributes.get(sa.SLA_BREACHED) is None

    await probe.sleep(handle, 4)  # past 15 min
    await probe.until_events(handle, 2)
    posts = probe.slack.calls_to("chat.postMessage")
    assert len(posts) == 2
    breach = posts[1].body
    assert breach["channel"] == INCIDENTS
    assert "<@UONCALL>" in breach["blocks"][0]["text"]["text"]
    assert "SLA breached" in breach["blocks"][0]["text"]["text"]
    mails = probe.mails()
    assert len(mails) == 1
    assert mails[0][0] == "oncall@kruxt.app"
    assert "SLA breached (first response)" in mails[0][1]
    described = await handle.describe()
    assert described.typed_search_attributes.get(sa.SLA_BREACHED) is True
    kpis = await probe.kpis(ticket_id)
    assert [(e, c) for e, c, _ in kpis] == [
        ("sla_warning", "first_response"),
        ("sla_breached", "first_response"),
    ]
    assert await probe.audit(ticket_id) == ["sla.warning", "sla.breach"]

    # Answering late records no "met"; resolving in time does.
    await probe.send(handle, "respond")
    await probe.send(handle, "resolve")
    await handle.result()
    kinds = [(e, c) for e, c, _ in await probe.kpis(ticket_id)]
    assert ("sla_met", "first_response") not in kinds
    assert kinds[-1] == ("sla_met", "resolution")


async def test_a_ticket_in_an_open_incident_leaves_its_notices_to_the_incident(
    probe: Probe,
) -> None:
    ticket_id, handle = await probe.start(Priority.P1)
    store = IncidentStore(probe.pool)
    joined = await store.open_or_join(
        key="auth_login:login",
        ticket_id=ticket_id,
        priority=Priority.P1,
        category=Category.AUTH_LOGIN,
        title="Nobody can log in",
        window=timedelta(minutes=30),
        idempotency_key=f"join-{ticket_id}",
        now=await probe.env.get_current_time(),
    )
    await probe.sleep(handle, 16)  # warned at 11.25 min, breached at 15
    await probe.until_events(handle, 2)
    # The incident is paging about the cause: no post and no mail per ticket on top.
    assert probe.slack.calls_to("chat.postMessage") == []
    assert probe.mails() == []
    # Recorded all the same, saying where the notice went.
    assert [(e, c) for e, c, _ in await probe.kpis(ticket_id)] == [
        ("sla_warning", "first_response"),
        ("sla_breached", "first_response"),
    ]
    async with probe.pool.acquire() as conn:
        left_to = await conn.fetch(
            "SELECT action, details->>'left_to_incident' AS incident, details->'notified' AS who"
            " FROM support_audit_log WHERE ticket_id = $1 AND action LIKE 'sla.%' ORDER BY id",
            ticket_id,
        )
    assert [(r["action"], r["incident"], r["who"]) for r in left_to] == [
        ("sla.warning", str(joined.incident_id), []),
        ("sla.breach", str(joined.incident_id), []),
    ]

    # Once the incident is resolved, the ticket's clocks speak for themselves again.
    await store.set_status(
        incident_id=joined.incident_id,
        status=IncidentStatus.RESOLVED,
        actor="maya@kruxt.app",
        idempotency_key=f"resolve-{joined.incident_id}",
        list_tickets=False,
    )
    await probe.send(handle, "respond")
    await probe.sleep(handle, 4 * 60 * 0.75)  # the resolution clock's warning (P1: 4 h)
    await probe.until_events(handle, 3)
    assert len(probe.slack.calls_to("chat.postMessage")) == 1


async def test_waiting_on_the_customer_pauses_and_a_reply_resumes(probe: Probe) -> None:
    ticket_id, handle = await probe.start(Priority.P1)  # resolution: 240 min
    await probe.send(handle, "respond")
    await probe.sleep(handle, 60)
    state = await probe.send(handle, "wait_customer")
    resolution = next(c for c in state.summary.clocks if c.kind is ClockKind.RESOLUTION)
    assert resolution.state is ClockState.PAUSED
    assert resolution.deadline is None
    # Ten hours with the customer: no warning, no breach.
    await probe.sleep(handle, 600)
    state = await probe.idle(handle)
    assert state.events == []
    state = await probe.send(handle, "customer_replied")
    clock = next(c for c in state.clocks if c.kind is ClockKind.RESOLUTION)
    deadline = clock.deadline()
    assert deadline is not None
    expected = clock.started_at + timedelta(minutes=240 + 600)
    assert abs((deadline - expected).total_seconds()) < 30
    # 180 minutes of the clock remain: the warning (at 180 of 240) comes 120 minutes after
    # the reply, not before.
    await probe.sleep(handle, 110)
    assert (await probe.idle(handle)).events == []
    await probe.sleep(handle, 15)
    state = await probe.until_events(handle, 1)
    assert state.events == ["warning:resolution"]
    await probe.send(handle, "resolve")
    await handle.result()
    kpis = await probe.kpis(ticket_id)
    assert [(e, c) for e, c, _ in kpis] == [
        ("sla_met", "first_response"),
        ("sla_warning", "resolution"),
        ("sla_met", "resolution"),
    ]
    # The time it took excludes the ten hours with the customer.
    took = kpis[-1][2]
    assert took is not None
    assert abs(took - 185 * 60) < 60


async def test_priority_change_recomputes_the_deadlines_from_the_start(probe: Probe) -> None:
    ticket_id, handle = await probe.start(Priority.P4)  # first response: 240 min
    await probe.sleep(handle, 30)
    assert (await probe.idle(handle)).events == []
    # A human raises it to P1: its 15-minute first response was due 15 minutes ago.
    state = await probe.send(handle, "priority:P1")
    assert state.events == ["breach:first_response"]
    assert state.summary.breached
    breaches = [(c, v) for e, c, v in await probe.kpis(ticket_id) if e == "sla_breached"]
    assert len(breaches) == 1
    assert breaches[0][0] == "first_response"
    assert breaches[0][1] is not None
    assert abs(breaches[0][1] - 15 * 60) < 60
    resolution = next(c for c in state.clocks if c.kind is ClockKind.RESOLUTION)
    assert resolution.deadline() == resolution.started_at + timedelta(minutes=240)
    await probe.send(handle, "resolve")
    await handle.result()


async def test_targets_from_configuration_drive_the_timers(probe: Probe) -> None:
    targets = parse_sla_targets('{"first_response_minutes": {"P3": 20}, "warn_fraction": 0.5}')
    _, handle = await probe.start(Priority.P3, targets)
    await probe.sleep(handle, 11)
    assert (await probe.until_events(handle, 1)).events == ["warning:first_response"]
    await probe.sleep(handle, 10)
    state = await probe.until_events(handle, 2)
    assert state.events == ["warning:first_response", "breach:first_response"]
    await probe.send(handle, "resolve")
    await handle.result()
