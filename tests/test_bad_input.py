"""A bad character never wedges a ticket.

Intake (HTTP and CLI) refuses NUL, other C0 controls, DEL and unpaired surrogates with an
error naming the field, and starts nothing. A ticket or follow-up that gets past intake
anyway (started directly, as an older client or a new channel could) is stored with the
refused characters replaced and goes to a person, audited, instead of retrying forever; the
ticket goes on with the next normal follow-up.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.models.enums import Channel, TicketStatus
from kruxt.models.tickets import (
    CustomerMessage,
    RoutingPolicy,
    TicketIntake,
    inbound_message_id_for,
    ticket_id_for,
    workflow_id_for,
)
from kruxt.starter.api.app import ApiDeps, create_app
from kruxt.starter.cli import main as kruxt
from kruxt.starter.intake import IntakeService
from kruxt.workers.composition import WORKFLOWS, build_worker, workflow_runner
from kruxt.workflows.ticket import TicketWorkflow
from tests import test_incidents
from tests.support import (
    TicketRig,
    asgi_client,
    eventually,
    intake,
    resolve,
    ticket_body,
    until_status,
)
from tests.test_incidents import Env

# The incident tests' worker (real activities, fake Slack, outbox mail) for the incident case.
env = test_incidents.env

TOKEN = "test-intake-token"
BAD = {
    "NUL": "\x00",
    "SOH": "\x01",
    "ESC": "\x1b",
    "US": "\x1f",
    "DEL": "\x7f",
    "surrogate": "\ud800",
}
PRIVACY = {
    "subject": "Status of my data deletion request",
    "body": "I asked for my account data to be deleted two weeks ago. What is the status?",
}


@dataclass
class Api:
    http: httpx.AsyncClient
    client: Client
    pool: asyncpg.Pool[Any]

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        # json.dumps escapes an unpaired surrogate as \\ud800, exactly as a client would send it.
        return await self.http.post(
            path, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )

    async def started(self, external_id: str) -> bool:
        try:
            external_id.encode()
        except UnicodeEncodeError:
            return False  # no ticket id can be derived from it, so none was started
        handle = self.client.get_workflow_handle(
            workflow_id_for(ticket_id_for(Channel.IN_APP, external_id))
        )
        try:
            await handle.describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True


@pytest.fixture
async def api(
    ts_env: WorkflowEnvironment, pool: asyncpg.Pool[Any], task_queue: str
) -> AsyncIterator[Api]:
    deps = ApiDeps(
        intake=IntakeService(ts_env.client, task_queue=task_queue, policy=RoutingPolicy()),
        tickets=TicketStore(pool),
        intake_token=TOKEN,
        health_checks={},
    )
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        build_worker(ts_env.client, task_queue=task_queue, pool=pool),
        asgi_client(create_app(deps), headers=bearer) as http,
    ):
        yield Api(http, ts_env.client, pool)


def with_bad(field: str, value: str) -> dict[str, Any]:
    body = ticket_body(**PRIVACY)
    match field.split("."):
        case ["requester", key]:
            body["requester"][key] = value
        case [key]:
            body[key] = value
    return body


async def tickets_stored(pool: asyncpg.Pool[Any]) -> int:
    async with pool.acquire() as conn:
        count: int = await conn.fetchval("SELECT count(*) FROM support_tickets")
    return count


@pytest.mark.parametrize(
    "field",
    [
        "subject",
        "body",
        "external_id",
        "account_id",
        "requester.name",
        "requester.id",
    ],  # an e-mail address with a control character was refused before (email-validator)
)
async def test_a_bad_character_in_a_new_ticket_is_422_naming_the_field(
    api: Api, field: str
) -> None:
    # Inside the text, and at its end (where stripping would have hidden some of them).
    cases = [(label, bad, value) for label, bad in BAD.items() for value in (f"x{bad}y", f"x{bad}")]
    for label, bad, value in cases:
        body = with_bad(field, value)
        r = await api.post("/v1/tickets", body)
        assert r.status_code == 422, (label, value, r.text)
        fields = {f["field"]: f["message"] for f in r.json()["fields"]}
        assert list(fields) == [field], (label, value, fields)
        assert f"U+{ord(bad):04X}" in fields[field], (label, value, fields)
        assert not await api.started(body["external_id"]), label
    assert await tickets_stored(api.pool) == 0


async def test_a_bad_follow_up_is_422_and_the_ticket_goes_on(api: Api) -> None:
    r = await api.post("/v1/tickets", ticket_body(**PRIVACY))
    assert r.status_code == 202
    ticket_id = r.json()["ticket_id"]
    handle = api.client.get_workflow_handle(r.json()["workflow_id"])
    await until_status(handle, TicketStatus.AWAITING_CUSTOMER)

    path = f"/v1/tickets/{ticket_id}/messages"
    for label, bad in BAD.items():
        r = await api.post(path, {"external_id": f"m-{label}", "body": f"Still{bad}waiting"})
        assert r.status_code == 422, (label, r.text)
        assert [f["field"] for f in r.json()["fields"]] == ["body"]
        r = await api.post(path, {"external_id": f"m{bad}x", "body": "Still waiting"})
        assert r.status_code == 422, (label, r.text)
        assert [f["field"] for f in r.json()["fields"]] == ["external_id"]

    r = await api.post(path, {"external_id": "m-ok", "body": "Still waiting on that."})
    assert r.status_code == 202
    state = await until_status(handle, TicketStatus.AWAITING_HUMAN)
    assert state.messages_received == 1
    view = (await api.http.get(f"/v1/tickets/{ticket_id}")).json()
    assert [m["body"] for m in view["messages"] if m["kind"] == "customer"] == [
        PRIVACY["body"],
        "Still waiting on that.",
    ]


async def test_the_cli_refuses_a_bad_character_and_starts_nothing(
    ts_env: WorkflowEnvironment,
    db_dsn: str,
    pool: asyncpg.Pool[Any],
    task_queue: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KRUXT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DATABASE_URL", db_dsn)
    monkeypatch.setenv("TEMPORAL_ADDRESS", ts_env.client.service_client.config.target_host)
    monkeypatch.setenv("KRUXT_TASK_QUEUE", task_queue)
    for flag, field in (("--subject", "subject"), ("--body", "body"), ("--name", "requester.name")):
        for label, bad in BAD.items():
            args = {"--subject": "Locked out", "--body": "I cannot log in.", "--name": "Bo"}
            args[flag] = f"Bo{bad}x"
            external_id = f"cli-{uuid.uuid4().hex[:8]}"
            argv = ["ticket", "new", "--email", "bo@example.com", "--external-id", external_id]
            argv += [part for pair in args.items() for part in pair]
            code = await asyncio.to_thread(kruxt, argv)
            err = capsys.readouterr().err
            assert code == 2, (label, err)
            assert f"refused {field}" in err and f"U+{ord(bad):04X}" in err, (label, err)
            handle = ts_env.client.get_workflow_handle(
                workflow_id_for(ticket_id_for(Channel.CLI, external_id))
            )
            with pytest.raises(RPCError) as missing:
                await handle.describe()
            assert missing.value.status == RPCStatusCode.NOT_FOUND
    assert await tickets_stored(pool) == 0


# -- past intake: the workflow sends the ticket to a person instead of retrying forever ----


async def _attempts(handle: WorkflowHandle[Any, Any], activity: str) -> list[int]:
    """The attempt number of each execution of ``activity`` in the history."""
    history = await handle.fetch_history()
    scheduled: dict[int, str] = {}
    attempts: list[int] = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = attrs.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs_started = event.activity_task_started_event_attributes
            if scheduled.get(attrs_started.scheduled_event_id) == activity:
                attempts.append(attrs_started.attempt)
    return attempts


async def _replays(client: Client, handle: WorkflowHandle[Any, Any]) -> None:
    """The new path is deterministic: its history replays with today's code."""
    replayer = Replayer(
        workflows=list(WORKFLOWS),
        data_converter=client.data_converter,
        workflow_runner=workflow_runner(),
    )
    result = await replayer.replay_workflow(
        await handle.fetch_history(), raise_on_replay_failure=False
    )
    assert result.replay_failure is None


