"""Slack, SendGrid, OpenAI, Zendesk, Intercom and GitHub down for a while (5xx and 429).

Each service's local fake answers its next requests with an outage: 5xx pages and a 429
with the wait the provider documents (``Retry-After`` for Slack, OpenAI, Zendesk and GitHub's
secondary limit; SendGrid and Intercom document ``X-RateLimit-Reset``). A real ticket worker,
on the time-skipping server (the tests skip the backoff, the workflow's clock sees it),
calls the service through its real client, and the activity's own retry policy carries the
call through: the fake then holds one accepted request per thing sent, after the failures.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from kruxt.adapters.app_db import KruxtApp
from kruxt.adapters.channels.base import CustomerChannel
from kruxt.adapters.github_client import GitHubIssues
from kruxt.adapters.intercom_client import IntercomClient
from kruxt.adapters.llm_triage import OpenAITriager, build_openai_client
from kruxt.adapters.prompts import load_prompt
from kruxt.adapters.zendesk_client import ZendeskClient
from kruxt.models.enums import Channel, TicketStatus
from kruxt.workers.composition import Outside, build_worker
from tests.fakes._base import Failure, outage
from tests.fakes.github_server import FakeGitHubServer
from tests.fakes.intercom_server import TEST_ADMIN_ID, TEST_TOKEN, FakeIntercomServer
from tests.fakes.openai_server import FakeOpenAIServer, status, valid
from tests.fakes.sendgrid_server import FakeSendGridServer
from tests.fakes.slack_server import FakeSlackServer, http_error, ratelimited
from tests.fakes.zendesk_server import FakeZendeskServer
from tests.scenarios import APPROVERS
from tests.support import (
    ZD_EMAIL,
    ZD_TOKEN,
    email_approvals,
    intake,
    locked_ticket,
    privacy_answer,
    slack_approvals,
    start_ticket,
)
from tests.test_github_issues import GH_REPO, GH_TOKEN, resolve_as_defect, synced, workout_ticket
from tests.test_intercom import channel as intercom_channel
from tests.test_zendesk import channel as zendesk_channel

# Requests each service fails before it answers again: within every policy's attempts (the
# LLM triager's 4 the fewest), so the outage is survived, not given up on.
DOWN_FOR = 3
EXPORT = ("Data export", "Where is the export of my data I asked for last week?")


def reset_in(seconds: int) -> str:
    """An ``X-RateLimit-Reset`` value: a Unix time ``seconds`` from now."""
    return str(int(time.time()) + seconds)


@dataclass
class Rig:
    """This test's time-skipping server, database, demo app and queue."""

    env: WorkflowEnvironment
    pool: asyncpg.Pool[Any]
    app: KruxtApp
    queue: str

    async def until(self, probe: Callable[[], Awaitable[bool]], *, timeout: float = 60) -> None:
        """Skip the workflow clock a minute at a time (past any backoff) until ``probe``."""
        deadline = time.monotonic() + timeout
        while not await probe():
            assert time.monotonic() < deadline, "not reached: the outage was not survived"
            await self.env.sleep(timedelta(minutes=1))

    async def status_of(self, ticket_id: uuid.UUID) -> str | None:
        value: str | None = await self.pool.fetchval(
            "SELECT status FROM support_tickets WHERE id = $1", ticket_id
        )
        return value

    async def audited(self, action: str) -> int:
        n: int = await self.pool.fetchval(
            "SELECT count(*) FROM support_audit_log WHERE action = $1", action
        )
        return n


@pytest.fixture
def rig(
    ts_env: WorkflowEnvironment, pool: asyncpg.Pool[Any], app: KruxtApp, task_queue: str
) -> Rig:
    return Rig(ts_env, pool, app, task_queue)


@asynccontextmanager
async def worker(rig: Rig, outside: Outside) -> AsyncIterator[None]:
    async with build_worker(rig.env.client, task_queue=rig.queue, pool=rig.pool, outside=outside):
        yield


async def plan_announced(rig: Rig, outside: Outside) -> None:
    """A locked account's plan, its approval announced (``approval.sent``) despite the outage."""
    async with worker(rig, outside):
        await start_ticket(rig.env.client, locked_ticket(), task_queue=rig.queue)

        async def announced() -> bool:
            return await rig.audited("approval.sent") == 1

        await rig.until(announced)


async def answered(rig: Rig, outside: Outside, channel: Channel, external_id: str) -> None:
    """A data-export question from ``channel``, answered there despite the outage."""
    ticket = intake(subject=EXPORT[0], body=EXPORT[1], channel=channel, external_id=external_id)
    async with worker(rig, outside):
        await start_ticket(rig.env.client, ticket, task_queue=rig.queue)

        async def delivered() -> bool:
            return await rig.status_of(ticket.ticket_id) == TicketStatus.AWAITING_CUSTOMER.value

        await rig.until(delivered)


# -- one case per service ---------------------------------------------------------------------


async def slack_down(rig: Rig) -> None:
    with FakeSlackServer() as slack:
        slack.fail_next(*outage([http_error(503), ratelimited(retry_after=1)], DOWN_FOR))
        await plan_announced(
            rig, Outside(app=rig.app, approvers=APPROVERS, slack=slack_approvals(slack))
        )
        posts = slack.calls_to("chat.postMessage")
    # The failures, then the one request posted: the approval is in the channel once.
    assert len(posts) == DOWN_FOR + 1
    assert len({p.body["text"] for p in posts}) == 1


