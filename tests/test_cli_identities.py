"""Who did it, through the real `kruxt` CLI: decisions and rollbacks record the channel `cli`
and the operating-system user next to the `--as` identity; only directory approvers may ask
for a rollback, and whoever asked may not approve it."""

from __future__ import annotations

import os
import pwd

import asyncpg
import pytest

from tests.support import Cli, eventually

pytestmark = pytest.mark.e2e

APPROVERS = (
    '[{"name": "Maya", "email": "maya@kruxt.app", "roles": ["admin"]},'
    ' {"name": "Sam", "email": "sam@kruxt.app", "roles": ["admin"]}]'
)


async def test_cli_decisions_and_rollbacks_record_the_os_user(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    # $USER is the caller's to set: the passwd entry of the uid is what gets recorded.
    cli.env.setenv("USER", "someone-else")
    cli.env.setenv("LOGNAME", "someone-else")
    me = f"{pwd.getpwuid(os.getuid()).pw_name} (uid {os.getuid()})"
    async with cli.approvals_worker(APPROVERS):
        code = await cli.run(
            "ticket", "new", "--email", "lena@example.com", "--account", "u-locked",
            "--subject", "Locked out", "--body", "My account is locked, I cannot log in.",
        )  # fmt: skip
        assert code == 0
        ticket_id = capsys.readouterr().out.split()[1]
        assert await cli.run("approvals", "list") == 0
        approval_id = capsys.readouterr().out.splitlines()[1].split()[0]
        # A reason with a NUL (pasted from a terminal) is stored repaired, never retried.
        decide = (
            "approvals", "decide", approval_id, "approve", "--as", "Maya@Kruxt.app",
            "--reason", "checked\x00 the lock",
        )  # fmt: skip
        assert await cli.run(*decide) == 0
        capsys.readouterr()

        async def run_id() -> str | None:
            assert await cli.run("ticket", "show", ticket_id) == 0
            shown = capsys.readouterr().out
            return shown.split("Run      ")[1].split()[0] if "succeeded" in shown else None

        run_of = await eventually(run_id)
        stranger = ("playbook", "rollback", run_of, "--as", "mallory@evil.example")
        assert await cli.run(*stranger) == 1
        assert "not in the approvers directory" in capsys.readouterr().err
        assert await cli.run("playbook", "rollback", run_of, "--as", "sam@kruxt.app") == 0
        rollback_id = capsys.readouterr().out.split("approval ")[1].split()[0]

        async def listed() -> bool:
            assert await cli.run("approvals", "list") == 0
            return rollback_id in capsys.readouterr().out

        await eventually(listed)  # recorded by the workflow's next step
        own = (
            "approvals", "decide", rollback_id, "approve", "--as", "SAM@kruxt.app",
            "--reason", "mine\x00",
        )  # fmt: skip
        assert await cli.run(*own) == 1
        assert "asked for a rollback cannot approve it" in capsys.readouterr().err
        other = ("approvals", "decide", rollback_id, "approve", "--as", "maya@kruxt.app")
        assert await cli.run(*other) == 0
        capsys.readouterr()

        async def rolled_back() -> bool:
            assert await cli.run("ticket", "show", ticket_id) == 0
            return "rolled_back" in capsys.readouterr().out

        await eventually(rolled_back)  # the decision is recorded before the run is undone

    async def audited() -> list[asyncpg.Record] | None:
        async with cli.pool.acquire() as db:
            rows = await db.fetch(
                "SELECT action, actor, details FROM support_audit_log WHERE action IN "
                "('approval.requested', 'approval.approved', 'approval.decision_refused') "
                "ORDER BY id"
            )
        return rows if len(rows) == 5 else None

    rows = await eventually(audited)
    seen = [
        (
            r["action"],
            r["actor"],
            r["details"].get("channel"),
            r["details"].get("os_user"),
            r["details"].get("requested_by"),
        )
        for r in rows
    ]
    reasons = [r["details"].get("reason") for r in rows]
    assert reasons[1] == "checked\ufffd the lock"
    assert reasons[3] is not None and "\x00" not in reasons[3]
    assert seen == [
        ("approval.requested", "autopilot", None, None, None),
        ("approval.approved", "maya@kruxt.app", "cli", me, None),
        ("approval.requested", "sam@kruxt.app", "cli", me, "sam@kruxt.app"),
        ("approval.decision_refused", "SAM@kruxt.app", "cli", me, None),
        ("approval.approved", "maya@kruxt.app", "cli", me, None),
    ]
