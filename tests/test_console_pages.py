"""The staff console over HTTP: its pages and the ``/v1/staff`` API, on the app as ``kruxt api``
builds it (``build_deps``), with a real worker, Temporal dev server and PostgreSQL.

Nothing without a session; no form post without its CSRF token; the workflow's approval rules
hold here as everywhere (the requester never approves, a missing role is refused); an expired
session is out; ticket text is never markup.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from temporalio.client import Client, WorkflowHandle

from kruxt.adapters.approvers import Approver, ApproverDirectory
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.adapters.settings import Settings
from kruxt.adapters.temporal_dev_server import TemporalDevServer
from kruxt.bootstrap import Bootstrapped, Outside
from kruxt.models.approvals import ApprovalStatus
from kruxt.models.enums import TicketStatus
from kruxt.models.playbooks import ApproverRole
from kruxt.models.tickets import TicketIntake, TicketOutcome, TicketState
from kruxt.starter.api.app import ApiDeps, create_app
from kruxt.starter.api.main import build_deps
from kruxt.starter.console.context import ConsoleContext
from kruxt.workers.composition import build_worker
from tests.support import (
    demo_app,
    eventually,
    intake,
    locked_ticket,
    outbox_mails,
    start_ticket,
    until_status,
)

pytestmark = pytest.mark.e2e

FOUNDER = Approver(
    name="Fran Founder",
    email="founder@kruxt.app",
    roles=[ApproverRole.ADMIN, ApproverRole.STAFF],
)
ONCALL = Approver(name="Oscar Oncall", email="oncall@kruxt.app", roles=[ApproverRole.APPROVER])
# Staff, and a customer too: her own tickets are never hers to approve.
LENA = Approver(name="Lena Staff", email="lena@kruxt.app", roles=[ApproverRole.ADMIN])
DIRECTORY = [FOUNDER, ONCALL, LENA]
BASE = "http://127.0.0.1:8000"
LINK_SECRET = "console-link-secret-for-tests-" + "x" * 16
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def console_settings(home: Path, *, database_url: str, temporal: str, task_queue: str) -> Settings:
    """The settings ``kruxt api`` reads, for the test's database, Temporal and queue: the
    console on (a link secret), mail to the outbox in ``home``, ``DIRECTORY`` as the staff."""
    values = {
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": temporal,
        "KRUXT_TASK_QUEUE": task_queue,
        "KRUXT_INTAKE_TOKEN": "intake-token",
        "KRUXT_LINK_SECRET": LINK_SECRET,
        "KRUXT_PUBLIC_URL": BASE,
        "KRUXT_HOME": str(home),
        "KRUXT_APPROVERS": json.dumps(
            [json.loads(a.model_dump_json(exclude_none=True)) for a in DIRECTORY]
        ),
    }
    return Settings(**values)  # type: ignore[arg-type]


@dataclass
class Staff:
    """One person's browser on the console: their cookie jar and their session's CSRF token."""

    http: httpx.AsyncClient
    csrf: str

    async def post(self, path: str, **form: str) -> httpx.Response:
        """A console form post, with the session's CSRF token unless one is given."""
        return await self.http.post(path, data={"csrf_token": self.csrf} | form)


@dataclass
class ConsoleRig:
    """The API as ``kruxt api`` builds it, with the console on, called in this process."""

    app: FastAPI
    deps: ApiDeps
    boot: Bootstrapped
    home: Path
    client: Client
    pool: asyncpg.Pool[Any]
    task_queue: str

    @property
    def console(self) -> ConsoleContext:
        assert self.deps.console is not None, "build_deps left the console off"
        return self.deps.console

    def browser(self) -> httpx.AsyncClient:
        """A fresh cookie jar on the app."""
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url=BASE, follow_redirects=False
        )

    async def sign_in(self, who: Approver) -> Staff:
        """Sign ``who`` in through a sign-in link (issued as the mail's is) and its button."""
        member = self.console.auth.member(str(who.email))
        assert member is not None
        link = await self.console.auth.issue_link(member)
        http = self.browser()
        used = await http.post(link.removeprefix(BASE))
        assert used.status_code == 303, used.text
        page = await http.get("/console")
        assert page.status_code == 200, page.text
        found = _CSRF.search(page.text)
        assert found is not None
        return Staff(http, found.group(1))

    async def start(self, ticket: TicketIntake) -> WorkflowHandle[Any, TicketOutcome]:
        """The ticket's workflow on the rig's queue, as the intake starts it."""
        return await start_ticket(self.client, ticket, task_queue=self.task_queue)