async def sendgrid_down(rig: Rig) -> None:
    limited = Failure(429, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset_in(1)})
    with FakeSendGridServer(api_key="SG.test-key") as sendgrid:
        sendgrid.fail_with(outage([Failure(503), limited, Failure(500)], DOWN_FOR))
        email = email_approvals(sendgrid, rig.pool)
        await plan_announced(rig, Outside(app=rig.app, approvers=APPROVERS, email=email))
        statuses = [r.status for r in sendgrid.requests]
        mailed = [
            to["email"] for m in sendgrid.sent for p in m["personalizations"] for to in p["to"]
        ]
    assert statuses == [503, 429, 500, 202, 202]
    assert sorted(mailed) == sorted(str(a.email) for a in APPROVERS.approvers)


async def openai_down(rig: Rig) -> None:
    with FakeOpenAIServer() as openai:
        limited = status(429, headers={"retry-after": "1"})
        openai.script(*outage([status(503), limited, status(500)], DOWN_FOR))
        openai.script(valid(privacy_answer()))
        async with build_openai_client(
            api_key="sk-test", base_url=openai.base_url, timeout_s=5
        ) as client:
            triager = OpenAITriager(client, model="gpt-test", prompt=load_prompt("triage", "v1"))
            await answered(rig, Outside(triager=triager), Channel.IN_APP, uuid.uuid4().hex)
        requests = len(openai.requests)
    assert requests == DOWN_FOR + 1
    # The model's triage, not the rules' fallback: the outage ended within its attempts.
    models = await rig.pool.fetch(
        "SELECT model FROM support_automation_runs WHERE agent = 'triage'"
    )
    assert [r["model"] for r in models] == ["gpt-test"]


async def answered_through(
    rig: Rig,
    kind: Channel,
    connected: CustomerChannel,
    external_id: str,
    client: ZendeskClient | IntercomClient,
) -> None:
    """``answered`` on the ``kind`` channel ``connected``, whose API ``client`` is closed after."""
    try:
        await answered(rig, Outside(channels={kind: connected}), kind, external_id)
    finally:
        await client.aclose()


async def zendesk_down(rig: Rig) -> None:
    limited = Failure(429, {"Retry-After": "1"})
    with FakeZendeskServer(email=ZD_EMAIL, api_token=ZD_TOKEN) as zendesk:
        zendesk.add_ticket("101", requester_id="501")
        zendesk.fail_with(outage([Failure(503), limited, Failure(502)], DOWN_FOR))
        client = ZendeskClient(zendesk.base, email=ZD_EMAIL, api_token=ZD_TOKEN)
        await answered_through(
            rig, Channel.ZENDESK, zendesk_channel(rig.pool, client), "101", client
        )
        puts = [r.status for r in zendesk.requests if r.method == "PUT"]
        comments = zendesk.comments("101")
    assert puts == [503, 429, 502, 200]
    assert [c.public for c in comments] == [True]


async def intercom_down(rig: Rig) -> None:
    limited = Failure(429, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset_in(1)})
    with FakeIntercomServer(token=TEST_TOKEN, admin_ids={TEST_ADMIN_ID}) as intercom:
        intercom.open_conversation("c-701")
        intercom.fail_with(outage([Failure(503), limited, Failure(500)], DOWN_FOR))
        client = IntercomClient(intercom.base, access_token=TEST_TOKEN, admin_id=TEST_ADMIN_ID)
        channel = intercom_channel(rig.pool, client)
        await answered_through(rig, Channel.INTERCOM, channel, "c-701", client)
        statuses = [r.status for r in intercom.requests]
        parts = intercom.parts("c-701")
    assert statuses == [503, 429, 500, 200]
    assert [p.part_type for p in parts] == ["comment"]


async def github_down(rig: Rig) -> None:
    with FakeGitHubServer(token=GH_TOKEN, repository=GH_REPO) as github:
        github.fail(503)
        github.rate_limit(primary=False, wait=1, status=429)
        github.fail(502)
        issues = GitHubIssues(GH_REPO, token=GH_TOKEN, base_url=github.api_url)
        async with worker(rig, Outside(github=issues)):
            ticket = workout_ticket()
            await resolve_as_defect(rig.env.client, rig.queue, ticket)
            row = await synced(rig.env.client, rig.pool, ticket.ticket_id)
        created = github.created()
        failed = [r.status for r in github.requests if r.status is not None and r.status >= 400]
    assert row["posted"]
    assert failed == [503, 429, 502]
    assert len(created) == 1


CASES: dict[str, Callable[[Rig], Awaitable[None]]] = {
    "slack": slack_down,
    "sendgrid": sendgrid_down,
    "openai": openai_down,
    "zendesk": zendesk_down,
    "intercom": intercom_down,
    "github": github_down,
}


@pytest.mark.parametrize("service", list(CASES))
async def test_a_service_down_for_a_while_is_retried_and_sends_once(service: str, rig: Rig) -> None:
    await CASES[service](rig)
