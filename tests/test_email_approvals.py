"""E-mail approvals: signed links, the SendGrid and outbox mailers, and the confirm routes."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import Request

from kruxt.adapters.email import (
    EmailMessage,
    MailRejected,
    MailUnavailable,
    OutboxMailer,
    SendGridMailer,
    approval_link,
)
from kruxt.adapters.email_texts import render_approval_email
from kruxt.adapters.email_tokens import (
    ApprovalTokens,
    IssuedToken,
    TokenExpired,
    TokenInvalid,
)
from kruxt.adapters.postgres.approvals import ApprovalStore
from kruxt.adapters.postgres.email_tokens import EmailTokenStore
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.models.approvals import (
    ApprovalKind,
    ApprovalRecord,
    ApprovalRequest,
    ApprovalStatus,
    DecisionChannel,
    TriageCorrection,
    Verdict,
)
from kruxt.models.enums import Category, Priority
from kruxt.models.playbooks import ApproverRole
from kruxt.starter.api.email_routes import EmailContext, email_router
from tests.fakes.sendgrid_server import FakeSendGridServer
from tests.support import RecordingDecider, intake, pending_approval, router_client

SECRET = b"k" * 32
APPROVER = "maya@kruxt.app"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script> & <b>bold</b>'
BASE_URL = "http://kruxt.test"


def make_request(*, summary: str = "Member locked out after failed logins") -> ApprovalRequest:
    return ApprovalRequest(
        approval_id=uuid.uuid4(),
        ticket_id=uuid.uuid4(),
        kind=ApprovalKind.PLAN,
        plan_id=uuid.uuid4(),
        playbook="auth_login",
        required_role=ApproverRole.APPROVER,
        requester_email="member@example.com",
        summary=summary,
        severity=Priority.P2,
        confidence=0.87,
        plain_explanation="Unlock the member's account so they can sign in again.",
        technical_explanation="s1. kruxt_admin.unlock_account('k', user_id => 'u1')",
        rollback_plan="- s1 re-lock the account as it was",
        preview=[{"step": "s1", "before": {"locked": True}, "after": {"locked": False}}],
        draft_reply="Hi! Your account is unlocked.",
        requested_at=NOW,
        expires_at=NOW + timedelta(hours=4),
    )


def issue(
    tokens: ApprovalTokens,
    request: ApprovalRequest,
    verdict: Verdict = Verdict.APPROVE,
    *,
    approver: str = APPROVER,
) -> IssuedToken:
    return tokens.issue(
        approval_id=request.approval_id,
        verdict=verdict,
        approver_email=approver,
        expires_at=request.expires_at,
        issued_at=NOW,
    )


# --- tokens --------------------------------------------------------------------------------


def test_token_roundtrip_binds_approval_verdict_and_approver() -> None:
    tokens = ApprovalTokens(SECRET)
    request = make_request()
    issued = issue(tokens, request, Verdict.REJECT, approver="Maya@Kruxt.App")

    claims = tokens.verify(issued.token, now=NOW + timedelta(minutes=5))

    assert claims == issued.claims
    assert claims.approval_id == request.approval_id
    assert claims.verdict is Verdict.REJECT
    assert claims.approver_email == APPROVER
    assert claims.expires_at == request.expires_at
    assert all(c.isalnum() or c in "-_." for c in issued.token)
    # Every token has its own id, even for the same approval, verdict and approver.
    assert issue(tokens, request).claims.jti != issue(tokens, request).claims.jti


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_forged_tokens_are_invalid() -> None:
    tokens = ApprovalTokens(SECRET)
    mine = issue(tokens, make_request()).token
    theirs = issue(tokens, make_request()).token
    payload, signature = mine.split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]

    # The other approval's payload under this token's signature.
    swapped = f"{theirs.split('.')[0]}.{signature}"
    # This token's payload re-written to name another approval, signature kept.
    body = json.loads(_unb64(payload))
    body["a"] = str(uuid.uuid4())
    edited = f"{_b64(json.dumps(body).encode())}.{signature}"
    # A token signed with another secret.
    other = issue(ApprovalTokens(b"z" * 32), make_request()).token

    for forged in (f"{payload}.{flipped}", swapped, edited, other, mine[:-4]):
        with pytest.raises(TokenInvalid) as caught:
            tokens.verify(forged, now=NOW)
        assert caught.value.reason == "forged"


@pytest.mark.parametrize(
    "token", ["", "nodot", "a.b.c", ".sig", "payload.", "pay load.sig!", "x" * 2000 + ".y"]
)
def test_malformed_tokens_are_invalid(token: str) -> None:
    with pytest.raises(TokenInvalid) as caught:
        ApprovalTokens(SECRET).verify(token, now=NOW)
    assert caught.value.reason == "malformed"


def test_truncated_token_is_invalid() -> None:
    tokens = ApprovalTokens(SECRET)
    token = issue(tokens, make_request()).token
    for cut in (token[:20], token[: token.index(".") + 1], token[:-1]):
        with pytest.raises(TokenInvalid):
            tokens.verify(cut, now=NOW)


def test_expired_token() -> None:
    tokens = ApprovalTokens(SECRET)
    request = make_request()
    issued = issue(tokens, request)

    tokens.verify(issued.token, now=request.expires_at - timedelta(seconds=1))
    with pytest.raises(TokenExpired) as caught:
        tokens.verify(issued.token, now=request.expires_at)
    assert caught.value.claims.jti == issued.claims.jti


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        ApprovalTokens(b"short")


# --- rendering and mailers ---------------------------------------------------------------


def rendered(request: ApprovalRequest | None = None) -> tuple[ApprovalRequest, EmailMessage]:
    request = request or make_request(summary=HOSTILE)
    message = render_approval_email(
        request,
        approver_email=APPROVER,
        approver_name="Maya <Founder>",
        approve_url=approval_link(BASE_URL, "APPROVE.tok"),
        reject_url=approval_link(BASE_URL + "/", "REJECT.tok"),
    )
    return request, message


def test_render_approval_email() -> None:
    request, message = rendered()

    assert message.to == APPROVER
    assert message.subject.startswith(
        f"[P2] Approve: auth login for ticket {str(request.ticket_id)[:8]}"
    )
    assert "\n" not in message.subject
    approve = f"{BASE_URL}/approvals/email/APPROVE.tok"
    reject = f"{BASE_URL}/approvals/email/REJECT.tok"
    assert message.links == {"approve": approve, "reject": reject}
    for part in (message.text, message.html):
        assert approve in part
        assert reject in part
    # Plain explanation first; every part of the request is there.
    text = message.text
    assert text.index(request.plain_explanation) < text.index(request.technical_explanation)
    for piece in (
        request.rollback_plan,
        request.draft_reply,
        "87%",
        "2025-03-01 16:00 UTC",
        '"locked": false',
    ):
        assert piece in text
    # The HTML part escapes everything from the request.
    assert "<script>" not in message.html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;" in message.html
    assert "Maya &lt;Founder&gt;" in message.html


async def test_sendgrid_mailer_sends_through_the_real_client() -> None:
    _, message = rendered()
    with FakeSendGridServer(api_key="SG.test-key") as server:
        mailer = SendGridMailer("SG.test-key", "autopilot@kruxt.app", host=server.base_url)
        await mailer.send(message)

    [request] = server.requests
    assert request.status == 202
    assert request.path == "/v3/mail/send"
    assert request.headers["authorization"] == "Bearer SG.test-key"
    body = request.json
    assert body["personalizations"] == [{"to": [{"email": APPROVER, "name": "Maya <Founder>"}]}]
    assert body["from"]["email"] == "autopilot@kruxt.app"
    assert body["subject"] == message.subject
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    text, html_part = (c["value"] for c in body["content"])
    assert "Unlock the member's account" in text
    assert f"{BASE_URL}/approvals/email/APPROVE.tok" in html_part
    assert f"{BASE_URL}/approvals/email/REJECT.tok" in html_part
    assert "<script>" not in html_part
    assert "&lt;script&gt;" in html_part
    assert body["tracking_settings"]["click_tracking"]["enable"] is False
    assert "SG.test-key" not in repr(mailer)


async def test_sendgrid_errors_map_to_retryable_or_not() -> None:
    _, message = rendered()
    with FakeSendGridServer(api_key="SG.good") as server:
        good = SendGridMailer("SG.good", "autopilot@kruxt.app", host=server.base_url)

        server.fail(429, headers={"Retry-After": "7"})
        with pytest.raises(MailUnavailable) as limited:
            await good.send(message)
        assert limited.value.retry_after == 7.0

        server.fail(500)
        with pytest.raises(MailUnavailable):
            await good.send(message)

        server.fail(400)
        with pytest.raises(MailRejected) as bad:
            await good.send(message)
        assert bad.value.status == 400
        assert "Sender Identity" in str(bad.value)

        wrong_key = SendGridMailer("SG.wrong", "autopilot@kruxt.app", host=server.base_url)
        with pytest.raises(MailRejected) as unauthorized:
            await wrong_key.send(message)
        assert unauthorized.value.status == 401

        await good.send(message)  # the server is fine again
        assert len(server.sent) == 1

    # Nobody listens on the port any more.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = SendGridMailer("SG.good", "autopilot@kruxt.app", host=f"http://127.0.0.1:{port}")
    with pytest.raises(MailUnavailable, match="unreachable"):
        await down.send(message)


def test_sendgrid_mailer_needs_a_key() -> None:
    with pytest.raises(ValueError, match="API key"):
        SendGridMailer("", "autopilot@kruxt.app")


async def test_outbox_writes_parseable_eml_and_announces_links(tmp_path: Path) -> None:
    announced: list[str] = []
    outbox = OutboxMailer(tmp_path / "outbox", announce=announced.append)
    request, message = rendered()
    _, second = rendered(make_request(summary="second"))

    await outbox.send(message)
    await outbox.send(second)

    files = sorted((tmp_path / "outbox").iterdir())
    assert [f.suffix for f in files] == [".eml", ".eml"]  # no partial files left behind
    mail = BytesParser(policy=policy.default).parsebytes(files[0].read_bytes())
    assert mail["To"] == '"Maya <Founder>" <maya@kruxt.app>'
    assert mail["Subject"] == message.subject
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",))
    html_part = mail.get_body(("html",))
    assert text is not None
    assert html_part is not None
    assert request.plain_explanation in text.get_content()
    assert "&lt;script&gt;" in html_part.get_content()
    assert (
        "second" in BytesParser(policy=policy.default).parsebytes(files[1].read_bytes())["Subject"]
    )
    # The links are printed for a developer to click.
    assert f"approve: {BASE_URL}/approvals/email/APPROVE.tok" in announced[0]
    assert f"reject: {BASE_URL}/approvals/email/REJECT.tok" in announced[0]
    assert str(files[0]) in announced[0]


# --- the routes ----------------------------------------------------------------------------


@dataclass
class Harness:
    ctx: EmailContext
    decider: RecordingDecider
    request: ApprovalRequest
    client: httpx.AsyncClient
    clock: list[datetime]

    async def issue(
        self, verdict: Verdict = Verdict.APPROVE, *, record: bool = True
    ) -> IssuedToken:
        issued = issue(self.ctx.tokens, self.request, verdict)
        if record:
            await self.ctx.store.record_issued(issued.claims, ticket_id=self.request.ticket_id)
        return issued


@pytest.fixture
async def harness(pool: asyncpg.Pool[Any]) -> Any:
    request = make_request(summary=HOSTILE)
    decider = RecordingDecider(decided_at=NOW)
    clock = [NOW + timedelta(minutes=10)]

    async def load_request(approval_id: uuid.UUID) -> ApprovalRequest | None:
        return request if approval_id == request.approval_id else None

    ctx = EmailContext(
        tokens=ApprovalTokens(SECRET),
        store=EmailTokenStore(pool),
        load_request=load_request,
        decider=decider,
        now=lambda: clock[0],
    )

    def get_ctx(_: Request) -> EmailContext:
        return ctx

    async with router_client(email_router(get_ctx), BASE_URL) as client:
        yield Harness(ctx, decider, request, client, clock)


async def token_audit(pool: asyncpg.Pool[Any]) -> list[tuple[str, dict[str, Any]]]:
    rows = await pool.fetch(
        "SELECT action, details FROM support_audit_log "
        "WHERE action LIKE 'approval.email_token_%' ORDER BY id"
    )
    return [(r["action"], r["details"]) for r in rows]


def url(token: str) -> str:
    return f"/approvals/email/{token}"


async def test_get_shows_the_request_and_never_decides(harness: Harness) -> None:
    issued = await harness.issue()

    first = await harness.client.get(url(issued.token))
    second = await harness.client.get(url(issued.token))  # a mail scanner, then the person

    assert first.status_code == second.status_code == 200
    page = first.text
    assert "Confirm approve" in page
    assert '<form method="post">' in page
    assert harness.request.plain_explanation.replace("'", "&#x27;") in page
    assert "re-lock the account" in page
    assert "Hi! Your account is unlocked." in page
    assert "&quot;locked&quot;: false" in page
    assert APPROVER in page
    assert "<script" not in page.lower()
    assert "&lt;script&gt;" in page
    csp = first.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src" not in csp
    assert "frame-ancestors 'none'" in csp
    assert first.headers["referrer-policy"] == "no-referrer"
    assert first.headers["cache-control"] == "no-store"

    assert harness.decider.calls == []
    stored = await harness.ctx.store.get(issued.claims.jti)
    assert stored is not None
    assert stored.used_at is None


async def test_reject_page_asks_for_a_reason(harness: Harness) -> None:
    issued = await harness.issue(Verdict.REJECT)
    page = (await harness.client.get(url(issued.token))).text
    assert "Confirm reject" in page
    assert '<textarea id="reason" name="reason"' in page


async def test_post_decides_once_as_the_tokens_approver(
    harness: Harness, pool: asyncpg.Pool[Any]
) -> None:
    issued = await harness.issue()

    done = await harness.client.post(url(issued.token))
    assert done.status_code == 200
    assert "Approved. Thank you" in done.text
    assert "content-security-policy" in done.headers
    assert harness.decider.calls == [
        {
            "approval_id": harness.request.approval_id,
            "approver_email": APPROVER,
            "verdict": Verdict.APPROVE,
            "channel": DecisionChannel.EMAIL,
            "reason": "",
        }
    ]

    replay = await harness.client.post(url(issued.token))
    assert replay.status_code == 409
    assert "already used" in replay.text
    assert len(harness.decider.calls) == 1
    # Opening the used link again shows it is used, with no form to post.
    again = await harness.client.get(url(issued.token))
    assert again.status_code == 409
    assert "<form" not in again.text

    stored = await harness.ctx.store.get(issued.claims.jti)
    assert stored is not None
    assert stored.used_at is not None
    audit = await token_audit(pool)
    assert [a for a, _ in audit] == [
        "approval.email_token_issued",
        "approval.email_token_used",
        "approval.email_token_refused",
    ]
    assert audit[2][1]["reason"] == "replayed"
    assert issued.token not in json.dumps([d for _, d in audit])  # the bearer token is secret


async def test_reject_carries_its_reason_and_no_other_identity(harness: Harness) -> None:
    issued = await harness.issue(Verdict.REJECT)

    response = await harness.client.post(
        url(issued.token),
        data={"reason": "  not without a call  ", "approver_email": "mallory@evil.test"},
    )

    assert response.status_code == 200
    assert "Rejected. Thank you" in response.text
    [call] = harness.decider.calls
    assert call["approver_email"] == APPROVER
    assert call["verdict"] is Verdict.REJECT
    assert call["reason"] == "not without a call"


async def test_concurrent_posts_decide_once(harness: Harness) -> None:
    issued = await harness.issue()
    harness.decider.delay_s = 0.05

    answers = await asyncio.gather(*(harness.client.post(url(issued.token)) for _ in range(4)))

    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409]
    assert len(harness.decider.calls) == 1


async def test_expired_link_decides_nothing(harness: Harness, pool: asyncpg.Pool[Any]) -> None:
    issued = await harness.issue()
    harness.clock[0] = harness.request.expires_at + timedelta(seconds=1)

    shown = await harness.client.get(url(issued.token))
    posted = await harness.client.post(url(issued.token))

    assert shown.status_code == posted.status_code == 410
    assert "expired" in posted.text
    assert harness.decider.calls == []
    stored = await harness.ctx.store.get(issued.claims.jti)
    assert stored is not None
    assert stored.used_at is None
    audit = await token_audit(pool)
    assert audit[-1][0] == "approval.email_token_refused"
    assert audit[-1][1]["reason"] == "expired"


async def test_forged_link_decides_nothing(harness: Harness, pool: asyncpg.Pool[Any]) -> None:
    issued = await harness.issue()
    payload, signature = issued.token.split(".")
    body = json.loads(_unb64(payload))
    body["v"] = "reject"
    forged = f"{_b64(json.dumps(body).encode())}.{signature}"
    foreign = issue(ApprovalTokens(b"q" * 32), harness.request).token

    for token in (forged, foreign, issued.token[:-3], "garbage"):
        assert (await harness.client.get(url(token))).status_code == 400
        posted = await harness.client.post(url(token))
        assert posted.status_code == 400
        assert "not valid" in posted.text

    assert harness.decider.calls == []
    assert [a for a, _ in await token_audit(pool)] == ["approval.email_token_issued"]


async def test_unrecorded_token_is_refused(harness: Harness) -> None:
    issued = await harness.issue(record=False)
    assert (await harness.client.post(url(issued.token))).status_code == 409
    assert harness.decider.calls == []


async def test_refused_decision_shows_why_and_uses_the_link(
    harness: Harness, pool: asyncpg.Pool[Any]
) -> None:
    issued = await harness.issue()
    harness.decider.refuse = "already approved by <b>sam@kruxt.app</b>"

    refused = await harness.client.post(url(issued.token))

    assert refused.status_code == 409
    assert "already approved by &lt;b&gt;sam@kruxt.app&lt;/b&gt;" in refused.text
    assert (await harness.client.post(url(issued.token))).status_code == 409
    assert len(harness.decider.calls) == 1
    audit = await token_audit(pool)
    assert ("approval.email_token_refused", "already approved by <b>sam@kruxt.app</b>") in [
        (a, d.get("reason")) for a, d in audit
    ]


async def test_undelivered_decision_says_what_to_do(
    harness: Harness, pool: asyncpg.Pool[Any]
) -> None:
    issued = await harness.issue()
    harness.decider.crash = ConnectionError("temporal is down")

    failed = await harness.client.post(url(issued.token))

    assert failed.status_code == 503
    assert "kruxt approvals decide" in failed.text
    # A consumed link stays consumed: it cannot be replayed later.
    assert (await harness.client.post(url(issued.token))).status_code == 409
    assert len(harness.decider.calls) == 1
    reasons = [d.get("reason") for a, d in await token_audit(pool)]
    assert "not delivered: ConnectionError" in reasons


async def test_unknown_approval_page(harness: Harness) -> None:
    other = make_request()
    issued = issue(harness.ctx.tokens, other)
    response = await harness.client.get(url(issued.token))
    assert response.status_code == 404
    assert harness.decider.calls == []


async def test_reject_link_offers_triage_wrong_and_sends_the_correction(
    harness: Harness,
) -> None:
    issued = await harness.issue(Verdict.REJECT)
    page = (await harness.client.get(url(issued.token))).text
    assert '<select id="category" name="category">' in page
    assert '<option value="integration_sync">' in page
    assert '<select id="severity" name="severity">' in page

    # An unknown value decides nothing and leaves the link usable.
    bad = await harness.client.post(url(issued.token), data={"category": "DROP TABLE"})
    assert bad.status_code == 400
    assert harness.decider.calls == []

    done = await harness.client.post(
        url(issued.token), data={"category": "integration_sync", "severity": "P3"}
    )
    assert done.status_code == 200
    assert "triage correction is recorded" in done.text
    [call] = harness.decider.calls
    assert call["verdict"] is Verdict.REJECT
    assert call["correction"] == TriageCorrection(
        category=Category.INTEGRATION_SYNC, severity=Priority.P3
    )
    assert (
        call["reason"] == "triage wrong: category should be integration_sync, severity should be P3"
    )


@dataclass
class Stored:
    """The routes over requests stored in the database, loaded as the API loads them."""

    ctx: EmailContext
    client: httpx.AsyncClient
    pool: asyncpg.Pool[Any]
    decider: RecordingDecider

    @property
    def store(self) -> ApprovalStore:
        return ApprovalStore(self.pool)

    async def request(self, **overrides: Any) -> tuple[ApprovalRequest, str]:
        """A pending request of a stored ticket, and its approve link's token."""
        ticket = intake()
        await TicketStore(self.pool).persist_ticket(
            intake=ticket, workflow_id=f"ticket-{ticket.ticket_id}", idempotency_key="persist"
        )
        request = await pending_approval(self.pool, ticket.ticket_id, **overrides)
        issued = self.ctx.tokens.issue(
            approval_id=request.approval_id,
            verdict=Verdict.APPROVE,
            approver_email=APPROVER,
            expires_at=request.expires_at,
            issued_at=request.requested_at,
        )
        await self.ctx.store.record_issued(issued.claims, ticket_id=ticket.ticket_id)
        return request, issued.token


