"""Signing in to the staff console, over HTTP: the e-mailed single-use link, sessions, CSRF,
personal tokens and OpenID Connect, against the real PostgreSQL, the real SendGrid client
talking to the local fake, and a local OpenID Connect provider."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from kruxt.adapters.approvers import ApproverDirectory, parse_approvers
from kruxt.adapters.email import SendGridMailer
from kruxt.adapters.email_tokens import SignInTokens
from kruxt.adapters.postgres.console_sessions import ConsoleSessionStore
from kruxt.adapters.settings import ConfigurationError, Settings
from kruxt.starter.api.app import create_app
from kruxt.starter.cli import main as kruxt
from kruxt.starter.console.auth import (
    CSRF_HEADER,
    SESSION_COOKIE,
    ConsoleAuth,
    console_auth_from,
    safe_next,
)
from kruxt.starter.console.context import ConsoleContext
from kruxt.starter.console.oidc import OidcSignIn
from tests.fakes.oidc import FakeOidcProvider
from tests.fakes.sendgrid_server import FakeSendGridServer
from tests.support import asgi_client

PUBLIC = "http://127.0.0.1:8000"
SECRET = b"a-console-link-secret-long-enough-for-hmac"
MAYA = "maya@kruxt.app"
SAM = "sam@kruxt.app"
STRANGER = "mallory@example.com"
DIRECTORY = f"""
- name: Maya Founder
  email: {MAYA}
  roles: [staff]
- name: Sam Support
  email: {SAM}
  roles: [approver]
"""
START = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
LINK = re.compile(r"http://127\.0\.0\.1:8000/console/sign-in/[A-Za-z0-9_.\-]+(?:\?next=\S+)?")


@dataclass
class Clock:
    """The console's clock, moved by the test."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


@dataclass
class SignInOnly:
    """The API's deps as far as sign-in goes: the console's ``auth`` (the routes under test
    read nothing else; ``/v1/staff/me`` neither)."""

    console: ConsoleContext