async def _audit(pool: asyncpg.Pool[Any], ticket_id: uuid.UUID) -> list[tuple[str, Any]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT action, details FROM support_audit_log WHERE ticket_id = $1 ORDER BY id",
            ticket_id,
        )
    return [(r["action"], r["details"]) for r in rows]


async def test_a_ticket_past_intake_with_nul_goes_to_a_person_not_into_retries(
    tickets: TicketRig, ts_env: WorkflowEnvironment, pool: asyncpg.Pool[Any]
) -> None:
    good = intake()
    # model_copy does not validate: this is what an intake that forgot to check would start.
    ticket: TicketIntake = good.model_copy(
        update={"subject": "Locked\x00out", "body": "I cannot\x00 log in."}
    )
    store = TicketStore(pool)
    handle = await tickets.start(ticket)
    state = await until_status(handle, TicketStatus.AWAITING_HUMAN)
    assert state.triage is None  # nobody triages text that was not stored as sent
    # The refused write ran once (non-retryable), then the repaired one once.
    assert await _attempts(handle, "persist_ticket") == [1, 1]

    view = await store.get(ticket.ticket_id)
    assert view is not None
    assert view.status is TicketStatus.AWAITING_HUMAN
    assert view.subject == "Locked\ufffdout"
    assert [m.kind for m in view.messages] == ["customer", "holding"]
    assert view.messages[0].body == "I cannot\ufffd log in."
    reasons = [
        d["reason"] for a, d in await _audit(pool, ticket.ticket_id) if a == "ticket.status_changed"
    ]
    assert len(reasons) == 1
    assert "could not be stored as sent" in reasons[0]
    assert "BadTicketData" in reasons[0]

    # The ticket goes on: a normal follow-up is recorded.
    await handle.signal(
        TicketWorkflow.customer_message,
        CustomerMessage(
            message_id=inbound_message_id_for(ticket.ticket_id, "m2"),
            body="Any news?",
            received_at=await ts_env.get_current_time(),
        ),
    )

    async def followed_up() -> bool:
        state = await handle.query(TicketWorkflow.state)
        return bool(state.messages_received == 1)

    await eventually(followed_up)
    view = await store.get(ticket.ticket_id)
    assert view is not None and view.messages[-1].body == "Any news?"
    outcome = await resolve(handle)
    assert outcome.status is TicketStatus.RESOLVED
    await _replays(ts_env.client, handle)


