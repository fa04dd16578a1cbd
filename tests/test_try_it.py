"""The README's "Try it", walked as a new user does: `kruxt dev` in one terminal, the `kruxt`
commands in another, and nothing on either screen that misleads."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from kruxt.adapters.settings import PROJECT_ROOT
from tests.test_dev_stack import RunningStack, _dev_env, _stop, kruxt_dev
from tests.test_dev_terminal import next_line_with

pytestmark = pytest.mark.e2e

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
CONFIRM_PROMPT = "Did this solve it?"
# The approvers `kruxt dev` writes to .kruxt/approvers.yaml.
DEV_FOUNDER = "founder@kruxt.dev"
DEV_ONCALL = "oncall@kruxt.dev"


async def kruxt(home: Path, *args: str) -> str:
    """``.venv/bin/kruxt <args>`` in the second terminal, as ``kruxt dev`` was started: it finds
    the stack by the dev.env in its home."""
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "kruxt", *args),
        cwd=PROJECT_ROOT,
        env=_dev_env(home),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0, f"kruxt {' '.join(args)} exited {proc.returncode}:\n{out.decode()}"
    return out.decode()


async def until(home: Path, args: tuple[str, ...], found: Callable[[str], bool]) -> str:
    """The output of ``kruxt <args>`` once it shows what ``found`` looks for."""
    for _ in range(120):
        out = await kruxt(home, *args)
        if found(out):
            return out
        await asyncio.sleep(0.5)
    raise AssertionError(f"kruxt {' '.join(args)} never showed it:\n{out}")


async def approve_newest(home: Path, kind: str, who: str) -> None:
    listed = await until(home, ("approvals", "list"), lambda out: f"  {kind} " in out)
    approval = re.search(rf"^({UUID})\s+{kind}\s", listed, re.M)
    assert approval is not None, listed
    await kruxt(home, "approvals", "decide", approval.group(1), "approve", "--as", who)


async def test_the_try_it_walk_shows_no_surprise(tmp_path: Path) -> None:
    home = tmp_path / "kx"
    async with kruxt_dev(home) as stack:
        # The terminal shows the banner, not the stack's own health polls as log lines.
        assert not [line for line in stack.output if "HTTP Request" in line], stack.output

        created = await kruxt(
            home,
            *("ticket", "new", "--email", "lena@example.com", "--account", "u-locked"),
            *("--subject", "Locked out", "--body", "The app says my account is locked"),
        )
        ticket = re.search(rf"ticket ({UUID}) accepted", created)
        assert ticket is not None, created
        mailed = await next_line_with(stack, "approve auth login on ticket ")
        await approve_newest(home, "plan", DEV_FOUNDER)
        show = ("ticket", "show", ticket.group(1)[:8])
        applied = await until(home, show, lambda out: "· succeeded ·" in out)

        # Approved in the CLI, the mailed link says so first, and no longer asks.
        async with httpx.AsyncClient() as http:
            page = (await http.get(mailed.rsplit(": ", 1)[1].strip())).text
        assert "<h1>No longer open: auth login</h1>" in page, page
        assert f"already approved by {DEV_FOUNDER} at " in page and "<form" not in page

        # The confirm link is printed whole on a line of its own: copied, it opens the page.
        link = re.search(
            rf"^\s*(http://\S+/v1/tickets/{ticket.group(1)}/confirm/\S+)$", applied, re.M
        )
        assert link is not None, applied
        await _opens(stack, link.group(1))

        run = re.search(rf"^Run\s+({UUID}) · auth_login", applied, re.M)
        assert run is not None, applied
        await kruxt(home, "playbook", "rollback", run.group(1), "--as", DEV_FOUNDER)
        # Whoever asked for the rollback may not approve it too: the other dev approver does.
        await approve_newest(home, "rollback", DEV_ONCALL)
        undone = await until(home, show, lambda out: "We have undone a change" in out)

        # Told the fix was undone, the customer is not asked whether it solved their problem.
        told = undone[undone.index("We have undone a change") :]
        assert CONFIRM_PROMPT not in told, told

        # A P1 pages on-call; acknowledged in the CLI, the mailed link no longer offers it.
        await kruxt(
            home,
            *("ticket", "new", "--email", "owner@gym.example"),
            *("--subject", "Nobody at our gym can log in"),
            *("--body", "Since 7am none of our members can log in"),
        )
        paged = await next_line_with(stack, "acknowledge P1 incident ")
        incident, ack_link = re.findall(r"incident (\w{8}) as .*: (http://\S+)", paged)[0]
        await kruxt(home, "incident", "ack", incident, "--as", DEV_FOUNDER)
        async with httpx.AsyncClient() as http:
            page = (await http.get(ack_link)).text
            again = (await http.post(ack_link)).text
        assert f"already acknowledged by {DEV_FOUNDER} at " in page and "<form" not in page, page
        assert "<h1>Already acknowledged</h1>" in again, again
        await _stop(stack, signal.SIGINT, home)


async def _opens(stack: RunningStack, url: str) -> None:
    assert url.startswith(stack.api)
    async with httpx.AsyncClient() as http:
        page = await http.get(url)
    assert page.status_code == 200, page.text
    assert "Did our answer solve it?" in page.text
    # The customer's page, named for support (not the staff's approvals pages).
    assert "<title>Confirm the answer · KRUXT support</title>" in page.text
