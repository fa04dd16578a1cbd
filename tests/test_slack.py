"""Slack for the approval gate: signatures, Block Kit, the real client against a fake Slack,
and ``POST /slack/interactions`` with a recording decider."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import Request
from slack_sdk.web.async_client import AsyncWebClient

from kruxt.adapters.approvers import Approver, ApproverDirectory
from kruxt.adapters.slack import (
    ACTION_APPROVE,
    ACTION_REJECT,
    ACTION_TRIAGE_WRONG,
    MAX_BLOCKS,
    MAX_TEXT,
    VIEW_REJECT,
    VIEW_TRIAGE_WRONG,
    SlackApprovals,
    SlackMessageRef,
    SlackRejected,
    SlackSignatureError,
    SlackUnavailable,
    approval_blocks,
    decided_blocks,
    reminder_text,
    verify_slack_request,
)
from kruxt.models.approvals import (
    ApprovalStatus,
    CloseApproval,
    DecisionChannel,
    TriageCorrection,
    Verdict,
)
from kruxt.models.enums import Category
from kruxt.models.playbooks import ApproverRole
from kruxt.starter.api.slack_routes import SlackContext, slack_router
from tests.fakes.slack_server import FakeSlackServer, http_error, ratelimited, slack_error
from tests.support import (
    RecordingDecider,
    approval_request,
    refusing_port,
    router_client,
    slack_signature,
)

TOKEN = "xoxb-test-token"
SECRET = "test-signing-secret"
CHANNEL = "C0APPROVALS"
MAYA_SLACK = "U024BE7LH"
MAYA = "maya@kruxt.app"

# Slack's published example ("Verifying requests from Slack").
SLACK_EXAMPLE_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_EXAMPLE_TS = "1531420618"
SLACK_EXAMPLE_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
    b"&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
    b"&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands"
    b"%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_EXAMPLE_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def all_texts(blocks: Any) -> str:
    """Every string in ``blocks`` (texts, values, urls), one a line."""
    if isinstance(blocks, str):
        return blocks
    if isinstance(blocks, dict):
        return "\n".join(all_texts(v) for v in blocks.values())
    if isinstance(blocks, list):
        return "\n".join(all_texts(v) for v in blocks)
    return ""


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def text_objects(blocks: list[dict[str, Any]]) -> list[str]:
    found: list[str] = []
    for block in blocks:
        if isinstance(block.get("text"), dict):
            found.append(block["text"]["text"])
        for element in block.get("elements", []):
            if element.get("type") in ("mrkdwn", "plain_text"):
                found.append(element["text"])
    return found


# --- signatures ---------------------------------------------------------------------------


def test_slacks_published_example_verifies() -> None:
    headers = {
        "X-Slack-Request-Timestamp": SLACK_EXAMPLE_TS,
        "X-Slack-Signature": SLACK_EXAMPLE_SIGNATURE,
    }
    assert slack_signature(
        SLACK_EXAMPLE_BODY, secret=SLACK_EXAMPLE_SECRET, timestamp=SLACK_EXAMPLE_TS
    ) == (headers)
    verify_slack_request(
        signing_secret=SLACK_EXAMPLE_SECRET,
        headers=headers,
        body=SLACK_EXAMPLE_BODY,
        now=int(SLACK_EXAMPLE_TS) + 30,
    )


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("tampered_body", "signature mismatch"),
        ("wrong_secret", "signature mismatch"),
        ("stale", "older than 5 minutes"),
        ("future", "in the future"),
        ("no_timestamp", "missing X-Slack-Request-Timestamp"),
        ("no_signature", "missing X-Slack-Signature"),
        ("bad_timestamp", "not a Unix time"),
    ],
)
def test_bad_requests_are_refused(case: str, reason: str) -> None:
    now = int(SLACK_EXAMPLE_TS) + 30
    body = SLACK_EXAMPLE_BODY
    secret = SLACK_EXAMPLE_SECRET
    headers = {
        "X-Slack-Request-Timestamp": SLACK_EXAMPLE_TS,
        "X-Slack-Signature": SLACK_EXAMPLE_SIGNATURE,
    }
    if case == "tampered_body":
        body = body.replace(b"user_id=U2CERLKJA", b"user_id=U0ATTACKR")
    elif case == "wrong_secret":
        secret = "another-apps-secret"
    elif case == "stale":
        now = int(SLACK_EXAMPLE_TS) + 6 * 60
    elif case == "future":
        now = int(SLACK_EXAMPLE_TS) - 6 * 60
    elif case == "no_timestamp":
        del headers["X-Slack-Request-Timestamp"]
    elif case == "no_signature":
        del headers["X-Slack-Signature"]
    elif case == "bad_timestamp":
        headers["X-Slack-Request-Timestamp"] = "yesterday"
    with pytest.raises(SlackSignatureError, match=reason):
        verify_slack_request(signing_secret=secret, headers=headers, body=body, now=now)


def test_headers_are_case_insensitive_and_a_fresh_request_passes() -> None:
    body = b"payload=%7B%7D"
    now = time.time()
    headers = {
        k.lower(): v for k, v in slack_signature(body, secret=SECRET, timestamp=int(now)).items()
    }
    verify_slack_request(signing_secret=SECRET, headers=headers, body=body, now=now + 299)
    with pytest.raises(SlackSignatureError):
        verify_slack_request(signing_secret=SECRET, headers=headers, body=body, now=now + 301)


# --- blocks -------------------------------------------------------------------------------


def test_approval_blocks_put_the_plain_explanation_first_and_carry_the_approval_id() -> None:
    request = approval_request()
    blocks = approval_blocks(request, ticket_url="https://support.kruxt.app/t/1")
    assert blocks[0]["type"] == "header"
    assert "P2" in blocks[0]["text"]["text"]
    first_section = next(b for b in blocks if b["type"] == "section")
    assert first_section["text"]["text"] == request.plain_explanation
    text = all_texts(blocks)
    for expected in (
        request.summary,
        "87%",
        "Re-lock the account as it was.",
        "unlock_account",
        "Hi Ana, your account is unlocked",
        'unlock: {"locked":true} → {"locked":false}',
        "```",
        "<!date^",  # the deadline, in the reader's time zone
        "2025-03-04 03:45 UTC",
    ):
        assert expected in text, expected
    by_action = {b["action_id"]: b for b in buttons(blocks)}
    assert by_action[ACTION_APPROVE]["style"] == "primary"
    assert by_action[ACTION_REJECT]["style"] == "danger"
    assert ACTION_TRIAGE_WRONG in by_action
    assert by_action[ACTION_APPROVE]["confirm"]["confirm"]["text"] == "Approve"
    for action_id in (ACTION_APPROVE, ACTION_REJECT, ACTION_TRIAGE_WRONG):
        assert by_action[action_id]["value"] == str(request.approval_id)
    assert "url" in by_action["approval_open_ticket"]


def test_ticket_text_cannot_mention_the_channel_or_forge_links() -> None:
    request = approval_request(
        summary="<!channel> please <https://evil.example|click> & pay",
        plain_explanation="Restore <!here> access",
    )
    text = all_texts(approval_blocks(request))
    assert "<!channel>" not in text
    assert "<!here>" not in text
    assert "<https://evil" not in text
    assert "&lt;!channel&gt; please &lt;https://evil.example|click&gt; &amp; pay" in text


def test_huge_texts_stay_within_slacks_limits() -> None:
    request = approval_request(
        plain_explanation="Unlock. " * 1000,
        technical_explanation="kruxt_admin.unlock_account(...)\n" * 2000,
        rollback_plan="Re-lock <as before> " * 500,
        draft_reply="Hello " * 2000,
        preview=[{"step": f"s{i}", "before": "x" * 300, "after": "y" * 300} for i in range(40)],
    )
    for blocks in (
        approval_blocks(request),
        decided_blocks(
            CloseApproval(
                request=request,
                status=ApprovalStatus.REJECTED,
                decided_by="maya@kruxt.app",
                decided_at=datetime.now(UTC),
                reason="no " * 3000,
            )
        ),
    ):
        assert len(blocks) <= MAX_BLOCKS
        texts = text_objects(blocks)
        assert all(len(t) <= MAX_TEXT for t in texts)
        assert any(t.endswith("…") for t in texts if "Technical" in t)
        assert any(t.endswith("…```") for t in texts if "Dry run" in t)
        assert len(blocks[0]["text"]["text"]) <= 150


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        (ApprovalStatus.APPROVED, "", "✅ Approved by maya@kruxt.app at 03:12 UTC"),
        (ApprovalStatus.REJECTED, "customer fixed it", "❌ Rejected by maya@kruxt.app: customer"),
        (ApprovalStatus.EXPIRED, "", "⌛ Expired without a decision"),
    ],
)
def test_decided_blocks_say_who_decided_what_and_drop_the_buttons(
    status: ApprovalStatus, reason: str, expected: str
) -> None:
    request = approval_request()
    blocks = decided_blocks(
        CloseApproval(
            request=request,
            status=status,
            decided_by="maya@kruxt.app",
            decided_at=datetime(2025, 3, 4, 3, 12, tzinfo=UTC),
            reason=reason,
        )
    )
    assert not buttons(blocks)
    assert expected in all_texts(blocks)
    assert request.plain_explanation in all_texts(blocks)


def test_reminder_escalates_with_its_level() -> None:
    request = approval_request()
    assert reminder_text(request, 1).startswith("⏰ Still waiting")
    assert "Escalation (level 2)" in reminder_text(request, 2)


# --- the real client against the fake Slack -----------------------------------------------


@pytest.fixture
def slack_server() -> Iterator[FakeSlackServer]:
    with FakeSlackServer(token=TOKEN) as server:
        yield server


def approvals_for(server: FakeSlackServer, *, token: str = TOKEN) -> SlackApprovals:
    client = AsyncWebClient(token=token, base_url=server.api_url, timeout=5)
    return SlackApprovals(client, channel=CHANNEL)


async def test_post_request_then_close_replaces_the_message(
    slack_server: FakeSlackServer,
) -> None:
    slack = approvals_for(slack_server)
    request = approval_request()

    ref = await slack.post_request(request)

    assert ref == SlackMessageRef(channel=CHANNEL, ts=ref.ts)
    (post,) = slack_server.calls_to("chat.postMessage")
    assert post.headers["authorization"] == f"Bearer {TOKEN}"
    assert post.body["channel"] == CHANNEL
    assert "P2" in post.body["text"]
    blocks = post.body["blocks"]
    assert request.plain_explanation in all_texts(blocks)
    assert '{"locked":false}' in all_texts(blocks)
    assert {b["value"] for b in buttons(blocks)} == {str(request.approval_id)}

    decided_at = datetime(2025, 3, 4, 3, 12, tzinfo=UTC)
    await slack.close(
        ref,
        CloseApproval(
            request=request,
            status=ApprovalStatus.APPROVED,
            decided_by="Maya Founder",
            decided_at=decided_at,
            reason="",
        ),
    )
    (update,) = slack_server.calls_to("chat.update")
    assert update.body["channel"] == CHANNEL
    assert update.body["ts"] == ref.ts
    assert not buttons(update.body["blocks"])
    assert "Approved by Maya Founder at 03:12 UTC" in all_texts(update.body["blocks"])
    assert "Approved by Maya Founder" in update.body["text"]


def _mrkdwn_objects(blocks: Any) -> list[dict[str, Any]]:
    """Every mrkdwn text object anywhere in ``blocks``."""
    if isinstance(blocks, list):
        return [o for b in blocks for o in _mrkdwn_objects(b)]
    if isinstance(blocks, dict):
        own = [blocks] if blocks.get("type") == "mrkdwn" else []
        return own + [o for v in blocks.values() for o in _mrkdwn_objects(v)]
    return []


async def test_posted_ticket_text_is_verbatim_and_escaped(slack_server: FakeSlackServer) -> None:
    slack = approvals_for(slack_server)
    hostile = "<!channel> @here see <https://evil.example|click> & www.evil.example #general"
    request = approval_request(summary=hostile, plain_explanation=hostile, draft_reply=hostile)

    ref = await slack.post_request(request)
    await slack.close(
        ref,
        CloseApproval(
            request=request,
            status=ApprovalStatus.REJECTED,
            decided_by="Maya",
            decided_at=datetime(2025, 3, 4, 3, 12, tzinfo=UTC),
            reason=hostile,
        ),
    )

    for call in (*slack_server.calls_to("chat.postMessage"), *slack_server.calls_to("chat.update")):
        blocks = call.body["blocks"]
        blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
        texts = _mrkdwn_objects(blocks)
        assert texts and all(t.get("verbatim") is True for t in texts)
        posted = all_texts(blocks) + call.body["text"]
        assert "<!channel>" not in posted and "<https://evil" not in posted
        assert "&lt;!channel&gt; @here see &lt;https://evil.example|click&gt; &amp;" in posted


async def test_reminders_thread_under_the_request_and_mention_approvers(
    slack_server: FakeSlackServer,
) -> None:
    slack = approvals_for(slack_server)
    request = approval_request()
    ref = await slack.post_request(request)

    await slack.post_reminder(ref, request, escalation_level=1, mention_user_ids=["U1", "U2"])
    await slack.post_reminder(ref, request, escalation_level=2, mention_user_ids=["U3"])

    first, second = slack_server.calls_to("chat.postMessage")[1:]
    assert first.body["thread_ts"] == ref.ts
    assert first.body["text"].startswith("<@U1> <@U2> ⏰")
    assert first.body.get("reply_broadcast") in (None, False)
    assert second.body["thread_ts"] == ref.ts
    assert "<@U3>" in second.body["text"]
    assert "Escalation" in second.body["text"]
    assert second.body["reply_broadcast"] is True


async def test_modals_carry_the_approval_id(slack_server: FakeSlackServer) -> None:
    slack = approvals_for(slack_server)
    approval_id = uuid.uuid4()
    await slack.open_reason_modal("trig-1", approval_id, kind="reject")
    await slack.open_reason_modal("trig-2", approval_id, kind="triage_wrong")
    reject, triage = slack_server.calls_to("views.open")
    assert reject.body["trigger_id"] == "trig-1"
    assert reject.body["view"]["callback_id"] == VIEW_REJECT
    assert reject.body["view"]["private_metadata"] == str(approval_id)
    assert triage.body["view"]["callback_id"] == VIEW_TRIAGE_WRONG
    assert triage.body["view"]["private_metadata"] == str(approval_id)
    selects = all_texts(triage.body["view"]["blocks"])
    assert "billing_invoice" in selects
    assert "P1" in selects


async def test_ratelimited_is_retryable_with_retry_after(slack_server: FakeSlackServer) -> None:
    slack_server.fail_next(ratelimited(retry_after=7))
    with pytest.raises(SlackUnavailable) as info:
        await approvals_for(slack_server).post_request(approval_request())
    assert info.value.retry_after == 7
    assert info.value.error == "ratelimited"


async def test_slack_5xx_is_retryable(slack_server: FakeSlackServer) -> None:
    ref = await approvals_for(slack_server).post_request(approval_request())
    slack_server.fail_next(http_error(503))
    with pytest.raises(SlackUnavailable) as info:
        await approvals_for(slack_server).close(
            ref,
            CloseApproval(
                request=approval_request(),
                status=ApprovalStatus.EXPIRED,
                decided_by="",
                decided_at=datetime.now(UTC),
            ),
        )
    assert info.value.status == 503


async def test_no_connection_is_retryable() -> None:
    client = AsyncWebClient(token=TOKEN, base_url=f"http://127.0.0.1:{refusing_port()}/api/")
    with pytest.raises(SlackUnavailable, match="connection"):
        await SlackApprovals(client, channel=CHANNEL).post_request(approval_request())


async def test_channel_not_found_and_bad_token_are_rejected(
    slack_server: FakeSlackServer,
) -> None:
    slack_server.fail_next(slack_error("channel_not_found"))
    with pytest.raises(SlackRejected) as info:
        await approvals_for(slack_server).post_request(approval_request())
    assert info.value.error == "channel_not_found"
    with pytest.raises(SlackRejected) as info:
        await approvals_for(slack_server, token="xoxb-wrong").post_request(approval_request())
    assert info.value.error == "invalid_auth"


# --- POST /slack/interactions -------------------------------------------------------------


class Harness:
    def __init__(self, server: FakeSlackServer, decider: RecordingDecider) -> None:
        self.server = server
        self.decider = decider
        self.ctx = SlackContext(
            signing_secret=SECRET,
            approvers=ApproverDirectory(
                [
                    Approver(
                        name="Maya Founder",
                        email=MAYA,
                        slack_user_id=MAYA_SLACK,
                        roles=[ApproverRole.ADMIN],
                    )
                ]
            ),
            decider=decider,
            slack=approvals_for(server),
        )
        ctx = self.ctx

        def get_ctx(_: Request) -> SlackContext:
            return ctx

        self.http = router_client(slack_router(get_ctx), "http://kruxt.test")

    async def send(
        self, payload: dict[str, Any], *, secret: str = SECRET, signed: bool = True
    ) -> httpx.Response:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if signed:
            headers |= slack_signature(body, secret=secret, timestamp=int(time.time()))
        return await self.http.post("/slack/interactions", content=body, headers=headers)

    def responses(self) -> list[str]:
        return [c.body["text"] for c in self.server.calls_to("response")]


@pytest.fixture
async def harness(slack_server: FakeSlackServer) -> AsyncIterator[Harness]:
    h = Harness(slack_server, RecordingDecider())
    yield h
    await h.ctx.drain()
    await h.http.aclose()


def click(
    action_id: str, approval_id: uuid.UUID, response_url: str, *, user: str = MAYA_SLACK
) -> dict[str, Any]:
    """A ``block_actions`` payload as Slack sends it for a button click."""
    return {
        "type": "block_actions",
        "user": {"id": user, "username": "maya", "team_id": "T0KRUXT"},
        "api_app_id": "A0KRUXT",
        "team": {"id": "T0KRUXT", "domain": "kruxt"},
        "container": {
            "type": "message",
            "message_ts": "1700000000.000001",
            "channel_id": CHANNEL,
            "is_ephemeral": False,
        },
        "channel": {"id": CHANNEL, "name": "approvals"},
        "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "approval_actions",
                "value": str(approval_id),
                "text": {"type": "plain_text", "text": "Approve"},
                "action_ts": "1700000001.000002",
            }
        ],
    }


def submission(
    callback_id: str,
    approval_id: uuid.UUID,
    values: dict[str, Any],
    *,
    user: str = MAYA_SLACK,
) -> dict[str, Any]:
    """A ``view_submission`` payload as Slack sends it for a modal."""
    return {
        "type": "view_submission",
        "user": {"id": user, "username": "maya", "team_id": "T0KRUXT"},
        "team": {"id": "T0KRUXT", "domain": "kruxt"},
        "api_app_id": "A0KRUXT",
        "view": {
            "id": "V0FAKE",
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": str(approval_id),
            "state": {"values": values},
        },
    }


def reason_values(text: str | None) -> dict[str, Any]:
    return {"reason": {"reason_input": {"type": "plain_text_input", "value": text}}}


async def test_a_signed_approve_click_answers_at_once_and_decides_in_the_background(
    harness: Harness,
) -> None:
    gate = asyncio.Event()
    harness.decider.gate = gate  # the decision cannot finish before the answer to Slack
    approval_id = uuid.uuid4()

    response = await asyncio.wait_for(
        harness.send(click(ACTION_APPROVE, approval_id, harness.server.response_url())),
        timeout=30.0,  # were the decision awaited inline, this would hang on the gate
    )

    assert response.status_code == 200
    # Slack got its answer while the decision was still held at the gate.
    assert not gate.is_set()
    gate.set()
    await harness.ctx.drain()
    (call,) = harness.decider.calls
    assert call["approval_id"] == approval_id
    assert call["approver_email"] == MAYA
    assert call["slack_user_id"] == MAYA_SLACK  # the validator matches it to the directory
    assert call["verdict"] is Verdict.APPROVE
    assert call["channel"] is DecisionChannel.SLACK
    assert harness.responses() == []  # nothing to say: the message itself gets updated


@pytest.mark.parametrize("forgery", ["unsigned", "wrong_secret"])
async def test_unsigned_or_forged_requests_get_401_and_decide_nothing(
    harness: Harness, forgery: str
) -> None:
    response = await harness.send(
        click(ACTION_APPROVE, uuid.uuid4(), harness.server.response_url()),
        signed=forgery != "unsigned",
        secret="not-the-secret",
    )
    await harness.ctx.drain()
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"
    assert harness.decider.calls == []


async def test_a_replayed_request_is_refused(harness: Harness) -> None:
    body = urlencode({"payload": json.dumps(click(ACTION_APPROVE, uuid.uuid4(), ""))}).encode()
    headers = slack_signature(body, secret=SECRET, timestamp=int(time.time()) - 6 * 60)
    response = await harness.http.post("/slack/interactions", content=body, headers=headers)
    assert response.status_code == 401
    assert "older than 5 minutes" in response.json()["detail"]
    assert harness.decider.calls == []


async def test_reject_opens_the_modal_and_its_reason_rejects(harness: Harness) -> None:
    approval_id = uuid.uuid4()
    response = await harness.send(click(ACTION_REJECT, approval_id, harness.server.response_url()))
    assert response.status_code == 200
    (opened,) = harness.server.calls_to("views.open")
    assert opened.body["trigger_id"] == "13345224609.738474920.8088930838d88f008e0"
    assert opened.body["view"]["callback_id"] == VIEW_REJECT
    assert harness.decider.calls == []

    response = await harness.send(
        submission(VIEW_REJECT, approval_id, reason_values("  The customer already fixed it "))
    )

    assert response.status_code == 200
    assert response.content == b""  # closes the modal
    (call,) = harness.decider.calls
    assert call["verdict"] is Verdict.REJECT
    assert call["reason"] == "The customer already fixed it"
    assert call["approver_email"] == MAYA
    assert call["slack_user_id"] == MAYA_SLACK
    assert call["channel"] is DecisionChannel.SLACK


@pytest.mark.parametrize("typed", [None, "   "])
async def test_an_empty_reason_keeps_the_modal_open(harness: Harness, typed: str | None) -> None:
    response = await harness.send(submission(VIEW_REJECT, uuid.uuid4(), reason_values(typed)))
    assert response.status_code == 200
    assert response.json() == {
        "response_action": "errors",
        "errors": {"reason": "A reason is required"},
    }
    assert harness.decider.calls == []


async def test_triage_wrong_rejects_with_the_correction(harness: Harness) -> None:
    approval_id = uuid.uuid4()
    await harness.send(click(ACTION_TRIAGE_WRONG, approval_id, harness.server.response_url()))
    (opened,) = harness.server.calls_to("views.open")
    assert opened.body["view"]["callback_id"] == VIEW_TRIAGE_WRONG

    values = {
        "category": {
            "category_select": {
                "type": "static_select",
                "selected_option": {"value": "billing_invoice"},
            }
        },
        "severity": {"severity_select": {"type": "static_select", "selected_option": None}},
        "note": {"note_input": {"type": "plain_text_input", "value": "this is about an invoice"}},
    }
    response = await harness.send(submission(VIEW_TRIAGE_WRONG, approval_id, values))

    assert response.status_code == 200
    (call,) = harness.decider.calls
    assert call["verdict"] is Verdict.REJECT
    assert call["correction"] == TriageCorrection(category=Category.BILLING_INVOICE)
    assert call["reason"] == "triage wrong: this is about an invoice"


async def test_triage_wrong_needs_something_corrected(harness: Harness) -> None:
    response = await harness.send(submission(VIEW_TRIAGE_WRONG, uuid.uuid4(), {}))
    assert response.json()["response_action"] == "errors"
    assert harness.decider.calls == []


async def test_an_unknown_slack_user_is_told_and_nothing_is_decided(harness: Harness) -> None:
    for action_id in (ACTION_APPROVE, ACTION_REJECT):
        response = await harness.send(
            click(action_id, uuid.uuid4(), harness.server.response_url(), user="U0STRANGER")
        )
        assert response.status_code == 200
    await harness.ctx.drain()
    assert harness.decider.calls == []
    assert harness.server.calls_to("views.open") == []
    replies = harness.responses()
    assert len(replies) == 2
    assert all("not a configured approver" in r for r in replies)
    (sink, _) = harness.server.calls_to("response")
    assert sink.body["response_type"] == "ephemeral"


async def test_a_refused_decision_is_reported_to_the_clicker(slack_server: FakeSlackServer) -> None:
    harness = Harness(slack_server, RecordingDecider(refuse="already approved by lee@kruxt.app"))
    try:
        approval_id = uuid.uuid4()
        response = await harness.send(
            click(ACTION_APPROVE, approval_id, slack_server.response_url("r1"))
        )
        assert response.status_code == 200
        await harness.ctx.drain()
        assert harness.responses() == ["Not decided: already approved by lee@kruxt.app"]
        assert slack_server.calls_to("response")[0].path == "/response/r1"

        response = await harness.send(submission(VIEW_REJECT, approval_id, reason_values("no")))
        assert response.json() == {
            "response_action": "errors",
            "errors": {"reason": "Not decided: already approved by lee@kruxt.app"},
        }
    finally:
        await harness.ctx.drain()
        await harness.http.aclose()


async def test_a_modal_that_cannot_open_is_reported(harness: Harness) -> None:
    harness.server.fail_next(slack_error("expired_trigger_id"))
    response = await harness.send(click(ACTION_REJECT, uuid.uuid4(), harness.server.response_url()))
    assert response.status_code == 200
    await harness.ctx.drain()
    assert any("could not be opened" in r for r in harness.responses())
    assert harness.decider.calls == []


async def test_a_slow_refusal_after_the_modal_closed_still_reaches_the_person(
    slack_server: FakeSlackServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kruxt.starter.api.slack_routes")
    gate = asyncio.Event()
    harness = Harness(slack_server, RecordingDecider(refuse="the request expired", gate=gate))
    harness.ctx.view_budget_s = 0.05
    try:
        response = await harness.send(submission(VIEW_REJECT, uuid.uuid4(), reason_values("no")))
        assert response.status_code == 200
        assert response.content == b""  # the modal closes: Slack's 3 seconds come first
        gate.set()
        await harness.ctx.drain()
        (ephemeral,) = slack_server.calls_to("chat.postEphemeral")
        assert ephemeral.body["user"] == MAYA_SLACK
        assert ephemeral.body["channel"] == CHANNEL
        assert ephemeral.body["text"] == "Not decided: the request expired"
        assert "refused: the request expired" in caplog.text
    finally:
        await harness.ctx.drain()
        await harness.http.aclose()