@dataclass
class Rig:
    """The API (sign-in routes, console dependencies, /v1/staff) on one ``ConsoleAuth``."""

    auth: ConsoleAuth
    pool: asyncpg.Pool[Any]
    sendgrid: FakeSendGridServer
    clock: Clock
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self) -> httpx.AsyncClient:
        """A browser of its own (its own cookie jar)."""
        app = create_app()
        app.state.deps = SignInOnly(
            console=ConsoleContext(
                auth=self.auth,
                queries=None,  # type: ignore[arg-type]
                actions=None,  # type: ignore[arg-type]
                public_url=PUBLIC,
            )
        )
        browser = asgi_client(app, PUBLIC)
        self.clients.append(browser)
        return browser

    def links(self) -> list[str]:
        """The sign-in links mailed so far, oldest first."""
        found = []
        for mail in self.sendgrid.sent:
            text = next(c["value"] for c in mail["content"] if c["type"] == "text/plain")
            found += LINK.findall(text)
        return found

    async def mailed_link(self, browser: httpx.AsyncClient, email: str = MAYA) -> str:
        """Ask for a link as ``email`` and return the one mailed."""
        before = len(self.links())
        answer = await browser.post("/console/sign-in", data={"email": email})
        assert answer.status_code == 200
        mailed = self.links()
        assert len(mailed) == before + 1
        return mailed[-1]

    async def signed_in(self, email: str = MAYA) -> httpx.AsyncClient:
        """A browser signed in as ``email`` through a mailed link."""
        browser = self.client()
        link = await self.mailed_link(browser, email)
        used = await browser.post(link.removeprefix(PUBLIC))
        assert used.status_code == 303, used.text
        return browser

    async def csrf_of(self, email: str = MAYA) -> str:
        """The CSRF token of ``email``'s newest session (as its pages carry it)."""
        async with self.pool.acquire() as conn:
            token: str = await conn.fetchval(
                "SELECT csrf_token FROM support_console_sessions WHERE email = $1 "
                "ORDER BY created_at DESC LIMIT 1",
                email,
            )
        return token

    async def audit(self, prefix: str = "console.") -> list[tuple[str, str, dict[str, Any]]]:
        """(actor, action, details) of the console's audit rows, in order."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT actor, action, details FROM support_audit_log "
                "WHERE action LIKE $1 ORDER BY id",
                prefix + "%",
            )
        return [(r["actor"], r["action"], _json(r["details"])) for r in rows]


def _json(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else json.loads(value)


def make_auth(
    pool: asyncpg.Pool[Any],
    sendgrid: FakeSendGridServer,
    clock: Clock,
    *,
    public_url: str = PUBLIC,
    oidc: OidcSignIn | None = None,
) -> ConsoleAuth:
    return ConsoleAuth(
        store=ConsoleSessionStore(pool),
        directory=parse_approvers(DIRECTORY, source="test"),
        tokens=SignInTokens(SECRET),
        mailer=SendGridMailer(sendgrid.api_key, "autopilot@kruxt.app", host=sendgrid.base_url),
        public_url=public_url,
        oidc=oidc,
        now=clock,
    )


@pytest.fixture
async def rig(pool: asyncpg.Pool[Any], sendgrid: FakeSendGridServer) -> AsyncIterator[Rig]:
    clock = Clock()
    made = Rig(make_auth(pool, sendgrid, clock), pool, sendgrid, clock)
    yield made
    for browser in made.clients:
        await browser.aclose()


# --- the e-mailed link ---------------------------------------------------------------------


async def test_a_link_signs_in_once_and_only_once(rig: Rig) -> None:
    browser = rig.client()
    link = await rig.mailed_link(browser)
    mail = rig.sendgrid.sent[-1]
    assert mail["personalizations"][0]["to"][0]["email"] == MAYA
    path = link.removeprefix(PUBLIC)

    # Opening the link (a mail scanner, a preview) shows a button and uses nothing up.
    for _ in range(2):
        page = await browser.get(path)
        assert page.status_code == 200
        assert MAYA in page.text and 'method="post"' in page.text
        assert page.headers["referrer-policy"] == "no-referrer"
    assert (await browser.get("/v1/staff/me")).status_code == 401

    used = await browser.post(path)
    assert used.status_code == 303
    assert used.headers["location"] == "/console"
    cookie = used.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback only (dev, tests)
    me = await browser.get("/v1/staff/me")
    assert me.status_code == 200
    assert me.json() == {"email": MAYA, "name": "Maya Founder", "roles": ["staff"]}

    # The same link again, from anywhere: refused, no second session.
    other = rig.client()
    again = await other.post(path)
    assert again.status_code == 409
    assert "used already" in again.text
    assert SESSION_COOKIE not in again.headers.get("set-cookie", "")
    assert (await other.get(path)).status_code == 409
    async with rig.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM support_console_sessions") == 1
    actions = [(actor, action) for actor, action, _ in await rig.audit()]
    assert actions == [
        (MAYA, "console.sign_in_link_sent"),
        (MAYA, "console.signed_in"),
        (MAYA, "console.sign_in_refused"),
    ]
    refused = (await rig.audit())[-1][2]
    assert refused["channel"] == "console" and refused["reason"] == "replayed"


async def test_two_posts_of_one_link_at_once_sign_in_one(rig: Rig) -> None:
    path = (await rig.mailed_link(rig.client())).removeprefix(PUBLIC)
    answers = await asyncio.gather(*(rig.client().post(path) for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [303, 409, 409, 409]


async def test_an_expired_link_is_refused(rig: Rig) -> None:
    browser = rig.client()
    path = (await rig.mailed_link(browser)).removeprefix(PUBLIC)
    rig.clock.advance(timedelta(minutes=15))

    assert (await browser.get(path)).status_code == 410
    used = await browser.post(path)
    assert used.status_code == 410
    assert "expired" in used.text
    assert (await browser.get("/v1/staff/me")).status_code == 401
    _, action, details = (await rig.audit())[-1]
    assert (action, details["reason"]) == ("console.sign_in_refused", "expired")


async def test_a_forged_or_foreign_link_is_refused(rig: Rig) -> None:
    browser = rig.client()
    token = (await rig.mailed_link(browser)).rsplit("/", 1)[1]
    payload, signature = token.split(".")
    forged = f"{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    # A genuine token of the same secret, for another purpose (a different key).
    other, _ = SignInTokens(b"z" * 40).issue(email=MAYA, expires_at=START + timedelta(hours=1))
    for bad in (forged, other, "nonsense"):
        answer = await browser.post(f"/console/sign-in/{bad}")
        assert answer.status_code == 400
        assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")


async def test_a_strangers_address_mails_nothing_and_gets_the_same_page(rig: Rig) -> None:
    browser = rig.client()
    member = await browser.post("/console/sign-in", data={"email": MAYA})
    stranger = await browser.post("/console/sign-in", data={"email": STRANGER})
    nobody = await browser.post("/console/sign-in", data={"email": "not an address"})

    assert member.status_code == stranger.status_code == nobody.status_code == 200
    assert member.text == stranger.text == nobody.text
    assert "If you are on the staff list" in stranger.text
    assert [m["personalizations"][0]["to"][0]["email"] for m in rig.sendgrid.sent] == [MAYA]
    assert all(actor == MAYA for actor, _, _ in await rig.audit())


async def test_asking_again_and_again_mails_three_links_a_quarter_hour(rig: Rig) -> None:
    browser = rig.client()
    answers = [await browser.post("/console/sign-in", data={"email": MAYA}) for _ in range(5)]
    assert len({a.text for a in answers}) == 1
    assert len(rig.links()) == 3
    rig.clock.advance(timedelta(minutes=15))
    await rig.mailed_link(browser)
    # A quarter of an hour later the first links have expired, and a new one is mailed.
    assert (await rig.client().post(rig.links()[0].removeprefix(PUBLIC))).status_code == 410
    assert (await rig.client().post(rig.links()[-1].removeprefix(PUBLIC))).status_code == 303


async def test_a_link_cannot_be_posted_from_another_site(rig: Rig) -> None:
    browser = rig.client()
    path = (await rig.mailed_link(browser)).removeprefix(PUBLIC)
    refused = await browser.post(path, headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    # Refused before it was used: the person can still sign in with it.
    assert (await browser.post(path, headers={"Origin": PUBLIC})).status_code == 303


def test_next_stays_in_the_console() -> None:
    assert safe_next("/console/tickets/1?x=2") == "/console/tickets/1?x=2"
    for hostile in (
        "https://evil.example/console",
        "//evil.example/console",
        "/\\evil.example",
        "/v1/tickets",
        "/consolex",
        "/console/sign-in/abc",
        "",
        "/console/" + "a" * 600,
    ):
        assert safe_next(hostile) == "/console"


async def test_the_link_goes_on_to_the_page_asked_for(rig: Rig) -> None:
    browser = rig.client()
    first = await browser.get("/console/incidents", follow_redirects=False)
    assert first.status_code == 303
    sign_in = first.headers["location"]
    assert sign_in == "/console/sign-in?next=%2Fconsole%2Fincidents"
    page = await browser.get(sign_in)
    assert 'name="next" value="/console/incidents"' in page.text
    await browser.post("/console/sign-in", data={"email": MAYA, "next": "/console/incidents"})
    link = rig.links()[-1]
    assert link.endswith("?next=%2Fconsole%2Fincidents")
    shown = await browser.get(link.removeprefix(PUBLIC))
    used = await browser.post(
        link.removeprefix(PUBLIC).split("?")[0], data={"next": "/console/incidents"}
    )
    assert 'value="/console/incidents"' in shown.text
    assert used.headers["location"] == "/console/incidents"


# --- sessions ------------------------------------------------------------------------------


async def test_no_session_no_page_and_no_api(rig: Rig) -> None:
    browser = rig.client()
    page = await browser.get("/console")
    assert page.status_code == 303
    assert page.headers["location"] == "/console/sign-in?next=%2Fconsole"
    # An htmx swap cannot follow a redirect to a whole page: it is told to load it.
    swap = await browser.get("/console/queue/rows", headers={"HX-Request": "true"})
    assert swap.status_code == 401
    assert swap.headers["hx-redirect"].startswith("/console/sign-in?next=")
    api = await browser.get("/v1/staff/me")
    assert api.status_code == 401
    assert api.json()["error"] == "unauthorized"
    assert api.headers["www-authenticate"] == "Bearer"
    out = await browser.post("/console/sign-out")
    assert out.status_code == 303
    # A cookie that names no session is no session.
    browser.cookies.set(SESSION_COOKIE, "made-up", domain="127.0.0.1")
    assert (await browser.get("/v1/staff/me")).status_code == 401


async def test_an_expired_session_is_refused(rig: Rig) -> None:
    browser = await rig.signed_in()
    rig.clock.advance(timedelta(hours=11, minutes=59))
    assert (await browser.get("/v1/staff/me")).status_code == 200
    rig.clock.advance(timedelta(minutes=1))
    assert (await browser.get("/v1/staff/me")).status_code == 401
    assert (await browser.get("/console")).status_code == 303


async def test_sign_out_ends_the_session_for_good(rig: Rig) -> None:
    browser = await rig.signed_in()
    cookie = browser.cookies[SESSION_COOKIE]
    out = await browser.post("/console/sign-out", data={"csrf_token": await rig.csrf_of()})
    assert out.status_code == 303
    assert out.headers["location"] == "/console/sign-in"
    assert f'{SESSION_COOKIE}=""' in out.headers["set-cookie"]
    # The old cookie, kept by someone who copied it: refused.
    stolen = rig.client()
    stolen.cookies.set(SESSION_COOKIE, cookie, domain="127.0.0.1")
    assert (await stolen.get("/v1/staff/me")).status_code == 401
    actor, action, details = (await rig.audit())[-1]
    assert (actor, action, details["channel"]) == (MAYA, "console.signed_out", "console")


async def test_taken_off_the_directory_means_out_at_the_next_request(rig: Rig) -> None:
    browser = await rig.signed_in(SAM)
    assert (await browser.get("/v1/staff/me")).json()["roles"] == ["approver"]
    rig.auth.directory = ApproverDirectory(
        [a for a in rig.auth.directory.approvers if a.email != SAM]
    )
    assert (await browser.get("/v1/staff/me")).status_code == 401


async def test_csrf_missing_or_wrong_is_refused(rig: Rig) -> None:
    browser = await rig.signed_in()
    csrf = await rig.csrf_of()
    for form in ({}, {"csrf_token": "wrong"}, {"csrf_token": csrf[:-1]}):
        refused = await browser.post("/console/sign-out", data=form)
        assert refused.status_code == 403
        assert "nothing was done" in refused.text  # a page, for a browser's form
    # htmx sends the header, and is answered in the API's error shape.
    wrong_header = await browser.post(
        "/console/sign-out", headers={CSRF_HEADER: "x" * 43, "HX-Request": "true"}
    )
    assert wrong_header.status_code == 403
    assert wrong_header.json()["error"] == "csrf_refused"
    # Another session's token is not this one's.
    other = await rig.signed_in(SAM)
    assert (
        await browser.post("/console/sign-out", data={"csrf_token": await rig.csrf_of(SAM)})
    ).status_code == 403
    assert other.cookies[SESSION_COOKIE] != browser.cookies[SESSION_COOKIE]
    # The JSON API: a cookie-authenticated unsafe call needs the header.
    url = f"/v1/staff/tickets/{uuid.uuid4()}/resolve"
    api = await browser.post(url, json={"note": ""})
    assert api.status_code == 403
    assert api.json()["error"] == "csrf_refused"
    # Still signed in: nothing above ended the session.
    assert (await browser.get("/v1/staff/me")).status_code == 200
    # The right token, as the header htmx sends: through.
    assert (await browser.post("/console/sign-out", headers={CSRF_HEADER: csrf})).status_code == 303


async def test_cookies_are_secure_beyond_loopback_http(
    pool: asyncpg.Pool[Any], sendgrid: FakeSendGridServer
) -> None:
    for url, secure in (
        ("https://support.kruxt.app", True),
        ("http://support.kruxt.app", True),
        ("http://localhost:8000", False),
        ("http://[::1]:8000", False),
    ):
        assert make_auth(pool, sendgrid, Clock(), public_url=url).secure_cookies is secure


# --- personal tokens -----------------------------------------------------------------------


async def test_a_personal_token_works_for_the_staff_api_until_revoked(rig: Rig) -> None:
    record, token = await rig.auth.create_token(SAM, name="scripts")
    api = rig.client()
    bearer = {"Authorization": f"Bearer {token}"}
    me = await api.get("/v1/staff/me", headers=bearer)
    assert me.status_code == 200
    assert me.json()["email"] == SAM
    # A bearer call needs no CSRF token: it is no browser's ambient credential.
    assert (await api.get("/v1/staff/me", headers=bearer)).status_code == 200

    revoked = await ConsoleSessionStore(rig.pool).revoke_token(record.id, by=MAYA)
    assert revoked is not None
    refused = await api.get("/v1/staff/me", headers=bearer)
    assert refused.status_code == 401
    assert refused.json()["error"] == "unauthorized"
    for wrong in (f"Bearer {token[:-1]}", "Bearer kxp_nothing", f"Basic {token}", "Bearer"):
        assert (await api.get("/v1/staff/me", headers={"Authorization": wrong})).status_code == 401
    # A bad bearer is not rescued by a session cookie.
    browser = await rig.signed_in()
    assert (
        await browser.get("/v1/staff/me", headers={"Authorization": "Bearer nope"})
    ).status_code == 401
    actions = [action for _, action, _ in await rig.audit("console.token")]
    assert actions == ["console.token_created", "console.token_revoked"]


async def test_the_cli_creates_and_revokes_personal_tokens(
    isolated_env: pytest.MonkeyPatch,
    db_dsn: str,
    pool: asyncpg.Pool[Any],
    sendgrid: FakeSendGridServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    isolated_env.setenv("DATABASE_URL", db_dsn)
    isolated_env.setenv("KRUXT_APPROVERS", DIRECTORY)
    assert await asyncio.to_thread(kruxt, ["console", "token", "create", "--as", STRANGER]) == 2
    assert "not in the approvers directory" in capsys.readouterr().err

    code = await asyncio.to_thread(
        kruxt, ["console", "token", "create", "--as", "Maya@Kruxt.App", "--name", "ci"]
    )
    assert code == 0
    printed = capsys.readouterr().out.splitlines()
    token_id, token = printed[0].split()[1], printed[1]
    auth = make_auth(pool, sendgrid, Clock())
    assert (await auth.token_member(token)) is not None
    async with pool.acquire() as conn:  # stored as a hash only
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM support_console_tokens WHERE token_hash = $1", token
            )
            == 0
        )

    assert await asyncio.to_thread(kruxt, ["console", "token", "list"]) == 0
    listed = capsys.readouterr().out
    assert token_id in listed and "live" in listed and token not in listed
    revoke = ["console", "token", "revoke", token_id[:8], "--as", MAYA]
    assert await asyncio.to_thread(kruxt, revoke) == 0
    assert await auth.token_member(token) is None
    assert await asyncio.to_thread(kruxt, revoke) == 1


# --- configuration -------------------------------------------------------------------------


def test_the_console_needs_the_link_secret_and_whole_oidc_settings(
    pool: asyncpg.Pool[Any], sendgrid: FakeSendGridServer
) -> None:
    store, directory = ConsoleSessionStore(pool), parse_approvers(DIRECTORY, source="test")
    mailer = SendGridMailer(sendgrid.api_key, "a@kruxt.app", host=sendgrid.base_url)

    def settings(**env: str) -> Settings:
        return Settings(**env)  # type: ignore[arg-type]

    assert console_auth_from(settings(), store, directory, mailer) is None
    secret = "s" * 40
    built = console_auth_from(
        settings(KRUXT_LINK_SECRET=secret, KRUXT_CONSOLE_SESSION_HOURS="2"),
        store,
        directory,
        mailer,
    )
    assert built is not None and built.oidc is None and built.session_hours == 2
    with pytest.raises(ConfigurationError, match="KRUXT_OIDC_CLIENT_SECRET"):
        console_auth_from(
            settings(KRUXT_LINK_SECRET=secret, KRUXT_OIDC_ISSUER="https://idp.example"),
            store,
            directory,
            mailer,
        )
    with_oidc = console_auth_from(
        settings(
            KRUXT_LINK_SECRET=secret,
            KRUXT_OIDC_ISSUER="https://idp.example",
            KRUXT_OIDC_CLIENT_ID="console",
            KRUXT_OIDC_CLIENT_SECRET="shh",
            KRUXT_PUBLIC_URL="https://support.kruxt.app/",
        ),
        store,
        directory,
        mailer,
    )
    assert with_oidc is not None and with_oidc.oidc is not None
    assert with_oidc.oidc.redirect_uri == "https://support.kruxt.app/console/oidc/callback"


# --- OpenID Connect ------------------------------------------------------------------------

CLIENT_ID, CLIENT_SECRET = "kruxt-console", "an-oidc-client-secret"


@pytest.fixture
def idp() -> Iterator[FakeOidcProvider]:
    with FakeOidcProvider(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as provider:
        yield provider


@pytest.fixture
async def oidc_rig(
    pool: asyncpg.Pool[Any], sendgrid: FakeSendGridServer, idp: FakeOidcProvider
) -> AsyncIterator[Rig]:
    clock = Clock(datetime.now(UTC))  # the provider signs with the real time
    oidc = OidcSignIn(
        issuer=idp.issuer,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_uri=f"{PUBLIC}/console/oidc/callback",
    )
    made = Rig(make_auth(pool, sendgrid, clock, oidc=oidc), pool, sendgrid, clock)
    yield made
    for browser in made.clients:
        await browser.aclose()


async def oidc_round_trip(rig: Rig, browser: httpx.AsyncClient) -> httpx.Response:
    """Sign in at the provider and come back: the console's answer to the callback."""
    start = await browser.get("/console/oidc/login", params={"next": "/console/kpis"})
    assert start.status_code == 303
    async with httpx.AsyncClient() as outside:
        at_idp = await outside.get(start.headers["location"])
    assert at_idp.status_code == 302
    back = at_idp.headers["location"]
    assert back.startswith(f"{PUBLIC}/console/oidc/callback?")
    return await browser.get(back.removeprefix(PUBLIC))


