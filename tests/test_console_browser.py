"""The staff console in a real browser (Debian's chromium, driven by Playwright) against the
stack ``kruxt dev`` runs: sign in through the link it prints, watch a new ticket arrive in the
queue without reloading, open it, approve its plan, watch the playbook run and the ticket move
on. On a desktop window and on a 375 px phone, side by side. Its screenshots are kept with the
test's artefacts; ``make screenshots`` (``KRUXT_README_SCREENSHOTS=1``) also writes the two the
README shows to ``docs/screenshots/`` (a plain test run leaves the tree as it found it).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from kruxt.adapters.settings import PROJECT_ROOT
from tests.test_dev_stack import RunningStack, kruxt_dev
from tests.test_dev_terminal import next_line_with

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium")
# Headless, and nothing fetched behind the test's back (updates, sync, first-run pages).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 720}
PHONE = {"width": 375, "height": 812}
# The first approver of `kruxt dev`'s directory: the one its ready sign-in link is for.
DEV_FOUNDER = "founder@kruxt.dev"
SIGN_IN_LINE = f"sign in the support console as {DEV_FOUNDER}: "
# Long enough for the queue's 10 s refresh, a triage and a playbook run on a busy machine.
WAIT_MS = 45_000

if CHROMIUM is None:  # pragma: no cover - depends on the machine
    pytest.skip(
        "chromium is not installed here (.ci/run installs Debian's with apt)",
        allow_module_level=True,
    )
playwright_api = pytest.importorskip("playwright.async_api")
expect = playwright_api.expect


LOCKED, WORKOUT = "Locked out of my account", "My workout did not save"
# Customers of the demo app write in: an outage, plans to approve, a question.
TICKETS = [
    (None, "owner@gym.example", "Nobody at our gym can log in", "Since 7am none can log in."),
    ("u-locked", "lena@example.com", LOCKED, "The app says my account is locked."),
    (
        "u-workout-fail",
        "wes@example.com",
        WORKOUT,
        "I logged my run this morning; it did not save.",
    ),
    ("u-garmin", "gary@example.com", "Garmin stopped syncing", "No sync from my watch for 3 days."),
    (None, "kim@example.com", "How do I change units to kg?", "Where do I switch pounds to kg?"),
]


async def open_ticket(
    stack: RunningStack, account: str | None, email: str, subject: str, body: str
) -> None:
    """A customer (of the demo app's ``account``) writes in through the in-app channel."""
    async with httpx.AsyncClient(
        base_url=stack.api, headers={"Authorization": f"Bearer {stack.token}"}
    ) as http:
        accepted = await http.post(
            "/v1/tickets",
            json={
                "external_id": uuid.uuid4().hex,
                "requester": {"id": account or email, "email": email},
                "account_id": account,
                "subject": subject,
                "body": body,
            },
        )
    assert accepted.status_code == 202, accepted.text


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """Debian's chromium under Playwright (never a browser Playwright downloads)."""
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def sign_in(page: Any, link: str, api: str) -> None:
    """Open a mailed sign-in link and press its button: the queue."""
    await page.goto(link)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{api}/console")


async def shoot(page: Any, name: str, artefacts: Path, *, readme: bool = False) -> None:
    """A screenshot among the test's artefacts (and for the README, ``readme``)."""
    # As the page is: Playwright's caret and animation hiding would inject a <style>, which
    # the console's CSP refuses (and the browser reports, failing the test's console check).
    shot = await page.screenshot(path=artefacts / name, caret="initial", animations="allow")
    if readme and os.environ.get("KRUXT_README_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / name).write_bytes(shot)


async def open_plan(page: Any, subject: str) -> None:
    """From the queue, open the ticket; wait for its plan to ask for a decision."""
    await page.get_by_role("link", name=subject).click()
    await expect(page.get_by_role("heading", name=subject)).to_be_visible()
    await page.evaluate("window.notReloaded = true")
    # The plan arrives with the live part (polled) once triage and diagnosis are done.
    await expect(page.get_by_role("button", name="Approve")).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator("#ticket-status")).to_have_text("awaiting approval")


@pytest.fixture
def home() -> Iterator[Path]:
    """``kruxt dev``'s home, outside pytest's own temporary root: other pytest runs (as the
    same user) close that root to its owner, and the embedded PostgreSQL runs as another."""
    root = Path(tempfile.mkdtemp(prefix="kx-console-"))
    try:
        yield root / "kx"
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def test_sign_in_see_a_ticket_arrive_approve_it_and_watch_it_run(
    home: Path, tmp_path: Path
) -> None:
    started = time.monotonic()

    def lap(what: str) -> None:
        # Where the time went: shown with a failure (and with -s), for a test that must stay quick.
        print(f"{time.monotonic() - started:5.1f}s {what}", flush=True)

    async with kruxt_dev(home) as stack, chromium() as browser:
        lap("kruxt dev up")
        banner = "".join(stack.output)
        assert f"Console        {stack.api}/console" in banner
        link = (await next_line_with(stack, SIGN_IN_LINE)).split(SIGN_IN_LINE)[1].strip()

        complaints: list[str] = []  # what the browser's console reports (a CSP refusal, say)
        desktop = await (await browser.new_context(viewport=DESKTOP)).new_page()
        await sign_in(desktop, link, stack.api)
        # On the phone: the sign-in form, and the link `kruxt dev` prints for it.
        phone = await (
            await browser.new_context(
                viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
            )
        ).new_page()
        await phone.goto(f"{stack.api}/console")
        await phone.get_by_label("Your work e-mail").fill(DEV_FOUNDER)
        await shoot(phone, "console-sign-in-phone.png", tmp_path)
        await phone.get_by_role("button", name="Mail me a sign-in link").click()
        await expect(phone.get_by_role("heading", name="Check your mail")).to_be_visible()
        again = (await next_line_with(stack, SIGN_IN_LINE)).split(SIGN_IN_LINE)[1].strip()
        assert again != link
        await sign_in(phone, again, stack.api)
        lap("signed in twice")
        for page in (desktop, phone):
            page.on(
                "console",
                lambda m: complaints.append(m.text) if m.type in ("error", "warning") else None,
            )
            page.on("pageerror", lambda e: complaints.append(str(e)))

        # Marks on the pages: a reload would wipe them (Playwright's script, not the page's).
        for page in (desktop, phone):
            await page.evaluate("window.notReloaded = true")
        await asyncio.gather(*(open_ticket(stack, *ticket) for ticket in TICKETS))
        for page, subject in ((desktop, LOCKED), (phone, WORKOUT)):
            await expect(page.get_by_role("link", name=subject)).to_be_visible(timeout=WAIT_MS)
            assert await page.evaluate("window.notReloaded === true")
        lap("tickets in both queues")
        await shoot(phone, "console-queue-phone.png", tmp_path)

        await asyncio.gather(open_plan(desktop, LOCKED), open_plan(phone, WORKOUT))
        lap("plans shown")
        # The phone's approval, as an approver sees it at 3 a.m.: the README's picture.
        await shoot(phone, "console-approval-phone.png", tmp_path, readme=True)

        # At 375 px: nothing wider than the screen, the decision in reach of a thumb.
        assert await phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        approve = phone.get_by_role("button", name="Approve")
        box = await approve.bounding_box()
        assert box is not None and box["height"] >= 44 and box["x"] + box["width"] <= PHONE["width"]
        await approve.tap()
        # On the desktop, from the keyboard: a real button takes Enter.
        await desktop.get_by_role("button", name="Approve").focus()
        await desktop.keyboard.press("Enter")
        for page in (desktop, phone):
            await expect(page.get_by_role("status").first).to_contain_text("Approved")
        for page in (desktop, phone):
            runs = page.locator("#ticket-live").get_by_text("succeeded")
            await expect(runs.first).to_be_visible(timeout=WAIT_MS)
            await expect(page.locator("#ticket-status")).not_to_have_text("awaiting approval")
            assert await page.evaluate("window.notReloaded === true")
        lap("runs succeeded")
        await shoot(desktop, "console-ticket-desktop.png", tmp_path)
        await shoot(phone, "console-ticket-phone.png", tmp_path)

        # The queue as it stands now, the other picture of the README.
        await desktop.goto(f"{stack.api}/console")
        await shoot(desktop, "console-queue-desktop.png", tmp_path, readme=True)
        # The other pages fit the phone too (the KPI charts scale down).
        for name in ("incidents", "kpis"):
            await phone.goto(f"{stack.api}/console/{name}")
            assert await phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            await shoot(phone, f"console-{name}-phone.png", tmp_path)
        # The one script (htmx, from the package) ran under the CSP without a complaint.
        assert complaints == [], "\n".join(complaints)
        lap("done")