@pytest.fixture
async def rig(
    tmp_path: Path,
    runtime_dsn: str,
    dev_server: TemporalDevServer,
    dev_client: Client,
    pool: asyncpg.Pool[Any],
    task_queue: str,
) -> AsyncIterator[ConsoleRig]:
    """The console's API as ``build_deps`` makes it of ``console_settings``, without a worker."""
    settings = console_settings(
        tmp_path, database_url=runtime_dsn, temporal=dev_server.address, task_queue=task_queue
    )
    deps, boot = await build_deps(settings, client=dev_client, pool=pool)
    try:
        yield ConsoleRig(create_app(deps), deps, boot, tmp_path, dev_client, pool, task_queue)
    finally:
        await boot.close()


@pytest.fixture
async def working(rig: ConsoleRig, db_dsn: str) -> AsyncIterator[ConsoleRig]:
    """The console's API and a real worker on the demo KRUXT app, ``DIRECTORY`` its approvers."""
    async with demo_app(db_dsn, max_size=2) as app:
        outside = Outside(app=app, approvers=ApproverDirectory(DIRECTORY))
        async with build_worker(
            rig.client, task_queue=rig.task_queue, pool=rig.pool, outside=outside
        ):
            yield rig


async def awaiting_approval(rig: ConsoleRig, ticket: TicketIntake) -> TicketState:
    """Start ``ticket``; its state once its plan waits for a decision."""
    handle = await rig.start(ticket)
    return await until_status(handle, TicketStatus.AWAITING_APPROVAL, timeout=60)


def mailed_link(mail: Message) -> str:
    """The one link of a mail of the outbox (its header, as ``kruxt dev`` prints it)."""
    (header,) = mail.get_all("X-Kruxt-Link", [])
    # A long header is folded and encoded (RFC 2047): decoded, it is "<label> <url>".
    return str(make_header(decode_header(header))).split()[-1]


async def approval_status(rig: ConsoleRig, ticket: TicketIntake) -> ApprovalStatus:
    """Where the ticket's first approval stands, as its workflow says."""
    handle = rig.client.get_workflow_handle(f"ticket-{ticket.ticket_id}")
    state: TicketState = await handle.query("state", result_type=TicketState)
    return state.approvals[0].status


# --- no session, no console ----------------------------------------------------------------