async def test_oidc_signs_a_directory_member_in(oidc_rig: Rig, idp: FakeOidcProvider) -> None:
    browser = oidc_rig.client()
    page = await browser.get("/console/sign-in")
    assert "/console/oidc/login" in page.text
    idp.sign_in_as("Maya@Kruxt.App")
    back = await oidc_round_trip(oidc_rig, browser)
    assert back.status_code == 303, back.text
    assert back.headers["location"] == "/console/kpis"
    assert (await browser.get("/v1/staff/me")).json()["email"] == MAYA
    _, action, details = (await oidc_rig.audit())[-1]
    assert (action, details["via"]) == ("console.signed_in", "oidc")


@pytest.mark.parametrize(
    ("misbehave", "reason"),
    [
        ("stranger", "not on the staff list"),
        ("forged", "signature"),
        ("nonce", "nonce"),
        ("unverified", "not verified"),
    ],
)
async def test_oidc_refuses(
    oidc_rig: Rig, idp: FakeOidcProvider, misbehave: str, reason: str
) -> None:
    idp.sign_in_as(
        STRANGER if misbehave == "stranger" else MAYA, verified=misbehave != "unverified"
    )
    idp.forge_signature = misbehave == "forged"
    idp.nonce_override = "another-attempts-nonce" if misbehave == "nonce" else None
    browser = oidc_rig.client()

    back = await oidc_round_trip(oidc_rig, browser)

    assert back.status_code == 403
    assert SESSION_COOKIE not in back.headers.get("set-cookie", "")
    assert (await browser.get("/v1/staff/me")).status_code == 401
    _, action, details = (await oidc_rig.audit())[-1]
    assert action == "console.sign_in_refused"
    assert details["via"] == "oidc" and reason in details["reason"]


async def test_oidc_callback_without_its_attempt_is_refused(
    oidc_rig: Rig, idp: FakeOidcProvider
) -> None:
    idp.sign_in_as(MAYA)
    browser = oidc_rig.client()
    start = await browser.get("/console/oidc/login")
    async with httpx.AsyncClient() as outside:
        back = (await outside.get(start.headers["location"])).headers["location"]
    # Another browser (no state cookie), then a tampered state: neither signs in.
    assert (await oidc_rig.client().get(back.removeprefix(PUBLIC))).status_code == 400
    tampered = re.sub(r"state=[^&]+", "state=guessed", back.removeprefix(PUBLIC))
    assert (await browser.get(tampered)).status_code == 400
    assert idp.token_requests == 0  # the code was never even exchanged
