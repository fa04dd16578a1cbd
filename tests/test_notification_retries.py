"""Approval notifications retried after a partial success send nothing twice: a real worker,
the real SendGrid and Slack clients against the local fakes, the real token table."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from kruxt.activities.notifications import NotificationActivities
from kruxt.adapters.approvers import Approver, ApproverDirectory
from kruxt.adapters.postgres.approvals import ApprovalStore
from kruxt.models.approvals import (
    NotifyApprovers,
)
from kruxt.models.playbooks import ApproverRole
from tests.fakes.sendgrid_server import FakeSendGridServer
from tests.fakes.slack_server import FakeSlackServer
from tests.support import (
    ApprovalRig,
    email_approvals,
    eventually,
    locked_ticket,
    posted_approval,
    slack_approvals,
)

# The requester of the ticket is staff too, and spells her address differently there.
APPROVERS = ApproverDirectory(
    [
        Approver(name="Maya", email="maya@kruxt.app", roles=[ApproverRole.ADMIN]),
        Approver(name="Sam", email="sam@kruxt.app", roles=[ApproverRole.ADMIN]),
        Approver(name="Ana", email="ana@example.com", roles=[ApproverRole.ADMIN]),
    ]
)


async def test_a_retry_after_a_partial_send_mails_nobody_twice(approval_rig: ApprovalRig) -> None:
    slack, sendgrid, pool = approval_rig.slack, approval_rig.sendgrid, approval_rig.pool
    # Maya's mail goes out, Sam's fails once: the activity fails after a partial success.
    sendgrid.fail(503, after=1)
    ticket = locked_ticket(email="Ana@Example.com")
    async with approval_rig.worker(APPROVERS):
        handle, _ = await approval_rig.announced(ticket)

        async def notified() -> bool:
            async with pool.acquire() as conn:
                sent = await conn.fetchval(
                    "SELECT count(*) FROM support_audit_log WHERE action = 'approval.sent'"
                )
            return bool(sent)

        await eventually(notified, timeout=60)
        await handle.terminate("test over")

    recipients = sorted(
        to["email"] for mail in sendgrid.sent for p in mail["personalizations"] for to in p["to"]
    )
    # One mail each; the requester (same address, other case) gets none.
    assert recipients == ["maya@kruxt.app", "sam@kruxt.app"]
    assert [r.status for r in sendgrid.requests] == [202, 503, 202]
    async with pool.acquire() as conn:
        tokens = await conn.fetch(
            "SELECT approver, verdict FROM support_email_tokens ORDER BY approver, verdict"
        )
    # One set of links per person: the retry minted none for Maya.
    assert [(t["approver"], t["verdict"]) for t in tokens] == [
        ("maya@kruxt.app", "approve"),
        ("maya@kruxt.app", "reject"),
        ("sam@kruxt.app", "approve"),
        ("sam@kruxt.app", "reject"),
    ]
    assert len(slack.calls_to("chat.postMessage")) == 1


async def test_a_retried_reminder_is_not_posted_or_mailed_twice(
    pool: asyncpg.Pool[Any], sendgrid: FakeSendGridServer, slack_server: FakeSlackServer
) -> None:
    """The same activity execution run twice (a retry): the second sends only what failed."""
    slack = slack_approvals(slack_server)
    store = ApprovalStore(pool)
    acts = NotificationActivities(
        approvals=store,
        approvers=APPROVERS,
        chat=slack,
        email=email_approvals(sendgrid, pool),
    )
    request = await posted_approval(pool, slack)  # the first notification, long done
    reminder = NotifyApprovers(request=request, level=1, reminder=True)
    env = ActivityEnvironment()  # one activity execution: the same identity on each attempt
    sendgrid.fail(503, after=1)
    with pytest.raises(ApplicationError):
        await env.run(acts.notify_approvers, reminder)
    await env.run(acts.notify_approvers, reminder)

    threaded = [c for c in slack_server.calls_to("chat.postMessage") if c.body.get("thread_ts")]
    assert len(threaded) == 1
    recipients = [
        to["email"] for m in sendgrid.sent for p in m["personalizations"] for to in p["to"]
    ]
    assert sorted(recipients) == ["maya@kruxt.app", "sam@kruxt.app"]