async def test_no_page_and_no_action_without_a_session(rig: ConsoleRig) -> None:
    some = uuid.uuid4()
    pages = [
        "/console",
        "/console/queue/rows",
        f"/console/tickets/{some}",
        "/console/incidents",
        f"/console/incidents/{some}",
        "/console/kpis",
        f"/console/tickets/{some}/live",
    ]
    actions = [
        f"/console/tickets/{some}/approvals/{uuid.uuid4()}",
        f"/console/tickets/{some}/messages",
        f"/console/tickets/{some}/resolve",
        f"/console/tickets/{some}/reassign",
        f"/console/tickets/{some}/priority",
        f"/console/tickets/{some}/runs/{uuid.uuid4()}/rollback",
        f"/console/incidents/{some}/acknowledge",
        f"/console/incidents/{some}/resolve",
    ]
    async with rig.browser() as http:
        for path in pages:
            r = await http.get(path)
            assert r.status_code == 303, (path, r.status_code)
            assert r.headers["location"].startswith("/console/sign-in?next="), path
        for path in actions:
            r = await http.post(path, data={"verdict": "approve", "text": "hi", "csrf_token": "x"})
            assert r.status_code == 303, (path, r.status_code)
            assert r.headers["location"].startswith("/console/sign-in"), path
        # htmx cannot follow a redirect to a whole page: it is told where to go instead.
        r = await http.get("/console/queue/rows", headers={"HX-Request": "true"})
        assert r.status_code == 401 and r.headers["hx-redirect"].startswith("/console/sign-in")
        # The JSON API: 401 in the API's error shape, with a session or a token missing.
        for method, path in [
            ("GET", "/v1/staff/tickets"),
            ("GET", "/v1/staff/approvals"),
            ("POST", f"/v1/staff/approvals/{some}/decide"),
            ("POST", f"/v1/staff/tickets/{some}/messages"),
        ]:
            r = await http.request(method, path, json={"verdict": "approve", "text": "x"})
            assert r.status_code == 401, (path, r.text)
            assert r.json()["error"] == "unauthorized"
        bogus = {"Authorization": "Bearer kxp_not-a-token"}
        assert (await http.get("/v1/staff/me", headers=bogus)).status_code == 401
        # The stylesheet and htmx are served from the package to anyone (the sign-in page).
        css = await http.get("/console/static/console.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        js = await http.get("/console/static/htmx.min.js")
        assert js.status_code == 200 and "htmx 2.0.11" in js.text[:200]
        assert (await http.get("/console/static/..%2Fpages.py")).status_code == 404


# --- CSRF, roles, the requester -----------------------------------------------------------


async def test_a_form_without_its_csrf_token_is_refused(working: ConsoleRig) -> None:
    ticket = locked_ticket(email="ana@example.com")
    state = await awaiting_approval(working, ticket)
    approval = state.approvals[0].request.approval_id
    founder = await working.sign_in(FOUNDER)
    path = f"/console/tickets/{ticket.ticket_id}/approvals/{approval}"
    for form in ({"verdict": "approve"}, {"verdict": "approve", "csrf_token": "forged"}):
        r = await founder.http.post(path, data=form)
        assert r.status_code == 403, r.text
    # Another person's token is no better than none.
    oncall = await working.sign_in(ONCALL)
    r = await founder.http.post(path, data={"verdict": "approve", "csrf_token": oncall.csrf})
    assert r.status_code == 403
    # The JSON API on the session cookie wants the token as a header on unsafe calls.
    r = await founder.http.post(
        f"/v1/staff/approvals/{approval}/decide", json={"verdict": "approve"}
    )
    assert r.status_code == 403 and r.json()["error"] == "csrf_refused"
    assert await approval_status(working, ticket) is ApprovalStatus.PENDING
    # With it, the decision goes to the workflow: the plan runs.
    r = await founder.post(path, verdict="approve")
    assert r.status_code == 303 and r.headers["location"].endswith("?done=approved")
    assert await approval_status(working, ticket) is ApprovalStatus.APPROVED


async def test_the_requester_cannot_approve_her_own_ticket(working: ConsoleRig) -> None:
    ticket = locked_ticket(email=str(LENA.email), name="Lena Staff")
    state = await awaiting_approval(working, ticket)
    approval = state.approvals[0].request.approval_id
    lena = await working.sign_in(LENA)
    page = await lena.http.get(f"/console/tickets/{ticket.ticket_id}")
    assert page.status_code == 200
    # No button offered, and why.
    assert 'value="approve"' not in page.text
    assert "requester" in page.text
    # Posted anyway (with a valid token): the workflow refuses it, the page says so.
    r = await lena.post(
        f"/console/tickets/{ticket.ticket_id}/approvals/{approval}", verdict="approve"
    )
    assert r.status_code == 403
    assert 'class="notice error"' in r.text and "requester" in r.text
    headers = {"X-CSRF-Token": lena.csrf}
    r = await lena.http.post(
        f"/v1/staff/approvals/{approval}/decide", json={"verdict": "approve"}, headers=headers
    )
    assert r.status_code == 403 and r.json()["error"] == "decision_refused", r.text
    assert await approval_status(working, ticket) is ApprovalStatus.PENDING


async def test_an_approver_without_the_role_cannot_approve(working: ConsoleRig) -> None:
    # Restoring a hidden post is a moderation decision: the moderator role (or above).
    ticket = intake(
        subject="My post was removed",
        body="My workout post was removed and hidden from the feed. Please restore my post.",
        email="mia@example.com",
    ).model_copy(update={"account_id": "u-post-author"})
    state = await awaiting_approval(working, ticket)
    request = state.approvals[0].request
    assert request.required_role is ApproverRole.MODERATOR, request
    oncall = await working.sign_in(ONCALL)
    page = await oncall.http.get(f"/console/tickets/{ticket.ticket_id}")
    assert 'value="approve"' not in page.text and "moderator" in page.text
    r = await oncall.post(
        f"/console/tickets/{ticket.ticket_id}/approvals/{request.approval_id}", verdict="approve"
    )
    assert r.status_code == 403 and "moderator" in r.text
    assert await approval_status(working, ticket) is ApprovalStatus.PENDING


# --- sessions ------------------------------------------------------------------------------


async def test_an_expired_session_is_refused(rig: ConsoleRig) -> None:
    oncall = await rig.sign_in(ONCALL)
    _, token = await rig.console.auth.create_token(str(ONCALL.email))
    assert (await oncall.http.get("/console")).status_code == 200
    auth = rig.console.auth
    later = auth.now() + timedelta(hours=auth.session_hours, minutes=1)
    auth.now = lambda: later
    r = await oncall.http.get("/console")
    assert r.status_code == 303 and r.headers["location"].startswith("/console/sign-in")
    assert (await oncall.http.get("/v1/staff/tickets")).status_code == 401
    r = await oncall.post(f"/console/tickets/{uuid.uuid4()}/resolve")
    assert r.status_code == 303
    # A personal token does not expire with a session.
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await oncall.http.get("/v1/staff/me", headers=bearer)).json()["email"] == ONCALL.email


