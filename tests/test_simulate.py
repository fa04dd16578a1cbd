"""``kruxt simulate`` and ``kruxt eval export-corrections`` over tickets stored in a real
PostgreSQL through the real stores, as the ticket workflow stores them."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from kruxt.adapters.app_db import KruxtApp
from kruxt.adapters.postgres.approvals import ApprovalStore
from kruxt.adapters.postgres.playbook_runs import PlaybookRunStore
from kruxt.adapters.postgres.pool import connect
from kruxt.adapters.postgres.simulation import SimulationReader
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.adapters.settings import PROJECT_ROOT
from kruxt.agents.evaluation import EvalReport, labeled_from_corrections
from kruxt.agents.harness import Change, SimulationReport, Triager, simulate
from kruxt.agents.triage_rules import RULES_VERSION, triage_by_rules
from kruxt.models.approvals import (
    ApprovalRecord,
    ApprovalStatus,
    DecisionChannel,
    TriageCorrection,
)
from kruxt.models.catalog import playbook_for
from kruxt.models.enums import Category, Channel, Priority, TicketStatus
from kruxt.models.incidents import IncidentCluster
from kruxt.models.records import MessageKind, ThreadMessage
from kruxt.models.routing import Route, decide_route
from kruxt.models.simulation import Happened, StoredTicket
from kruxt.models.tickets import RoutingPolicy
from kruxt.models.triage import TriageInput, TriageOutcome, TriageResult
from kruxt.starter.cli import main as kruxt
from kruxt.starter.eval_cli import load_dataset
from kruxt.workers.composition import Outside, build_worker
from tests.fakes.openai_server import FakeOpenAIServer, status, valid
from tests.support import intake, locked_ticket, pending_approval, start_ticket, until_status

EXPORT = ("Where is my data export?", "I asked for an export of my data 5 days ago, any news?")
GARMIN = ("Garmin not syncing", "My Garmin watch stopped syncing workouts since yesterday.")
INVOICE = ("Invoice", "Can you resend my invoice for March? I cannot find it.")
OUTAGE = ("Nobody at our gym can log in", "Since 7am none of our members can log in")
POLICY = RoutingPolicy()


@dataclass
class Stored:
    """A ticket stored as the workflow would have handled it under today's rules."""

    ticket_id: uuid.UUID
    result: TriageResult
    route: Route


async def store(
    pool: asyncpg.Pool[Any],
    subject: str,
    body: str,
    *,
    correction: TriageCorrection | None = None,
    channel: DecisionChannel = DecisionChannel.SLACK,
    triaged_as: Category | None = None,
) -> Stored:
    """Persist, triage with the rules and route a ticket through the stores; with
    ``correction``, an approver rejected its plan as "triage wrong"; with ``triaged_as``, an
    earlier triager put it in that category (and its playbook)."""
    ticket = intake(subject=subject, body=body)
    tid = ticket.ticket_id
    tickets = TicketStore(pool)
    await tickets.persist_ticket(
        intake=ticket, workflow_id=f"ticket-{tid}", idempotency_key=f"p{tid}"
    )
    result = triage_by_rules(
        TriageInput(ticket_id=tid, channel=Channel.IN_APP, subject=subject, body=body)
    )
    if triaged_as is not None:
        moved = {"category": triaged_as, "playbook": playbook_for(triaged_as), "confidence": 0.9}
        result = result.model_copy(update=moved)
    outcome = TriageOutcome(
        result=result, model="rules", prompt_version=RULES_VERSION, input_digest="-"
    )
    await tickets.record_triage(ticket_id=tid, outcome=outcome, idempotency_key=f"t{tid}")
    route = decide_route(result, POLICY).route
    if route is Route.AUTO_REPLY:
        reply = ThreadMessage(
            ticket_id=tid, message_id=uuid.uuid4(), kind=MessageKind.AUTO_REPLY, body="Here."
        )
        await tickets.record_outbound_message(reply, idempotency_key=f"r{tid}")
    if route is Route.PLAYBOOK:
        await PlaybookRunStore(pool).record_plan(
            ticket_id=tid,
            plan_id=uuid.uuid4(),
            playbook=result.playbook or "",
            plan=None,
            reason="nothing to fix",
            idempotency_key=f"plan{tid}",
        )
    if correction is not None:
        await _rejected_as_wrong(pool, tid, result, correction, channel)
    return Stored(tid, result, route)


