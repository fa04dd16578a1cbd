"""Notifications speak with one voice: the same duration in Slack and in mail, and every
channel's failures retried (or not) the same way, whichever activity sent them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from kruxt.activities.notifications import NotificationActivities
from kruxt.activities.sla import SlaActivities
from kruxt.adapters.approvers import Approver, ApproverDirectory
from kruxt.adapters.email_texts import render_breach_email
from kruxt.adapters.notifier import MessageRef, NotifyError, NotifyRejected, NotifyUnavailable
from kruxt.adapters.postgres.approvals import ApprovalStore
from kruxt.adapters.postgres.incidents import SlaEventStore
from kruxt.adapters.slack import sla_text
from kruxt.models.approvals import (
    ApprovalStatus,
    CloseApproval,
)
from kruxt.models.enums import Priority
from kruxt.models.incidents import EscalationLevel, EscalationPolicy
from kruxt.models.playbooks import ApproverRole
from kruxt.models.sla import ClockKind, SlaEventKind, SlaNotice
from tests.fakes.slack_server import FakeSlackServer, ratelimited
from tests.support import posted_approval, slack_approvals

POLICY = EscalationPolicy(
    levels=[EscalationLevel(name="on-call", slack_user_ids=["UONCALL"], delay_minutes=5)],
    loops=1,
)


def _breach(**update: Any) -> SlaNotice:
    notice = SlaNotice(
        ticket_id=uuid.uuid4(),
        summary="Nobody at our gym can log in",
        priority=Priority.P2,
        clock=ClockKind.FIRST_RESPONSE,
        event=SlaEventKind.BREACH,
        deadline=datetime(2026, 3, 1, 14, 30, tzinfo=UTC),
        target_seconds=90 * 60,
        overdue_seconds=150 * 60,
    )
    return notice.model_copy(update=update)


def test_an_sla_breach_says_the_same_durations_in_slack_and_in_mail() -> None:
    notice = _breach()
    slack = sla_text(notice)
    mail = render_breach_email(notice, to="oncall@kruxt.app", ticket_url="http://x/t")
    # The target (90 min) and how late it is (150 min), written alike in every channel.
    for text in (slack, mail.text, mail.html):
        assert "1 h 30 min" in text
    assert "2 h 30 min" in slack
    assert "2 h 30 min" in mail.text
    for text in (slack, mail.text, mail.html):
        assert "90 min" not in text
        assert "2.5 h" not in text


class _DownChannel:
    """A chat channel other than Slack that fails every post the way it was told to."""

    channel = "#elsewhere"

    def __init__(self, error: NotifyError) -> None:
        self.error = error
        self.tried: list[SlaNotice] = []

    async def post_sla(
        self, notice: SlaNotice, *, mention_user_ids: list[str] | None = None
    ) -> MessageRef:
        self.tried.append(notice)
        raise self.error


async def test_any_channels_failure_is_retried_only_when_retrying_may_help(
    pool: asyncpg.Pool[Any],
) -> None:
    down = _DownChannel(NotifyUnavailable("elsewhere is down", retry_after=4))
    acts = SlaActivities(
        SlaEventStore(pool), chat=down, mailer=None, policy=POLICY, public_url="http://x"
    )
    with pytest.raises(ApplicationError) as unavailable:
        await ActivityEnvironment().run(acts.notify_sla, _breach())
    assert unavailable.value.type == "NotifyUnavailable"
    assert not unavailable.value.non_retryable
    assert unavailable.value.next_retry_delay == timedelta(seconds=4)

    refusing = _DownChannel(NotifyRejected("elsewhere does not know this channel"))
    acts = SlaActivities(
        SlaEventStore(pool), chat=refusing, mailer=None, policy=POLICY, public_url="http://x"
    )
    with pytest.raises(ApplicationError) as rejected:
        await ActivityEnvironment().run(acts.notify_sla, _breach())
    assert rejected.value.type == "NotifyRejected"
    assert rejected.value.non_retryable
    assert len(down.tried) == len(refusing.tried) == 1


async def test_closing_an_approval_waits_as_long_as_slack_asks(
    pool: asyncpg.Pool[Any], slack_server: FakeSlackServer
) -> None:
    slack = slack_approvals(slack_server)
    store = ApprovalStore(pool)
    acts = NotificationActivities(
        approvals=store,
        approvers=ApproverDirectory(
            [Approver(name="Maya", email="maya@kruxt.app", roles=[ApproverRole.ADMIN])]
        ),
        chat=slack,
        email=None,
    )
    request = await posted_approval(pool, slack)  # the first notification, long done

    slack_server.fail_next(ratelimited(retry_after=7))
    close = CloseApproval(
        request=request,
        status=ApprovalStatus.APPROVED,
        decided_by="maya",
        decided_at=request.requested_at,
    )
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(acts.close_approval_messages, close)
    # The same answer to Slack's "wait 7 s" as when the request was posted.
    assert failed.value.type == "NotifyUnavailable"
    assert failed.value.next_retry_delay == timedelta(seconds=7)
    await ActivityEnvironment().run(acts.close_approval_messages, close)
    assert len(slack_server.calls_to("chat.update")) == 2
