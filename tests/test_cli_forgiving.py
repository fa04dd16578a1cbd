"""The `kruxt` CLI as a new user meets it: a quick start, short references accepted, staff
identities checked against the directory, output piped to `head` ending quietly."""

from __future__ import annotations

import ast
import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from kruxt.adapters.approvers import parse_approvers
from kruxt.adapters.postgres.approvals import ApprovalStore
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.models.approvals import DecisionChannel, Verdict
from kruxt.models.enums import TicketStatus
from kruxt.starter.approvals import ApprovalService, DecisionAttempt, DecisionRefusedError
from kruxt.starter.cli import CliError
from kruxt.starter.cli import main as kruxt
from kruxt.starter.cli_actions import staff_member
from tests.support import Cli, connection, pool_on, refusing_port

HEAVY = ("temporalio", "asyncpg", "fastapi", "openai", "slack_sdk")
STAFF = '[{"name": "Lead", "email": "lead@kruxt.app", "roles": ["staff"]}]'
# Two tickets share their first 8 characters; a third is told apart by its reference alone.
TWINS = (
    uuid.UUID("c8ac88ba-0000-4000-8000-000000000001"),
    uuid.UUID("c8ac88ba-0000-4000-8000-000000000002"),
)
LONE = uuid.UUID("5e1f0a7d-1111-4000-8000-000000000003")