async def test_a_follow_up_past_intake_with_nul_goes_to_a_person_and_the_next_is_handled(
    tickets: TicketRig, ts_env: WorkflowEnvironment, pool: asyncpg.Pool[Any]
) -> None:
    ticket = intake(subject=PRIVACY["subject"], body=PRIVACY["body"])
    store = TicketStore(pool)
    handle = await tickets.start(ticket)
    await until_status(handle, TicketStatus.AWAITING_CUSTOMER)

    async def say(key: str, body: str) -> None:
        await handle.signal(
            TicketWorkflow.customer_message,
            CustomerMessage(
                message_id=inbound_message_id_for(ticket.ticket_id, key),
                body=body,
                received_at=await ts_env.get_current_time(),
            ),
        )

    await say("m2", "It still\x00 shows pending.")
    state = await until_status(handle, TicketStatus.AWAITING_HUMAN)
    assert await _attempts(handle, "record_inbound_message") == [1, 1]
    reasons = [
        d["reason"] for a, d in await _audit(pool, ticket.ticket_id) if a == "ticket.status_changed"
    ]
    assert "a follow-up could not be stored as sent" in reasons[-1]
    assert "BadTicketData" in reasons[-1]

    await say("m3", "Any news?")

    async def second() -> bool:
        s = await handle.query(TicketWorkflow.state)
        return bool(s.messages_received == 2)

    await eventually(second)
    view = await store.get(ticket.ticket_id)
    assert view is not None
    customer = [m.body for m in view.messages if m.kind == "customer"]
    assert customer == [PRIVACY["body"], "It still\ufffd shows pending.", "Any news?"]
    outcome = await resolve(handle)
    assert outcome.status is TicketStatus.RESOLVED
    assert state.status is TicketStatus.AWAITING_HUMAN
    await _replays(ts_env.client, handle)


async def test_an_incident_resolution_note_with_nul_resolves_the_incident(env: Env) -> None:
    incident, handle = await env.open_incident()
    await env.pages(handle, 1)
    # The note reaches the workflow as given; the record must not retry it forever.
    resolved = await asyncio.wait_for(
        env.service().resolve(incident.incident_id, by="oncall@kruxt.app", note="rolled\x00back"),
        timeout=30,
    )
    assert resolved.status.value == "resolved"
    await handle.result()
    async with env.pool.acquire() as conn:
        note = await conn.fetchval(
            "SELECT resolution_note FROM support_incidents WHERE id = $1", incident.incident_id
        )
    assert note == "rolled\ufffdback"
