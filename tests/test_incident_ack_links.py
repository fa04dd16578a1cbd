"""Incident "Acknowledge" links: signed tokens, the page e-mail, and the confirm routes."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx
import pytest
from fastapi import Request
from temporalio.testing import ActivityEnvironment

from kruxt.activities.incidents import ACK_LINK_TTL, IncidentActivities
from kruxt.adapters.email import OutboxMailer
from kruxt.adapters.email_tokens import (
    ApprovalTokens,
    IncidentAckExpired,
    IncidentAckTokens,
    TokenInvalid,
)
from kruxt.adapters.postgres.incidents import IncidentStore
from kruxt.models.approvals import DecisionChannel, Verdict
from kruxt.models.incidents import Acknowledged, IncidentInput, PageInput
from kruxt.starter.api.app import ApiDeps, create_app
from kruxt.starter.api.incident_routes import IncidentAckContext, incident_router
from kruxt.starter.incidents import IncidentRefusedError
from tests.support import asgi_client, router_client
from tests.test_incidents import POLICY, WINDOW, opened_incident

SECRET = b"k" * 32
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PERSON = "maya@kruxt.app"
HOSTILE = '<script>alert("x")</script> & <b>bold</b>'
BASE_URL = "http://kruxt.test"


# --- tokens --------------------------------------------------------------------------------


def test_token_roundtrip_binds_incident_and_person() -> None:
    tokens = IncidentAckTokens(SECRET)
    incident_id = uuid.uuid4()
    token = tokens.issue(
        incident_id=incident_id,
        person_email="Maya@Kruxt.App ",
        issued_at=NOW,
        expires_at=NOW + ACK_LINK_TTL,
    )
    claims = tokens.verify(token, now=NOW + timedelta(hours=23))
    assert claims.incident_id == incident_id
    assert claims.person_email == PERSON
    assert claims.issued_at == NOW
    assert claims.expires_at == NOW + timedelta(hours=24)
    assert all(c.isalnum() or c in "-_." for c in token)
    with pytest.raises(ValueError, match="timezone-aware"):
        tokens.issue(incident_id=incident_id, person_email=PERSON, expires_at=datetime(2025, 3, 2))
    with pytest.raises(ValueError, match="at least 32 bytes"):
        IncidentAckTokens(b"short")


def test_forged_and_foreign_tokens_are_invalid() -> None:
    tokens = IncidentAckTokens(SECRET)
    mine = tokens.issue(
        incident_id=uuid.uuid4(), person_email=PERSON, expires_at=NOW + ACK_LINK_TTL
    )
    payload, signature = mine.split(".")
    theirs = tokens.issue(
        incident_id=uuid.uuid4(), person_email="sam@kruxt.app", expires_at=NOW + ACK_LINK_TTL
    )
    other_secret = IncidentAckTokens(b"z" * 32).issue(
        incident_id=uuid.uuid4(), person_email=PERSON, expires_at=NOW + ACK_LINK_TTL
    )
    # An approval link signed with the same secret is no acknowledgement link (own key).
    approval = (
        ApprovalTokens(SECRET)
        .issue(
            approval_id=uuid.uuid4(),
            verdict=Verdict.APPROVE,
            approver_email=PERSON,
            expires_at=NOW + ACK_LINK_TTL,
        )
        .token
    )
    swapped = f"{theirs.split('.')[0]}.{signature}"
    for forged in (swapped, other_secret, approval, mine[:-3]):
        with pytest.raises(TokenInvalid) as caught:
            tokens.verify(forged, now=NOW)
        assert caught.value.reason == "forged"
    for malformed in ("", "nodot", "a.b.c", f"{payload}.", "x" * 2000 + ".y"):
        with pytest.raises(TokenInvalid) as caught:
            tokens.verify(malformed, now=NOW)
        assert caught.value.reason == "malformed"


def test_expired_token() -> None:
    tokens = IncidentAckTokens(SECRET)
    incident_id = uuid.uuid4()
    token = tokens.issue(incident_id=incident_id, person_email=PERSON, expires_at=NOW)
    with pytest.raises(IncidentAckExpired) as caught:
        tokens.verify(token, now=NOW)
    assert caught.value.claims.incident_id == incident_id
    assert caught.value.claims.person_email == PERSON


# --- the page e-mail -----------------------------------------------------------------------

LINK = re.compile(r"http://kruxt\.test/incidents/ack/([A-Za-z0-9_.-]+)")


def parts(path: Path) -> tuple[str, str, str]:
    mail = message_from_bytes(path.read_bytes(), _class=EmailMessage, policy=default)
    text = mail.get_body(preferencelist=("plain",))
    page = mail.get_body(preferencelist=("html",))
    assert text is not None
    assert page is not None
    return str(mail["To"]), text.get_content(), page.get_content()


async def page_founders(
    pool: asyncpg.Pool[Any], outbox: Path, tokens: IncidentAckTokens | None
) -> IncidentInput:
    """Page the founders level (two people) of a fresh incident, as the activity does."""
    at = datetime.now(UTC)
    incident = await opened_incident(pool, at=at)
    activities = IncidentActivities(
        IncidentStore(pool),
        chat=None,
        mailer=OutboxMailer(outbox),
        public_url=BASE_URL + "/",
        policy=POLICY,
        window=WINDOW,
        ack_tokens=tokens,
    )
    result = await ActivityEnvironment().run(
        activities.page_level, PageInput(incident=incident, level=1, loop=0, at=at)
    )
    assert result.emailed == ["maya@kruxt.app", "sam@kruxt.app"]
    return incident


async def test_page_mail_carries_a_working_link_per_person(
    pool: asyncpg.Pool[Any], tmp_path: Path
) -> None:
    tokens = IncidentAckTokens(SECRET)
    incident = await page_founders(pool, tmp_path, tokens)

    mails = [parts(p) for p in sorted(tmp_path.glob("*.eml"))]
    assert sorted(to for to, _, _ in mails) == ["maya@kruxt.app", "sam@kruxt.app"]
    for to, text, page in mails:
        found = LINK.findall(text)
        assert len(found) == 1, text
        claims = tokens.verify(found[0], now=datetime.now(UTC))
        assert (claims.incident_id, claims.person_email) == (incident.incident_id, to)
        assert claims.expires_at - claims.issued_at == ACK_LINK_TTL
        # The same link in the HTML part, as a link; the CLI stays as the fallback.
        assert f'href="{BASE_URL}/incidents/ack/{found[0]}"' in page
        assert f"kruxt incident ack {incident.incident_id} --as {to}" in text


async def test_page_mail_without_tokens_names_the_cli(
    pool: asyncpg.Pool[Any], tmp_path: Path
) -> None:
    incident = await page_founders(pool, tmp_path, None)
    for to, text, page in (parts(p) for p in sorted(tmp_path.glob("*.eml"))):
        assert "/incidents/ack/" not in text + page
        assert f"kruxt incident ack {incident.incident_id} --as {to}" in text


# --- the routes ----------------------------------------------------------------------------


@dataclass
class FakeAcknowledger:
    calls: list[dict[str, Any]] = field(default_factory=list)
    refuse: str | None = None
    crash: Exception | None = None

    async def acknowledge(
        self, incident_id: uuid.UUID, *, by: str, channel: DecisionChannel
    ) -> Acknowledged:
        self.calls.append({"incident_id": incident_id, "by": by, "channel": channel})
        if self.refuse is not None:
            raise IncidentRefusedError(self.refuse)
        if self.crash is not None:
            raise self.crash
        return Acknowledged(incident_id=incident_id, by=by, channel=channel, at=NOW)


@dataclass
class Harness:
    ctx: IncidentAckContext
    acknowledger: FakeAcknowledger
    incident_id: uuid.UUID
    client: httpx.AsyncClient

    def token(self, *, expires_at: datetime = NOW + ACK_LINK_TTL) -> str:
        return self.ctx.tokens.issue(
            incident_id=self.incident_id, person_email=PERSON, issued_at=NOW, expires_at=expires_at
        )


@pytest.fixture
async def harness() -> Any:
    incident_id = uuid.uuid4()
    acknowledger = FakeAcknowledger()

    async def load_title(wanted: uuid.UUID) -> str | None:
        return f"[P1] {HOSTILE}" if wanted == incident_id else None

    ctx = IncidentAckContext(
        tokens=IncidentAckTokens(SECRET),
        acknowledger=acknowledger,
        load_title=load_title,
        now=lambda: NOW + timedelta(minutes=10),
    )

    def get_ctx(_: Request) -> IncidentAckContext:
        return ctx

    async with router_client(incident_router(get_ctx), BASE_URL) as client:
        yield Harness(ctx, acknowledger, incident_id, client)


def url(token: str) -> str:
    return f"/incidents/ack/{token}"


async def test_get_shows_the_incident_and_never_acknowledges(harness: Harness) -> None:
    token = harness.token()
    first = await harness.client.get(url(token))
    second = await harness.client.get(url(token))  # a mail scanner, then the person

    assert first.status_code == second.status_code == 200
    page = first.text
    assert '<form method="post">' in page
    assert "Confirm: I&#x27;m on it" in page
    assert "[P1] " in page
    assert PERSON in page
    assert str(harness.incident_id) in page
    # The hostile title is text, never markup.
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold" in page
    assert "Content-Security-Policy" in first.headers
    assert first.headers["Referrer-Policy"] == "no-referrer"
    assert harness.acknowledger.calls == []


async def test_post_acknowledges_once_as_the_tokens_person(harness: Harness) -> None:
    response = await harness.client.post(url(harness.token()))
    assert response.status_code == 200, response.text
    assert "Acknowledged" in response.text
    assert PERSON in response.text
    assert harness.acknowledger.calls == [
        {"incident_id": harness.incident_id, "by": PERSON, "channel": DecisionChannel.EMAIL}
    ]


async def test_refused_acknowledgement_says_why(harness: Harness) -> None:
    harness.acknowledger.refuse = 'already acknowledged by <sam@kruxt.app> & "co"'
    response = await harness.client.post(url(harness.token()))
    assert response.status_code == 409
    assert "Not acknowledged" in response.text
    assert "already acknowledged by &lt;sam@kruxt.app&gt; &amp; &quot;co&quot;" in response.text
    assert len(harness.acknowledger.calls) == 1


async def test_undelivered_acknowledgement_says_what_to_do(harness: Harness) -> None:
    harness.acknowledger.crash = RuntimeError("temporal down")
    response = await harness.client.post(url(harness.token()))
    assert response.status_code == 503
    assert "kruxt incident ack" in response.text


async def test_forged_link_acknowledges_nothing(harness: Harness) -> None:
    token = harness.token()
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for response in (
        await harness.client.get(url(forged)),
        await harness.client.post(url(forged)),
        await harness.client.post(url("not-a-token")),
    ):
        assert response.status_code == 400
        assert "This link is not valid" in response.text
    assert harness.acknowledger.calls == []


async def test_expired_link_acknowledges_nothing(harness: Harness) -> None:
    token = harness.token(expires_at=NOW + timedelta(minutes=5))
    for response in (
        await harness.client.get(url(token)),
        await harness.client.post(url(token)),
    ):
        assert response.status_code == 410
        assert "expired" in response.text
    assert harness.acknowledger.calls == []


async def test_unknown_incident_page(harness: Harness) -> None:
    token = harness.ctx.tokens.issue(
        incident_id=uuid.uuid4(), person_email=PERSON, expires_at=NOW + ACK_LINK_TTL
    )
    response = await harness.client.get(url(token))
    assert response.status_code == 404
    assert harness.acknowledger.calls == []


async def test_the_app_serves_the_routes_only_when_configured(harness: Harness) -> None:
    def deps(ack: IncidentAckContext | None) -> ApiDeps:
        return ApiDeps(
            intake=cast(Any, None),
            tickets=cast(Any, None),
            intake_token="t" * 32,
            health_checks={},
            incident_ack=ack,
        )

    token = harness.token()
    for ack, wanted in ((None, 404), (harness.ctx, 200)):
        async with asgi_client(create_app(deps(ack)), BASE_URL) as client:
            response = await client.post(url(token))
        assert response.status_code == wanted
    assert len(harness.acknowledger.calls) == 1