def _python(*code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *code], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_help_imports_no_service_client() -> None:
    probe = (
        "import sys\n"
        "from kruxt.starter.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    )
    done = _python("-c", probe)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert "ticket" in done.stdout  # the help was printed


# What reading tickets never loads: the outside services' clients, the web framework, and
# Temporal's SDK while Temporal is away (the live state it would add is not there to read).
NOT_FOR_READING = ("fastapi", "githubkit", "openai", "slack_sdk", "temporalio")


def _kruxt_loading(*args: str) -> tuple[str, list[str]]:
    """``kruxt ARGS`` in a fresh interpreter: what it printed, and which of NOT_FOR_READING
    it loaded."""
    probe = (
        "import sys\n"
        "from kruxt.starter.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        f"print(sorted(loaded & set({NOT_FOR_READING!r})))\n"
        "sys.exit(code)\n"
    )
    done = _python("-c", probe, *args)
    assert done.returncode == 0, done.stderr
    *printed, loaded = done.stdout.strip().splitlines()
    return "\n".join(printed), ast.literal_eval(loaded)


async def test_reading_tickets_loads_no_service_client_and_no_temporal_while_it_is_away(
    offline: pytest.MonkeyPatch, db_dsn: str
) -> None:
    await _tickets(db_dsn)
    shown, loaded = await asyncio.to_thread(_kruxt_loading, "ticket", "show", "5E1F0A7D")
    assert f"Ticket   {LONE}" in shown
    assert loaded == []
    listed, loaded = await asyncio.to_thread(_kruxt_loading, "ticket", "list")
    assert str(LONE) in listed
    assert loaded == []


@pytest.mark.e2e
async def test_ticket_show_reads_the_live_state_without_the_workflows_code(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    async with cli.worker():
        opened = ("ticket", "new", "--email", "bo@example.com", "--subject", "Locked out")
        assert await cli.run(*opened, "--body", "My account is locked, I cannot log in.") == 0
        ticket_id = capsys.readouterr().out.split()[1]
        # The worker answers the workflow's `state` query: the SLA clocks are only there.
        shown, loaded = await asyncio.to_thread(_kruxt_loading, "ticket", "show", ticket_id)
    assert "SLA      first_response" in shown
    # Temporal's client is what reads the live state; the workflow's activities and the
    # SDKs they use (OpenAI, Slack, GitHub) are not.
    assert loaded == ["temporalio"]


async def _tickets(db_dsn: str) -> None:
    async with connection(db_dsn) as db:
        for n, ticket_id in enumerate((*TWINS, LONE)):
            await db.execute(
                "INSERT INTO support_tickets (id, channel, external_id, workflow_id, "
                "requester_id, requester_email, subject, priority) "
                "VALUES ($1, 'cli', $2, $3, 'ana', 'ana@example.com', $4, 'P3')",
                ticket_id,
                f"ext-{n}",
                f"ticket-{ticket_id}",
                f"Subject {n}",
            )


@pytest.fixture
def offline(isolated_env: pytest.MonkeyPatch, db_dsn: str) -> pytest.MonkeyPatch:
    """The CLI on the test's database; Temporal unreachable (nothing here needs it)."""
    isolated_env.setenv("DATABASE_URL", db_dsn)
    isolated_env.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{refusing_port()}")
    isolated_env.setenv("KRUXT_APPROVERS", STAFF)
    return isolated_env


async def run(*args: str) -> int:
    return await asyncio.to_thread(kruxt, list(args))


async def test_the_reference_customers_see_finds_the_ticket(
    offline: pytest.MonkeyPatch, db_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await _tickets(db_dsn)
    assert await run("ticket", "show", "5E1F0A7D") == 0
    assert f"Ticket   {LONE}" in capsys.readouterr().out

    assert await run("ticket", "show", "C8AC88BA") == 1
    err = capsys.readouterr().err
    assert "several ticket ids" in err
    assert str(TWINS[0]) in err and str(TWINS[1]) in err
    assert await run("ticket", "show", "c8ac88ba-0000-4000-8000-00000000000") == 1  # still two
    assert await run("ticket", "show", "c8ac88ba-0000-4000-8000-000000000002") == 0
    assert f"Ticket   {TWINS[1]}" in capsys.readouterr().out

    assert await run("ticket", "show", "0FF1CE00") == 1
    assert "no ticket 0FF1CE00" in capsys.readouterr().err
    assert await run("ticket", "show", "C8A") == 2  # too short to be a reference
    assert "not a ticket id" in capsys.readouterr().err


async def test_ticket_show_says_who_changed_the_priority_and_how_it_was_resolved(
    offline: pytest.MonkeyPatch, db_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await _tickets(db_dsn)
    async with pool_on(db_dsn, max_size=1) as pool:
        store = TicketStore(pool)
        await store.change_priority(
            ticket_id=LONE,
            priority="P1",
            actor="lead@kruxt.app",
            reason="gym-wide",
            idempotency_key="p",
        )
        await store.assign(
            ticket_id=LONE, assignee="sam@kruxt.app", actor="lead@kruxt.app", idempotency_key="a"
        )
        await store.change_status(
            ticket_id=LONE,
            status=TicketStatus.RESOLVED,
            actor="sam@kruxt.app",
            reason="unlocked by hand",
            idempotency_key="r",
        )
    assert await run("ticket", "show", "5e1f0a7d") == 0
    out = capsys.readouterr().out
    assert "Priority P1 · changed from P3 by lead@kruxt.app" in out
    assert ": gym-wide" in out
    assert "assigned to sam@kruxt.app" in out
    assert "by sam@kruxt.app · note: unlocked by hand" in out


async def test_a_staff_action_as_someone_unknown_is_refused_listing_who_is_known(
    offline: pytest.MonkeyPatch, db_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await _tickets(db_dsn)
    resolve = ("ticket", "resolve", "5E1F0A7D", "--as", "mallory@evil.example")
    assert await run(*resolve) == 2
    err = capsys.readouterr().err
    assert "'mallory@evil.example' is not in the approvers directory" in err
    assert "lead@kruxt.app" in err
    # A known one gets past the check, to Temporal (down here).
    assert await run("ticket", "priority", "5E1F0A7D", "P1", "--as", "LEAD@kruxt.app") == 1
    assert "cannot reach Temporal" in capsys.readouterr().err


async def test_a_decision_by_someone_unknown_gets_the_staff_actions_refusal(
    db_dsn: str,
) -> None:
    # One directory check for staff actions and decisions: the same refusal, listing who is
    # known, and the decision's refusal is audited (nothing is sent: no Temporal client here).
    directory = parse_approvers(STAFF, source="KRUXT_APPROVERS")
    with pytest.raises(CliError) as by_cli:
        staff_member(directory, "mallory@evil.example")
    await _tickets(db_dsn)
    async with pool_on(db_dsn, max_size=1) as pool:
        service = ApprovalService(cast(Any, None), approvers=directory, store=ApprovalStore(pool))
        attempt = DecisionAttempt(
            approval_id=uuid.uuid4(),
            approver_email="mallory@evil.example",
            verdict=Verdict.APPROVE,
            channel=DecisionChannel.CLI,
        )
        with pytest.raises(DecisionRefusedError) as by_service:
            await service.decide(attempt)
        audited = await pool.fetchval(
            "SELECT details->>'reason' FROM support_audit_log "
            "WHERE action = 'approval.decision_refused'"
        )
    refusal = str(by_service.value)
    assert "'mallory@evil.example' is not in the approvers directory" in refusal
    assert "lead@kruxt.app" in refusal
    assert by_cli.value.args[0] == f"--as {refusal}"
    assert audited == refusal


async def test_incident_show_by_reference_with_its_timeline(
    offline: pytest.MonkeyPatch, db_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await _tickets(db_dsn)
    incident_id = uuid.UUID("1ace1dea-2222-4000-8000-000000000004")
    async with connection(db_dsn) as db:
        await db.execute(
            "INSERT INTO support_incidents (id, key, priority, category, title, first_ticket_id, "
            "workflow_id, status, acknowledged_at, acknowledged_by) VALUES ($1, 'k', 'P1', "
            "'auth_login', 'Login is down', $2, $3, 'acknowledged', $4, 'maya@kruxt.app')",
            incident_id,
            LONE,
            f"incident-{incident_id}",
            datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        )
        await db.execute(
            "INSERT INTO support_incident_timeline (incident_id, entry, actor) VALUES "
            "($1, 'opened: Login is down', 'autopilot'), ($1, 'acknowledged', 'maya@kruxt.app')",
            incident_id,
        )
    assert await run("incident", "show", "1ACE1DEA") == 0
    out = capsys.readouterr().out
    assert f"Incident {incident_id}" in out
    assert "Acked    2026-01-02 03:04:05 UTC by maya@kruxt.app" in out
    assert "Timeline (2)" in out
    assert "acknowledged — maya@kruxt.app" in out

    # --all pages through the database: every ticket, every line (here, all there are).
    async with connection(db_dsn) as db:
        await db.execute(
            "INSERT INTO support_incident_tickets (incident_id, ticket_id) VALUES ($1, $2)",
            incident_id,
            LONE,
        )
    assert await run("incident", "show", "1ACE1DEA", "--all") == 0
    out = capsys.readouterr().out
    assert f"Tickets  1\n  {LONE}\n" in out
    assert "Timeline (2)" in out and "more" not in out


def test_output_to_a_closed_pipe_ends_quietly(offline: pytest.MonkeyPatch, db_dsn: str) -> None:
    read, write = os.pipe()
    os.close(read)  # `| head` that has read all it wanted
    try:
        done = subprocess.run(
            [sys.executable, "-m", "kruxt", "ticket", "list"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write)
    assert done.stderr == ""
    assert done.returncode == 141