# --- what the pages show ------------------------------------------------------------------


async def test_ticket_text_is_never_markup(rig: ConsoleRig) -> None:
    hostile = intake(
        subject="<script>alert('subject')</script>",
        body='<img src=x onerror="alert(1)"> and {{ 7*7 }}',
        name="<b>Mallory</b>",
    )
    await TicketStore(rig.pool).persist_ticket(
        intake=hostile, workflow_id=f"ticket-{hostile.ticket_id}", idempotency_key="persist"
    )
    founder = await rig.sign_in(FOUNDER)
    queue = await founder.http.get("/console")
    page = await founder.http.get(f"/console/tickets/{hostile.ticket_id}")
    for r in (queue, page):
        assert r.status_code == 200
        assert "&lt;script&gt;alert(&#39;subject&#39;)&lt;/script&gt;" in r.text
        assert "<script>alert" not in r.text and "<b>Mallory</b>" not in r.text
        # Scripts from the console's own origin only: nothing inline could run anyway.
        assert r.headers["content-security-policy"].startswith("default-src 'self'")
        assert re.findall(r"<script[^>]*>", r.text) == [
            '<script src="/console/static/htmx.min.js" defer>'
        ]
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; and {{ 7*7 }}" in page.text
    # The workflow never answered for it: the page says it shows stored data.
    assert "did not answer" in page.text