async def _rejected_as_wrong(
    pool: asyncpg.Pool[Any],
    ticket_id: uuid.UUID,
    result: TriageResult,
    correction: TriageCorrection,
    channel: DecisionChannel,
) -> None:
    """A plan put to an approver, who rejected it: "triage wrong", with the correction."""
    request = await pending_approval(
        pool,
        ticket_id,
        playbook=result.playbook or "none",
        summary=result.summary,
        severity=result.severity,
        confidence=result.confidence,
    )
    decided = ApprovalRecord(
        request=request,
        status=ApprovalStatus.REJECTED,
        decided_by="founder@kruxt.dev",
        channel=channel,
        reason="triage wrong",
        correction=correction,
        triage_accepted=False,
    )
    await ApprovalStore(pool).record(record=decided, idempotency_key=f"d{ticket_id}")


def moving(source: Category, to: Category) -> Triager:
    """The rules with one change: tickets of ``source`` go to ``to`` (which has no playbook)."""

    def triage(inp: TriageInput) -> TriageResult:
        result = triage_by_rules(inp)
        if result.category is not source:
            return result
        return result.model_copy(update={"category": to, "playbook": None})

    return triage


async def run_simulation(pool: asyncpg.Pool[Any], triage: Triager) -> SimulationReport:
    until = datetime.now(UTC)
    since = until - timedelta(days=1)
    tickets = await SimulationReader(pool).tickets(since=since)
    return simulate(
        tickets,
        triage,
        POLICY,
        triager="candidate",
        since=since,
        until=until,
        incident_window=timedelta(hours=6),
        cluster=IncidentCluster(count=3, minutes=30),
    )


async def test_a_rules_change_that_moves_a_category_shows_the_changed_route(
    pool: asyncpg.Pool[Any],
) -> None:
    export = await store(pool, *EXPORT)
    garmin = await store(pool, *GARMIN)
    invoice = await store(pool, *INVOICE)
    assert export.route is Route.AUTO_REPLY  # what the rules do today

    unchanged = await run_simulation(pool, triage_by_rules)
    assert unchanged.tickets == 3
    assert unchanged.changed_tickets == 0
    assert unchanged.auto_replies_happened == unchanged.auto_replies_would == 1
    assert unchanged.routes_happened == unchanged.routes_would

    moved = await run_simulation(pool, moving(export.result.category, Category.OTHER))
    rows = {row.ticket_id: row for row in moved.rows}
    row = rows[str(export.ticket_id)]
    assert row.changes == [Change.CATEGORY, Change.ROUTE, Change.AUTO_REPLY]
    assert row.happened is not None
    assert (row.happened.route, row.would.route) == (Route.AUTO_REPLY, Route.HUMAN)
    assert row.would.category is Category.OTHER
    assert moved.changed[Change.ROUTE] == moved.changed_tickets == 1
    assert (moved.auto_replies_happened, moved.auto_replies_would) == (1, 0)
    assert not rows[str(garmin.ticket_id)].changes
    assert not rows[str(invoice.ticket_id)].changes


