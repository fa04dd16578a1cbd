"""The `kruxt` CLI: real commands against the dev server and Postgres; clear failures."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from kruxt.starter.cli import main as kruxt
from tests.support import Cli, eventually, refusing_port

# Staff actions are taken as someone in the approvers directory.
STAFF = (
    '[{"name": "Lead", "email": "lead@kruxt.app", "roles": ["staff"]},'
    ' {"name": "X", "email": "x@kruxt.app", "roles": ["staff"]}]'
)


async def run(*args: str) -> int:
    return await asyncio.to_thread(kruxt, list(args))


@pytest.mark.e2e
async def test_ticket_new_show_list_resolve(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    cli.env.setenv("KRUXT_APPROVERS", STAFF)
    cli.env.setenv("KRUXT_REOPEN_WINDOW", "3s")  # real time on the dev server
    async with cli.worker():
        code = await run(
            "ticket", "new", "--email", "bo@example.com", "--name", "Bo",
            "--subject", "Locked out", "--body", "My account is locked, I cannot log in.",
        )  # fmt: skip
        out = capsys.readouterr().out
        assert code == 0
        ticket_id = out.split()[1]
        assert "Status   awaiting_human" in out
        assert "auth_login" in out

        assert await run("ticket", "show", ticket_id) == 0
        assert "acknowledgement" in capsys.readouterr().out
        assert await run("ticket", "list", "--status", "awaiting_human") == 0
        assert ticket_id in capsys.readouterr().out

        assert await run("ticket", "assign", ticket_id, "--to", "nope", "--as", "x@kruxt.app") == 2
        assert "invalid --to" in capsys.readouterr().err
        assign = ("ticket", "assign", ticket_id, "--to", "sam@kruxt.app", "--as", "lead@kruxt.app")
        assert await run(*assign) == 0
        capsys.readouterr()

        async def assigned() -> bool:
            assert await run("ticket", "show", ticket_id) == 0
            return "assigned to sam@kruxt.app" in capsys.readouterr().out

        await eventually(assigned)
        async with cli.pool.acquire() as db:
            who = await db.fetchval(
                "SELECT details->>'to' FROM support_audit_log WHERE action = 'ticket.assigned'"
            )
        assert who == "sam@kruxt.app"

        assert await run("ticket", "resolve", ticket_id, "--as", "lead@kruxt.app") == 0

        async def solved() -> bool:
            assert await run("ticket", "show", ticket_id) == 0
            return "solved (staff) by lead@kruxt.app" in capsys.readouterr().out

        await eventually(solved)  # `ticket show` tells the lifecycle: how, and the window end
        handle = cli.client.get_workflow_handle(f"ticket-{ticket_id}")
        await handle.result()
        assert await run("ticket", "resolve", ticket_id, "--as", "lead@kruxt.app") == 1
        assert "already resolved" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ticket", "show", "not-a-uuid"], "not a ticket id"),
        (["ticket", "new", "--email", "nope", "--subject", "s", "--body", "b"], "invalid --email"),
        (["ticket", "list", "--limit", "0"], "--limit must be at least 1"),
    ],
)
async def test_bad_arguments_exit_2_with_a_message(
    isolated_env: pytest.MonkeyPatch,
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    isolated_env.setenv("DATABASE_URL", f"postgresql://x@127.0.0.1:{refusing_port()}/x")
    assert await run(*args) == 2
    assert message in capsys.readouterr().err


async def test_missing_database_url_says_how_to_get_one(
    isolated_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run("ticket", "list") == 2
    assert "DATABASE_URL is not set" in capsys.readouterr().err


async def test_unreachable_services_exit_1_with_a_hint(
    isolated_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    isolated_env.setenv("DATABASE_URL", f"postgresql://x@127.0.0.1:{refusing_port()}/x")
    assert await run("audit", "verify") == 1
    assert "cannot reach PostgreSQL" in capsys.readouterr().err

    isolated_env.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{refusing_port()}")
    isolated_env.setenv("KRUXT_APPROVERS", STAFF)
    assert await run("ticket", "resolve", str(uuid.uuid4()), "--as", "x@kruxt.app") == 1
    assert "cannot reach Temporal" in capsys.readouterr().err


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        kruxt(["frobnicate"])
    assert exit_.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.e2e
async def test_approvals_list_and_decide_through_the_same_validator(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    approvers = (
        '[{"name": "Maya", "email": "maya@kruxt.app", "roles": ["admin"]},'
        ' {"name": "Sam", "email": "sam@kruxt.app", "roles": ["admin"]},'
        ' {"name": "Ana", "email": "ana@example.com", "roles": ["approver"]}]'
    )
    async with cli.approvals_worker(approvers):
        code = await run(
            "ticket", "new", "--email", "ana@example.com", "--account", "u-locked",
            "--subject", "Locked out", "--body", "My account is locked, I cannot log in.",
        )  # fmt: skip
        assert code == 0
        opened = capsys.readouterr().out
        assert "Status   awaiting_approval" in opened
        ticket_id = opened.split()[1]

        assert await run("approvals", "list") == 0
        listing = capsys.readouterr().out
        approval_id = listing.splitlines()[1].split()[0]
        assert "Sign-in problem" in listing

        async def decide(verdict: str, who: str) -> int:
            return await run("approvals", "decide", approval_id, verdict, "--as", who)

        # The requester is a configured approver, and still may not approve their own.
        assert await decide("approve", "ana@example.com") == 1
        assert "requester" in capsys.readouterr().err
        assert await decide("approve", "x@kruxt.app") == 1
        assert "not a configured approver" in capsys.readouterr().err

        assert await decide("approve", "maya@kruxt.app") == 0
        assert "approved by maya@kruxt.app" in capsys.readouterr().out
        assert await decide("reject", "maya@kruxt.app") == 1
        assert "already approved by maya@kruxt.app" in capsys.readouterr().err

        async def run_shown() -> str | None:
            assert await run("ticket", "show", ticket_id) == 0
            shown = capsys.readouterr().out
            return shown if "succeeded · approved by maya@kruxt.app" in shown else None

        shown = await eventually(run_shown)
        assert "Run      " in shown
        assert "auth_login" in shown

        # Undo the run: a rollback is requested, then approved like any plan.
        run_id = shown.split("Run      ")[1].split()[0]
        assert await run("playbook", "rollback", "not-a-uuid", "--as", "maya@kruxt.app") == 2
        capsys.readouterr()
        assert await run("playbook", "rollback", run_id, "--as", "maya@kruxt.app") == 0
        requested = capsys.readouterr().out
        assert f"rollback of run {run_id} requested" in requested
        rollback_id = requested.split("approval ")[1].split()[0]
        # Whoever asked for the rollback may not approve it: another approver does.
        approve = ("approvals", "decide", rollback_id, "approve", "--as", "sam@kruxt.app")
        assert await run(*approve) == 0
        capsys.readouterr()

        async def rolled_back() -> str | None:
            assert await run("ticket", "show", ticket_id) == 0
            out = capsys.readouterr().out
            return out if "rolled_back" in out else None

        await eventually(rolled_back)
    async with cli.pool.acquire() as db:
        refused = await db.fetch(
            "SELECT actor, details->>'channel' AS channel FROM support_audit_log "
            "WHERE action = 'approval.decision_refused' ORDER BY id"
        )
    assert [(r["actor"], r["channel"]) for r in refused] == [
        ("ana@example.com", "cli"),
        ("x@kruxt.app", "cli"),
        ("maya@kruxt.app", "cli"),
    ]
