"""Who did it, through the real `kruxt` CLI: decisions and rollbacks record the channel `cli`
and the operating-system user next to the `--as` identity; only directory approvers may ask
for a rollback, and whoever asked may not approve it."""

from __future__ import annotations

import asyncio
import os
import pwd
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.client import Client

from kruxt.adapters.approvers import parse_approvers
from kruxt.adapters.temporal_dev_server import TemporalDevServer
from kruxt.starter.cli import main as kruxt
from kruxt.workers.composition import Outside, build_worker
from tests.support import demo_app, eventually

pytestmark = pytest.mark.e2e

APPROVERS = (
    '[{"name": "Maya", "email": "maya@kruxt.app", "roles": ["admin"]},'
    ' {"name": "Sam", "email": "sam@kruxt.app", "roles": ["admin"]}]'
)


async def run(*args: str) -> int:
    return await asyncio.to_thread(kruxt, list(args))


async def test_cli_decisions_and_rollbacks_record_the_os_user(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    dev_server: TemporalDevServer,
    dev_client: Client,
    db_dsn: str,
    pool: asyncpg.Pool[Any],
    task_queue: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("DATABASE_URL", "TEMPORAL_ADDRESS", "KRUXT_INTAKE_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KRUXT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DATABASE_URL", db_dsn)
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_server.address)
    monkeypatch.setenv("KRUXT_TASK_QUEUE", task_queue)
    monkeypatch.setenv("KRUXT_APPROVERS", APPROVERS)
    # $USER is the caller's to set: the passwd entry of the uid is what gets recorded.
    monkeypatch.setenv("USER", "someone-else")
    monkeypatch.setenv("LOGNAME", "someone-else")
    me = f"{pwd.getpwuid(os.getuid()).pw_name} (uid {os.getuid()})"
    async with demo_app(db_dsn, max_size=2) as app:
        outside = Outside(app=app, approvers=parse_approvers(APPROVERS, source="t"))
        async with build_worker(dev_client, task_queue=task_queue, pool=pool, outside=outside):
            code = await run(
                "ticket", "new", "--email", "lena@example.com", "--account", "u-locked",
                "--subject", "Locked out", "--body", "My account is locked, I cannot log in.",
            )  # fmt: skip
            assert code == 0
            ticket_id = capsys.readouterr().out.split()[1]
            assert await run("approvals", "list") == 0
            approval_id = capsys.readouterr().out.splitlines()[1].split()[0]
            # A reason with a NUL (pasted from a terminal) is stored repaired, never retried.
            decide = (
                "approvals", "decide", approval_id, "approve", "--as", "Maya@Kruxt.app",
                "--reason", "checked\x00 the lock",
            )  # fmt: skip
            assert await run(*decide) == 0
            capsys.readouterr()

            async def run_id() -> str | None:
                assert await run("ticket", "show", ticket_id) == 0
                shown = capsys.readouterr().out
                return shown.split("Run      ")[1].split()[0] if "succeeded" in shown else None

            run_of = await eventually(run_id)
            stranger = ("playbook", "rollback", run_of, "--as", "mallory@evil.example")
            assert await run(*stranger) == 1
            assert "not in the approvers directory" in capsys.readouterr().err
            assert await run("playbook", "rollback", run_of, "--as", "sam@kruxt.app") == 0
            rollback_id = capsys.readouterr().out.split("approval ")[1].split()[0]

            async def listed() -> bool:
                assert await run("approvals", "list") == 0
                return rollback_id in capsys.readouterr().out

            await eventually(listed)  # recorded by the workflow's next step
            own = (
                "approvals", "decide", rollback_id, "approve", "--as", "SAM@kruxt.app",
                "--reason", "mine\x00",
            )  # fmt: skip
            assert await run(*own) == 1
            assert "asked for a rollback cannot approve it" in capsys.readouterr().err
            other = ("approvals", "decide", rollback_id, "approve", "--as", "maya@kruxt.app")
            assert await run(*other) == 0
            capsys.readouterr()

            async def rolled_back() -> bool:
                assert await run("ticket", "show", ticket_id) == 0
                return "rolled_back" in capsys.readouterr().out

            await eventually(rolled_back)  # the decision is recorded before the run is undone

    async def audited() -> list[asyncpg.Record] | None:
        async with pool.acquire() as db:
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