async def test_tickets_the_workflow_handled_replay_unchanged_under_the_same_rules(
    ts_env: WorkflowEnvironment, pool: asyncpg.Pool[Any], task_queue: str, app: KruxtApp
) -> None:
    """What the live workflow stores is what simulate reads: the same rules, no change."""
    handled = (
        TicketStatus.AWAITING_CUSTOMER,
        TicketStatus.AWAITING_APPROVAL,
        TicketStatus.AWAITING_HUMAN,
    )
    async with build_worker(
        ts_env.client, task_queue=task_queue, pool=pool, outside=Outside(app=app)
    ):
        # In order of arrival: the lone P2 lockout before the outage, which it does not join.
        for ticket in (
            intake(subject=EXPORT[0], body=EXPORT[1]),
            locked_ticket(),
            intake(subject=OUTAGE[0], body=OUTAGE[1]),
        ):
            handle = await start_ticket(ts_env.client, ticket, task_queue=task_queue)
            await until_status(handle, *handled, timeout=60)

    report = await run_simulation(pool, triage_by_rules)
    assert report.tickets == 3 and report.not_triaged == 0
    assert report.changed_tickets == 0, [(r.subject, r.changes) for r in report.rows]
    assert report.routes_happened[Route.AUTO_REPLY] == report.auto_replies_happened == 1
    assert report.routes_happened[Route.PLAYBOOK] >= 1
    assert report.incidents_happened == report.incidents_would == 1


async def test_corrections_are_the_labels_both_sides_are_scored_against(
    pool: asyncpg.Pool[Any],
) -> None:
    garmin = await store(
        pool, *GARMIN, correction=TriageCorrection(category=Category.WORKOUT_LOG_SUBMIT)
    )
    await store(pool, *INVOICE)
    candidate = moving(garmin.result.category, Category.WORKOUT_LOG_SUBMIT)

    report = await run_simulation(pool, candidate)
    labelled = next(r for r in report.rows if r.ticket_id == str(garmin.ticket_id))
    assert labelled.label_category is Category.WORKOUT_LOG_SUBMIT
    assert labelled.label_severity is None
    assert (report.category_labels.labelled, report.category_labels.happened) == (1, 0)
    assert report.category_labels.would == 1
    assert report.severity_labels.labelled == 0


# Every row as text, in a stable order: a digest that any insert, update or delete changes.
_DIGEST = "SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM "


async def snapshot(db_dsn: str) -> dict[str, tuple[int, str]]:
    """Every table of the support schema: its row count and a digest of its rows."""
    conn = await connect(db_dsn)
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
        out = {}
        for row in tables:
            found = await conn.fetchrow(f'{_DIGEST}"{row["tablename"]}" t')
            assert found is not None
            out[row["tablename"]] = (found[0], found[1])
        return out
    finally:
        await conn.close()


