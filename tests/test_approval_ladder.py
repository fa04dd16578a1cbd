"""The remind / escalate / expire ladder, stop by stop, on the time-skipping server: the real
TicketWorkflow and notification activities, the real slack_sdk and SendGrid clients against the
local fakes, and an approvers directory of two levels."""

from __future__ import annotations

from typing import Any

import asyncpg

from kruxt.adapters.approvers import Approver, ApproverDirectory
from kruxt.adapters.postgres.approvals import ApprovalStore
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.models.approvals import ApprovalRequest, ApprovalStatus
from kruxt.models.enums import TicketStatus
from kruxt.models.playbooks import ApproverRole
from kruxt.models.tickets import (
    DEFAULT_APPROVAL_WINDOWS,
    TicketState,
)
from kruxt.workflows.ticket import TicketWorkflow
from tests.fakes.sendgrid_server import FakeSendGridServer
from tests.fakes.slack_server import FakeSlackServer
from tests.support import (
    ApprovalRig,
    eventually,
    locked_ticket,
)

CHANNEL = "C0APPROVALS"
ADMIN = [ApproverRole.ADMIN]
# Level 1 is asked first and reminded; level 2 only hears of it when the request goes stale.
APPROVERS = ApproverDirectory(
    [
        Approver(name="Maya", email="maya@kruxt.app", slack_user_id="U0MAYA", roles=ADMIN),
        Approver(name="Sam", email="sam@kruxt.app", slack_user_id="U0SAM", roles=ADMIN),
        Approver(name="Cto", email="cto@kruxt.app", slack_user_id="U0CTO", roles=ADMIN, level=2),
    ]
)
LEVEL_1 = ["maya@kruxt.app", "sam@kruxt.app"]
LEVEL_2 = ["cto@kruxt.app"]


def _posts(slack: FakeSlackServer) -> list[tuple[str, bool, str]]:
    """Each chat.postMessage as (where, broadcast to the channel, whom it mentions)."""
    out = []
    for call in slack.calls_to("chat.postMessage"):
        assert call.body["channel"] == CHANNEL
        where = "thread" if call.body.get("thread_ts") else "channel"
        text = str(call.body.get("text") or "")
        mentions = " ".join(sorted(w for w in text.split() if w.startswith("<@")))
        out.append((where, bool(call.body.get("reply_broadcast")), mentions))
    return out


def _mails(sendgrid: FakeSendGridServer) -> list[str]:
    """Who was mailed, in order of sending."""
    return [to["email"] for m in sendgrid.sent for p in m["personalizations"] for to in p["to"]]


async def test_the_ladder_reminds_escalates_and_expires_on_time(approval_rig: ApprovalRig) -> None:
    slack, sendgrid, pool = approval_rig.slack, approval_rig.sendgrid, approval_rig.pool
    ticket = locked_ticket()
    async with approval_rig.worker(APPROVERS):
        handle, announced = await approval_rig.announced(ticket)
        request = announced.approvals[0].request
        window = request.expires_at - request.requested_at
        # The window is the severity's, as the routing policy says.
        assert window.total_seconds() == DEFAULT_APPROVAL_WINDOWS[request.severity.value] * 60

        async def advance_to(fraction: float) -> None:
            target = request.requested_at + window * fraction
            now = await approval_rig.env.get_current_time()
            assert now < target, f"already past {fraction:.0%} of the window"
            await approval_rig.env.sleep(target - now)

        async def settled(posts: int, mails: int) -> None:
            async def arrived() -> bool:
                return len(_posts(slack)) >= posts and len(_mails(sendgrid)) >= mails

            await eventually(arrived, timeout=30)

        request_post = ("channel", False, "")
        reminder = ("thread", False, "<@U0MAYA> <@U0SAM>")
        escalation = ("thread", True, "<@U0CTO>")

        # 49%: the request only, to level 1 (Slack post in the channel, one mail each).
        await advance_to(0.49)
        await _pending(handle, request)
        assert _posts(slack) == [request_post]
        assert sorted(_mails(sendgrid)) == LEVEL_1

        # 51%: level 1 reminded, in the request's thread and by mail; level 2 not yet.
        await advance_to(0.51)
        await settled(posts=2, mails=4)
        await _pending(handle, request)
        assert _posts(slack) == [request_post, reminder]
        assert sorted(_mails(sendgrid)[2:]) == LEVEL_1
        # Threaded under the request's own message, as the activity stored it.
        posted = await ApprovalStore(pool).slack_message(request.approval_id)
        assert posted is not None
        thread = posted[1]
        assert slack.calls_to("chat.postMessage")[1].body["thread_ts"] == thread

        # 74%: nothing more.
        await advance_to(0.74)
        await _pending(handle, request)
        assert _posts(slack) == [request_post, reminder]
        assert len(_mails(sendgrid)) == 4

        # 76%: level 2 asked, mentioned in the thread and shown in the channel, mailed.
        await advance_to(0.76)
        await settled(posts=3, mails=5)
        await _pending(handle, request)
        assert _posts(slack) == [request_post, reminder, escalation]
        assert _mails(sendgrid)[4:] == LEVEL_2
        customer_messages = await _message_kinds(pool, ticket.ticket_id)
        assert "holding" not in customer_messages

        # 100%: expired (not rejected); the request shows it; the customer was told.
        await advance_to(1.0)

        async def expired() -> TicketState | None:
            state: TicketState = await handle.query(TicketWorkflow.state)
            return state if state.status is TicketStatus.AWAITING_HUMAN else None

        after = await eventually(expired, timeout=60)
        await handle.terminate("test over")

    assert after.approvals[0].status is ApprovalStatus.EXPIRED
    # Nobody was reminded again, nor mailed, on expiry.
    assert _posts(slack) == [request_post, reminder, escalation]
    assert len(_mails(sendgrid)) == 5
    closed = slack.calls_to("chat.update")
    assert len(closed) == 1
    assert closed[0].body["ts"] == thread
    assert "xpired" in str(closed[0].body.get("text"))
    async with pool.acquire() as conn:
        status = await conn.fetchval(
            "SELECT status FROM support_approvals WHERE id = $1", request.approval_id
        )
    assert status == "expired"
    kinds = await _message_kinds(pool, ticket.ticket_id)
    assert kinds[len(customer_messages) :] == ["holding"]


async def _pending(handle: Any, request: ApprovalRequest) -> None:
    state: TicketState = await handle.query(TicketWorkflow.state)
    assert state.status is TicketStatus.AWAITING_APPROVAL
    assert state.approvals[0].request.approval_id == request.approval_id
    assert state.approvals[0].status is ApprovalStatus.PENDING


async def _message_kinds(pool: asyncpg.Pool[Any], ticket_id: Any) -> list[str]:
    view = await TicketStore(pool).get(ticket_id)
    assert view is not None
    return [str(m.kind) for m in view.messages]
