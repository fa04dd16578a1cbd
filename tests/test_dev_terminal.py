"""What ``kruxt dev`` prints of the outbox: each link labelled, and only mail new since the
last start."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from kruxt.adapters.email import OutboxMailer, approval_link
from kruxt.adapters.email_texts import render_approval_email, render_page_email
from kruxt.adapters.settings import Settings
from kruxt.starter.dev import DevStack
from tests.support import login_outage
from tests.test_dev_stack import RunningStack, _stop, kruxt_dev
from tests.test_email_approvals import make_request

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
BASE = "http://127.0.0.1:8000"


def printed(home: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """One pass of the dev terminal's outbox printer, as a fresh ``kruxt dev`` makes it."""
    DevStack(Settings(KRUXT_HOME=home))._announce_mail()
    return [line.removeprefix("kruxt dev | ") for line in capsys.readouterr().out.splitlines()]


async def approval_mail(outbox: OutboxMailer) -> str:
    """An approval request's mail, as the worker writes it; returns the ticket's reference."""
    request = make_request(summary="Cannot log in")
    message = render_approval_email(
        request,
        approver_email="founder@kruxt.dev",
        approver_name="Dev Founder",
        approve_url=approval_link(BASE, "APPROVE.tok"),
        reject_url=approval_link(BASE, "REJECT.tok"),
    )
    await outbox.send(message)
    return str(request.ticket_id)[:8]


async def test_links_print_labelled_with_whom_and_what(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outbox = OutboxMailer(tmp_path / "outbox")
    ticket = await approval_mail(outbox)
    incident = login_outage(opened_at=NOW)
    page = render_page_email(
        incident,
        to="oncall@kruxt.dev",
        level=incident.policy.levels[0],
        loop=0,
        tickets=[],
        public_url=BASE,
        slack_channel=None,
        ack_url=f"{BASE}/incidents/ack/ACK.tok",
    )
    await outbox.send(page)

    lines = printed(tmp_path, capsys)

    on = f"auth login on ticket {ticket} as founder@kruxt.dev"
    assert f"  approve {on}: {BASE}/approvals/email/APPROVE.tok" in lines
    assert f"  reject {on}: {BASE}/approvals/email/REJECT.tok" in lines
    ack = f"  acknowledge P1 incident {str(incident.incident_id)[:8]} as oncall@kruxt.dev"
    assert f"{ack}: {BASE}/incidents/ack/ACK.tok" in lines
    assert not any(line.strip().startswith("open ") for line in lines)


async def test_a_restart_prints_only_mail_new_since_the_last_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outbox = OutboxMailer(tmp_path / "outbox")
    await approval_mail(outbox)
    first = printed(tmp_path, capsys)
    assert sum("APPROVE.tok" in line for line in first) == 1
    assert (tmp_path / "outbox.cursor").exists()

    # Stopped and started again: the old mail is not printed again (nor its old links).
    assert printed(tmp_path, capsys) == []
    ticket = await approval_mail(outbox)
    again = printed(tmp_path, capsys)
    assert sum("APPROVE.tok" in line for line in again) == 1
    assert any(f"ticket {ticket}" in line for line in again)
    assert printed(tmp_path, capsys) == []


def test_old_unlabelled_mail_still_shows_its_links(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Mail written before the outbox labelled its links: the links are found in the text."""
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    link = f"{BASE}/approvals/email/OLD.tok"
    (outbox / "20250301T120000000000Z-abcd.eml").write_text(
        f"To: founder@kruxt.dev\nSubject: Approve\nContent-Type: text/plain\n\nApprove: {link}\n"
    )
    assert f"  open as founder@kruxt.dev: {link}" in printed(tmp_path, capsys)


async def next_line_with(stack: RunningStack, text: str, *, timeout: float = 90) -> str:
    """Read ``kruxt dev``'s output on until a line holds ``text``; that line."""
    assert stack.process.stdout is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        raw = await asyncio.wait_for(stack.process.stdout.readline(), deadline - loop.time())
        assert raw, "kruxt dev exited:\n" + "".join(stack.output)
        stack.output.append(raw.decode())
        if text in stack.output[-1]:
            return stack.output[-1]


async def locked_out(stack: RunningStack, external_id: str) -> str:
    """A ticket whose fix needs an approval, through the API; its 8-character reference."""
    body = {
        "external_id": external_id,
        "requester": {"id": "u-locked", "email": "lena@example.com", "name": "Lena"},
        "account_id": "u-locked",
        "subject": "Locked out",
        "body": "The app says my account is locked and I cannot log in.",
    }
    async with httpx.AsyncClient(
        base_url=stack.api, headers={"Authorization": f"Bearer {stack.token}"}
    ) as http:
        accepted = await http.post("/v1/tickets", json=body)
    assert accepted.status_code == 202, accepted.text
    return str(accepted.json()["ticket_id"])[:8]


@pytest.mark.e2e
async def test_kruxt_dev_labels_the_links_and_prints_them_once(tmp_path: Path) -> None:
    home = tmp_path / "kx"
    async with kruxt_dev(home) as stack:
        first = await locked_out(stack, "dev-terminal-1")
        approve = await next_line_with(stack, f"approve auth login on ticket {first} as ")
        assert ": http://" in approve and "/approvals/email/" in approve
        assert "reject auth login" in await next_line_with(stack, "reject ")
        await _stop(stack, signal.SIGINT, home)

    # Restarted: only the new ticket's mail is printed, never the first one's links again.
    async with kruxt_dev(home) as again:
        second = await locked_out(again, "dev-terminal-2")
        await next_line_with(again, f"approve auth login on ticket {second} as ")
        printed_again = "".join(again.output)
        assert f"ticket {first}" not in printed_again
        await _stop(again, signal.SIGTERM, home)