@pytest.fixture
def dev_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, runtime_dsn: str) -> Path:
    """A `kruxt dev` home whose dev.env points at the test database (as the runtime role);
    nothing else configured."""
    for name in ("DATABASE_URL", "TEMPORAL_ADDRESS", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    (home / "dev.env").write_text(f"DATABASE_URL={runtime_dsn}\n")
    monkeypatch.setenv("KRUXT_HOME", str(home))
    return home


async def cli(*args: str) -> int:
    return await asyncio.to_thread(kruxt, list(args))


async def test_cli_prints_the_table_writes_json_and_html_and_writes_nothing_to_the_db(
    pool: asyncpg.Pool[Any],
    db_dsn: str,
    dev_home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await store(pool, *EXPORT)
    await store(pool, *GARMIN, correction=TriageCorrection(severity=Priority.P2))
    # Put in integration_sync by an earlier triager: today's rules send it to a person.
    odd = await store(
        pool,
        "<b>\x1b[2Jhi</b>",
        "What are your opening hours?",
        triaged_as=Category.INTEGRATION_SYNC,
    )
    before = await snapshot(db_dsn)

    report_file = tmp_path / "report.json"
    assert await cli("simulate", "--since", "2h", "--json", str(report_file)) == 0
    out = capsys.readouterr().out
    assert "Simulation: rules" in out
    assert "tickets" in out and "3 (0 never triaged)" in out
    assert "severity vs corrections" in out
    assert f"report written to {report_file}" in out
    assert "Would change (1):" in out
    (line,) = [line for line in out.splitlines() if line.startswith(f"  {str(odd.ticket_id)[:8]}")]
    assert "integration_sync -> " in line
    assert "playbook -> human" in line
    assert line.endswith("<b>hi</b>")  # the escape sequence is not printed
    report = SimulationReport.model_validate_json(report_file.read_text())
    assert report.tickets == 3 and report.changed_tickets == 1
    assert report.severity_labels.labelled == 1

    page = tmp_path / "report.html"
    assert await cli("simulate", "--since", "2h", "--html", str(page)) == 0
    text = page.read_text()
    assert "&lt;b&gt;" in text and "<b>" not in text

    assert await snapshot(db_dsn) == before


async def test_cli_candidate_llm_with_a_prompt_version_against_the_configured_base_url(
    pool: asyncpg.Pool[Any],
    dev_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    export = await store(pool, *EXPORT)
    answer = {
        "summary": "Asks about a data export.",
        "severity": "P3",
        "category": "other",
        "playbook": "none",
        "probable_root_cause": "Unknown.",
        "recommended_action": "Answer.",
        "suspected_injection": False,
        "confidence": 0.9,
    }
    # A candidate prompt next to the live ones: --prompt-version picks it.
    prompts = tmp_path / "prompts"
    shutil.copytree(PROJECT_ROOT / "prompts", prompts)
    (prompts / "triage" / "v99.md").write_text("Candidate prompt: triage the ticket.\n")
    monkeypatch.setenv("KRUXT_PROMPTS_DIR", str(prompts))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    report_file = tmp_path / "llm.json"
    args = ("simulate", "--triager", "llm", "--prompt-version", "v99", "--json", str(report_file))
    with FakeOpenAIServer(api_key="sk-test") as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        server.script(valid(answer))
        assert await cli(*args) == 0
        (request,) = server.requests
        assert request.json["messages"][0]["content"] == "Candidate prompt: triage the ticket.\n"
        report = SimulationReport.model_validate_json(report_file.read_text())
        assert report.triager.endswith("triage/v99")
        (row,) = report.rows
        assert row.ticket_id == str(export.ticket_id)
        assert row.would.category is Category.OTHER and row.would.route is Route.HUMAN
        assert Change.ROUTE in row.changes

        # An outage of the server is retried; a refusal gets the rules' answer, as live.
        server.script(status(503), valid(answer))
        assert await cli(*args) == 0
        (row,) = SimulationReport.model_validate_json(report_file.read_text()).rows
        assert row.would.category is Category.OTHER
        server.script(status(400))
        assert await cli(*args) == 0
        assert "1 of 1 LLM calls failed (LlmRejected)" in capsys.readouterr().err
        (row,) = SimulationReport.model_validate_json(report_file.read_text()).rows
        assert row.would.category is export.result.category and not row.changes


async def test_usage_errors_exit_2(dev_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert await cli("simulate", "--prompt-version", "v2") == 2
    assert "--prompt-version needs --triager llm" in capsys.readouterr().err
    assert await cli("simulate", "--triager", "llm") == 2
    assert "needs OPENAI_API_KEY" in capsys.readouterr().err
    with pytest.raises(SystemExit) as bad_period:
        await cli("simulate", "--since", "30x")
    assert bad_period.value.code == 2


async def test_export_corrections_round_trips_into_eval(
    pool: asyncpg.Pool[Any], dev_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garmin = await store(
        pool, *GARMIN, correction=TriageCorrection(category=Category.WORKOUT_LOG_SUBMIT)
    )
    invoice = await store(
        pool,
        *INVOICE,
        correction=TriageCorrection(severity=Priority.P2),
        channel=DecisionChannel.CLI,
    )
    await store(pool, *EXPORT)  # no correction: not exported

    dataset = tmp_path / "corrections.jsonl"
    assert await cli("eval", "export-corrections", "--since", "1d", "--out", str(dataset)) == 0
    assert "2 corrected tickets" in capsys.readouterr().out
    labeled = {t.id: t for t in load_dataset(dataset)}
    assert set(labeled) == {str(garmin.ticket_id), str(invoice.ticket_id)}
    g, i = labeled[str(garmin.ticket_id)], labeled[str(invoice.ticket_id)]
    assert (g.subject, g.body) == GARMIN
    # What the person corrected, and the triage they left as it was.
    assert (g.expected_category, g.expected_severity) == (
        Category.WORKOUT_LOG_SUBMIT,
        garmin.result.severity,
    )
    assert (i.expected_category, i.expected_severity) == (invoice.result.category, Priority.P2)
    assert all(not t.out_of_scope and not t.injection for t in labeled.values())
    for line in dataset.read_text().splitlines():
        assert set(json.loads(line)) == {
            "id",
            "subject",
            "body",
            "expected_category",
            "expected_severity",
            "out_of_scope",
            "injection",
        }

    assert await cli("eval", "triage", "--dataset", str(dataset), "--json") == 0
    report = EvalReport.model_validate_json(capsys.readouterr().out)
    assert report.n == 2
    assert report.category_correct == 1  # the rules still miss the Garmin correction


# -- the harness without a database -------------------------------------------------------


def _stored(at: datetime, body: str) -> StoredTicket:
    return StoredTicket(
        ticket_id=uuid.uuid4(), created_at=at, channel=Channel.IN_APP, subject="s", body=body
    )


def outage(inp: TriageInput) -> TriageResult:
    """One cause for every ticket; the severity is the ticket's body."""
    return TriageResult(
        summary="Sign-in fails.",
        severity=Priority(inp.body),
        category=Category.AUTH_LOGIN,
        playbook="auth_login",
        probable_root_cause="Login API down",
        recommended_action="Page.",
        confidence=0.9,
    )


START = datetime(2026, 11, 1, 8, tzinfo=UTC)
# (minutes after START, severity): a P2 cluster, a later P2, a P4, a lone P2, then an outage.
DAY = [(0, "P2"), (10, "P2"), (20, "P2"), (40, "P2"), (60, "P4"), (420, "P2"), (480, "P1")]


@pytest.mark.parametrize(
    ("cluster", "opened", "in_incident"),
    [
        # 3 P2s in 30 min open one, with the earlier two; the fourth joins it; once the
        # window has passed a lone P2 pages nobody, the P1 opens the second.
        (IncidentCluster(count=3, minutes=30), 2, [1, 1, 1, 1, 0, 0, 1]),
        # Without clusters every P2 opens or joins, as a P1 does.
        (None, 2, [1, 1, 1, 1, 0, 1, 1]),
    ],
)
def test_incidents_that_would_open_follow_the_cluster_rule_and_the_window(
    cluster: IncidentCluster | None, opened: int, in_incident: list[int]
) -> None:
    tickets = [_stored(START + timedelta(minutes=m), severity) for m, severity in DAY]
    report = simulate(
        tickets,
        outage,
        POLICY,
        triager="t",
        since=START,
        until=START + timedelta(days=1),
        incident_window=timedelta(hours=6),
        cluster=cluster,
    )
    assert report.incidents_would == opened
    assert [int(row.would.incident) for row in report.rows] == in_incident
    assert report.not_triaged == len(DAY) and report.incidents_happened == 0


def test_export_fills_the_label_the_person_left_and_skips_the_unknown() -> None:
    at = datetime(2026, 11, 1, tzinfo=UTC)
    happened = Happened(
        category=Category.AUTH_LOGIN,
        severity=Priority.P3,
        triaged_by="rules",
        prompt_version="rules-v3",
        route=Route.HUMAN,
        auto_replies=0,
        opened_incident=False,
    )
    fixed = _stored(at, "a").model_copy(
        update={"happened": happened, "correction": TriageCorrection(severity=Priority.P1)}
    )
    half_known = _stored(at, "b").model_copy(
        update={"correction": TriageCorrection(category=Category.OTHER)}
    )
    (only,) = labeled_from_corrections([fixed, half_known, _stored(at, "c")])
    assert (only.expected_category, only.expected_severity) == (Category.AUTH_LOGIN, Priority.P1)