async def test_a_missing_ticket_is_a_page_for_the_browser_and_json_for_the_api(
    rig: ConsoleRig,
) -> None:
    founder = await rig.sign_in(FOUNDER)
    missing = uuid.uuid4()
    page = await founder.http.get(f"/console/tickets/{missing}", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Not found" in page.text and f"no ticket {missing}" in page.text
    assert 'href="/console"' in page.text
    api = await founder.http.get(f"/v1/staff/tickets/{missing}")
    assert api.status_code == 404 and api.json()["error"] == "not_found"


async def test_the_sign_in_link_arrives_by_mail_and_works_once(rig: ConsoleRig) -> None:
    async with rig.browser() as http:
        asked = await http.post("/console/sign-in", data={"email": FOUNDER.email})
        stranger = await http.post("/console/sign-in", data={"email": "eve@example.com"})
        assert asked.status_code == stranger.status_code == 200
        assert asked.text == stranger.text  # nothing said about who is staff
        (mail,) = outbox_mails(rig.home / "outbox")
        assert mail["To"].endswith(f"<{FOUNDER.email}>")
        link = mailed_link(mail)
        path = link.removeprefix(BASE)
        assert path.startswith("/console/sign-in/"), link
        shown = await http.get(path)  # a mail scanner's GET uses nothing up
        assert shown.status_code == 200 and "<form" in shown.text, (path, shown.text)
        used = await http.post(path)
        assert used.status_code == 303
        queue = await http.get("/console")
        assert queue.status_code == 200 and FOUNDER.name in queue.text
        assert (await http.post(path)).status_code == 409


async def test_the_queue_and_the_json_api_act_as_the_signed_in_person(working: ConsoleRig) -> None:
    ticket = locked_ticket(email="ana@example.com")
    state = await awaiting_approval(working, ticket)
    approval = state.approvals[0].request.approval_id
    founder = await working.sign_in(FOUNDER)
    tab = await founder.http.get("/console/queue/rows?bucket=awaiting_approval")
    assert tab.status_code == 200 and str(ticket.ticket_id) in tab.text
    assert 'hx-trigger="every 10s"' in tab.text
    # A personal token: no cookie, no CSRF token.
    _, token = await working.console.auth.create_token(str(FOUNDER.email), name="script")
    async with working.browser() as script:
        script.headers["Authorization"] = f"Bearer {token}"
        me = (await script.get("/v1/staff/me")).json()
        assert me["email"] == FOUNDER.email and "admin" in me["roles"]
        listed = (await script.get("/v1/staff/approvals")).json()
        assert [a["approval_id"] for a in listed] == [str(approval)]
        rows = (
            await script.get("/v1/staff/tickets", params={"bucket": "awaiting_approval"})
        ).json()
        assert [r["ticket_id"] for r in rows] == [str(ticket.ticket_id)]
        shown = (await script.get(f"/v1/staff/tickets/{ticket.ticket_id}")).json()
        assert shown["approvals"][0]["verdicts"] == ["approve", "reject"]
        refused = await script.post(
            f"/v1/staff/approvals/{approval}/decide", json={"verdict": "reject"}
        )
        assert refused.status_code == 422  # a rejection says why
        decided = await script.post(
            f"/v1/staff/approvals/{approval}/decide",
            json={"verdict": "reject", "reason": "wrong account"},
        )
        assert decided.status_code == 200, decided.text
        assert decided.json()["status"] == "rejected"
        assert decided.json()["decided_by"] == FOUNDER.email
        assert (await script.get(f"/v1/staff/tickets/{uuid.uuid4()}")).status_code == 404
        noted = await script.post(
            f"/v1/staff/tickets/{ticket.ticket_id}/messages",
            json={"text": "Rejected: wrong account", "internal": True},
        )
        assert noted.status_code == 202 and noted.json()["internal"] is True, noted.text

    # The decision is audited (by the worker, once the workflow took it) as the founder's,
    # in the console.
    async def audited() -> asyncpg.Record | None:
        async with working.pool.acquire() as conn:
            row: asyncpg.Record | None = await conn.fetchrow(
                "SELECT actor, details FROM support_audit_log "
                "WHERE action = 'approval.rejected' AND ticket_id = $1",
                ticket.ticket_id,
            )
        return row

    row = await eventually(audited)
    assert row["actor"] == FOUNDER.email
    details = row["details"] if isinstance(row["details"], dict) else json.loads(row["details"])
    assert details.get("channel") == "console", details


# --- incidents, KPIs, writing ---------------------------------------------------------------


async def test_an_incident_is_acknowledged_and_resolved_from_its_page(working: ConsoleRig) -> None:
    outage = intake(
        subject="Nobody at our gym can log in",
        body="Since 7am none of our members can log in to the app.",
        email="owner@gym.example",
    )
    await working.start(outage)
    founder = await working.sign_in(FOUNDER)

    async def listed() -> str | None:
        page = await founder.http.get("/console/incidents")
        found = re.search(r'href="/console/incidents/([0-9a-f-]{36})"', page.text)
        return found.group(1) if found else None

    incident = await eventually(listed, timeout=60)
    page = await founder.http.get(f"/console/incidents/{incident}")
    assert page.status_code == 200 and "Acknowledge" in page.text
    assert f"/console/tickets/{outage.ticket_id}" in page.text
    acked = await founder.post(f"/console/incidents/{incident}/acknowledge")
    assert acked.status_code == 303 and acked.headers["location"].endswith("done=acknowledged")
    page = await founder.http.get(acked.headers["location"])
    assert "Acknowledged: escalation stopped." in page.text and FOUNDER.email in page.text
    # Twice is refused, and says by whom.
    again = await founder.post(f"/console/incidents/{incident}/acknowledge")
    assert again.status_code == 409 and FOUNDER.email in again.text
    resolved = await founder.post(f"/console/incidents/{incident}/resolve", note="login fixed")
    assert resolved.status_code == 303, resolved.text
    headers = {"X-CSRF-Token": founder.csrf}
    shown = await founder.http.get(f"/v1/staff/incidents/{incident}", headers=headers)
    assert shown.json()["incident"]["resolved_by"] == FOUNDER.email


async def test_the_kpi_page_draws_the_report(rig: ConsoleRig) -> None:
    oncall = await rig.sign_in(ONCALL)
    page = await oncall.http.get("/console/kpis?days=30")
    assert page.status_code == 200
    assert page.text.count("<svg ") == 4 and 'aria-current="page">30 days' in page.text
    # Our own charts style themselves inline; scripts stay the console's own only.
    csp = page.headers["content-security-policy"]
    assert "style-src 'self' 'unsafe-inline'" in csp and "script-src" not in csp
    assert "No weekly review yet" in page.text
    assert (await oncall.http.get("/console/kpis/review")).status_code == 404


async def test_a_note_and_a_reply_are_written_from_the_ticket_page(working: ConsoleRig) -> None:
    ticket = locked_ticket(email="ana@example.com")
    await awaiting_approval(working, ticket)
    oncall = await working.sign_in(ONCALL)
    path = f"/console/tickets/{ticket.ticket_id}/messages"
    htmx = {"HX-Request": "true", "X-CSRF-Token": oncall.csrf}
    # htmx: the answer is the live part to swap in, and a fresh (empty) form out of band.
    noted = await oncall.http.post(
        path, data={"kind": "note", "text": "Checked: <b>locked</b> since 7am"}, headers=htmx
    )
    assert noted.status_code == 200, noted.text
    assert noted.text.startswith('<div id="ticket-live"') or 'id="ticket-live"' in noted.text
    assert 'id="ticket-compose" class="card" hx-swap-oob="true"' in noted.text
    assert "Internal note added." in noted.text
    empty = await oncall.http.post(path, data={"kind": "reply", "text": " "}, headers=htmx)
    assert empty.status_code == 422 and "write something first" in empty.text
    replied = await oncall.post(path, kind="reply", text="We are on it, Ana.")
    assert replied.status_code == 303 and replied.headers["location"].endswith("done=reply")

    async def thread() -> str | None:
        page = (await oncall.http.get(f"/console/tickets/{ticket.ticket_id}")).text
        both = "We are on it, Ana." in page and "Checked: &lt;b&gt;locked&lt;/b&gt;" in page
        return page if both else None

    page = await eventually(thread)
    assert "internal note" in page and "to the customer" in page