@pytest.fixture
async def stored(pool: asyncpg.Pool[Any]) -> Any:
    store = ApprovalStore(pool)

    async def load_request(approval_id: uuid.UUID) -> ApprovalRequest | None:
        found = await store.get(approval_id)
        return found[0] if found else None

    decider = RecordingDecider()
    ctx = EmailContext(
        tokens=ApprovalTokens(SECRET),
        store=EmailTokenStore(pool),
        load_request=load_request,
        decider=decider,
        load_standing=store.standing,
    )
    async with router_client(email_router(lambda _: ctx), BASE_URL) as client:
        yield Stored(ctx, client, pool, decider)


async def test_a_request_decided_elsewhere_shows_who_and_when_and_no_button(
    stored: Stored, pool: asyncpg.Pool[Any]
) -> None:
    request, token = await stored.request()
    assert "Confirm approve" in (await stored.client.get(url(token))).text

    # Approved in Slack meanwhile.
    await stored.store.record(
        record=ApprovalRecord(
            request=request,
            status=ApprovalStatus.APPROVED,
            decided_by="oncall@kruxt.app",
            channel=DecisionChannel.SLACK,
        ),
        idempotency_key=f"decide:{request.approval_id}",
    )
    decided_at = await pool.fetchval(
        "SELECT decided_at FROM support_approvals WHERE id = $1", request.approval_id
    )
    said = f"already approved by oncall@kruxt.app at {decided_at:%Y-%m-%d %H:%M} UTC"

    page = await stored.client.get(url(token))
    assert page.status_code == 409
    assert said in page.text
    assert "<form" not in page.text
    posted = await stored.client.post(url(token))
    assert posted.status_code == 409
    assert said in posted.text
    assert stored.decider.calls == []
    record = await stored.ctx.store.get(jti_of(stored.ctx.tokens, token))
    assert record is not None and record.used_at is None


def jti_of(tokens: ApprovalTokens, token: str) -> str:
    return tokens.verify(token, now=datetime.now(UTC)).jti


async def test_the_page_shows_the_preview_before_then_after(stored: Stored) -> None:
    """Stored as jsonb (which puts "after" first), read back in the order people read it."""
    preview = [{"step": "s1", "before": {"locked": True}, "after": {"locked": False}}]
    _, token = await stored.request(preview=preview)
    page = (await stored.client.get(url(token))).text
    assert "s1: before {&quot;locked&quot;: true}; after {&quot;locked&quot;: false}" in page


async def test_a_request_closed_without_a_decision_says_why(stored: Stored) -> None:
    request, token = await stored.request()
    closed = ApprovalRecord(
        request=request, status=ApprovalStatus.EXPIRED, reason="the ticket was resolved first"
    )
    await stored.store.record(record=closed, idempotency_key=f"close:{request.approval_id}")

    page = await stored.client.get(url(token))
    assert page.status_code == 409
    assert "closed without a decision (the ticket was resolved first)" in page.text
    assert "<form" not in page.text
