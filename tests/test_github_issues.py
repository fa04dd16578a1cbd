"""Engineering issues for product defects: one GitHub issue per defect, through ``githubkit``
against the local fake (tests/fakes/github_server.py), on the time-skipping server.

A resolution marked as a defect (or triaged as one) files the issue; a recurrence comments on
it, or reopens it when it was closed; concurrent resolutions and a GitHub that fails or
rate-limits still give one issue, and a comment whose answer was lost is not posted twice;
without GitHub the audit says what would be filed. Without the resolver's prevention notes,
the LLM (the local fake, tests/fakes/openai_server.py) drafts them, marked as not reviewed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import openai
import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from kruxt.adapters.github_client import GitHubIssues, GitHubRefused, GitHubUnavailable
from kruxt.adapters.llm_prevention import OpenAIPreventionDrafter
from kruxt.adapters.llm_triage import LlmTriage, build_openai_client, to_triage_result
from kruxt.adapters.postgres.defects import DefectStore
from kruxt.adapters.postgres.kpi_report import kpi_report
from kruxt.adapters.prompts import load_prompt
from kruxt.agents.triage_rules import triage_by_rules
from kruxt.bootstrap import DEFECT_PROMPT_VERSION
from kruxt.models.defects import (
    DefectIssueLink,
    defect_workflow_id,
    marked_occurrences,
    marker,
    occurrence_marker,
    redact_personal,
)
from kruxt.models.enums import Category, Channel, Priority, TicketStatus
from kruxt.models.incidents import ResolveIncident, incident_workflow_id
from kruxt.models.tickets import CustomerMessage, StaffResolve, TicketIntake, TicketState
from kruxt.models.triage import TriageInput
from kruxt.starter import render
from kruxt.workers.composition import ExecutorWorker, Outside, build_worker
from kruxt.workflows.incident import IncidentWorkflow
from kruxt.workflows.ticket import TicketWorkflow
from tests.fakes.github_server import FakeGitHubServer
from tests.fakes.openai_server import DEFAULT_API_KEY, FakeOpenAIServer, status, valid
from tests.support import Cli, eventually, intake, start_ticket, state_where, until_status

GH_TOKEN = "ghp-test-token"
GH_REPO = "kruxt/app"
LEAD = "lead@kruxt.app"
# A workout that will not save: the same text gives the same triage, so the same defect.
# The summary quotes the subject: the customer's address and phone in it must not leak.
SUBJECT = "Workout will not save (ana.private@mailbox.example, 0612345678)"
BODY = "Every time I log a workout the app shows an error and nothing is saved."


@pytest.fixture
def github() -> Iterator[FakeGitHubServer]:
    """A local GitHub holding the repository ``GH_REPO`` for ``GH_TOKEN``."""
    with FakeGitHubServer(token=GH_TOKEN, repository=GH_REPO) as server:
        yield server


@dataclass
class Filing:
    """This test's server, database and queue: workers filing defects, tickets resolved."""

    env: WorkflowEnvironment
    pool: asyncpg.Pool[Any]
    queue: str
    # The LLM clients its workers were given, closed with the fixture (left to the garbage
    # collector, one closes itself on whatever loop is running then: a workflow's, which says so).
    clients: list[openai.AsyncOpenAI] = field(default_factory=list)

    def drafter(self, llm: FakeOpenAIServer) -> OpenAIPreventionDrafter:
        """The prevention drafter the worker builds with OPENAI_API_KEY, at the fake."""
        client = build_openai_client(api_key=DEFAULT_API_KEY, base_url=llm.base_url, timeout_s=10)
        self.clients.append(client)
        prompt = load_prompt("defect", DEFECT_PROMPT_VERSION)
        return OpenAIPreventionDrafter(client, model="gpt-test", prompt=prompt)

    def worker(
        self,
        github: FakeGitHubServer | None,
        *,
        token: str = GH_TOKEN,
        llm: FakeOpenAIServer | None = None,
    ) -> ExecutorWorker:
        """The real worker; defects filed at the fake GitHub (None: GitHub not configured),
        prevention notes drafted by the fake LLM (None: not configured)."""
        issues = GitHubIssues(GH_REPO, token=token, base_url=github.api_url) if github else None
        outside = Outside(github=issues, prevention_drafter=self.drafter(llm) if llm else None)
        return build_worker(self.env.client, task_queue=self.queue, pool=self.pool, outside=outside)

    async def resolve(
        self, ticket: TicketIntake, *, prevention: str = "", posted: bool = True
    ) -> Any:
        """Start the ticket, resolve it as a product defect once triaged; its occurrence row
        once the defect's workflow ran."""
        await resolve_as_defect(self.env.client, self.queue, ticket, prevention=prevention)
        return await self.synced(ticket, posted=posted)

    async def synced(self, ticket: TicketIntake, *, posted: bool = True) -> Any:
        """The ticket's occurrence row once its defect's workflow ran."""
        return await self.synced_source(ticket.ticket_id, posted=posted)

    async def synced_source(self, source_id: uuid.UUID, *, posted: bool = True) -> Any:
        """An incident's (or ticket's) occurrence row once its defect's workflow ran."""
        return await synced(self.env.client, self.pool, source_id, posted=posted)


@pytest.fixture
async def filing(
    ts_env: WorkflowEnvironment, pool: asyncpg.Pool[Any], task_queue: str
) -> AsyncIterator[Filing]:
    """Workers and tickets on the time-skipping server, this test's database and queue."""
    here = Filing(ts_env, pool, task_queue)
    yield here
    for client in here.clients:
        await client.close()


def workout_ticket() -> TicketIntake:
    """The defect's ticket, from a new requester each time (their e-mail must not leak)."""
    return intake(subject=SUBJECT, body=BODY, email=f"member-{uuid.uuid4().hex[:6]}@example.com")


async def resolve_as_defect(
    client: Client, queue: str, ticket: TicketIntake, *, prevention: str = ""
) -> WorkflowHandle[Any, Any]:
    """Start the ticket, and once it is triaged resolve it as a product defect."""
    handle = await start_ticket(client, ticket, task_queue=queue)
    await state_where(handle, lambda s: s.triage is not None)
    resolve = StaffResolve(actor=LEAD, note="fixed", defect=True, prevention=prevention)
    await handle.signal(TicketWorkflow.resolve, resolve)
    return handle


async def outage_fixed(
    filing: Filing, fix: ResolveIncident
) -> tuple[TicketIntake, WorkflowHandle[Any, Any], TicketState]:
    """An outage's ticket, which opens an incident that ``fix`` resolves: the ticket, its
    workflow and its state once it joined the incident (the incident's run has completed)."""
    outage = intake(
        subject="Workouts down for everyone",
        body="Since this morning no member of our gym can save a workout: error 500 every time.",
    )
    handle = await start_ticket(filing.env.client, outage, task_queue=filing.queue)
    state = await state_where(handle, lambda s: s.incident_id is not None)
    assert state.incident_id is not None
    incident = filing.env.client.get_workflow_handle_for(
        IncidentWorkflow.run, incident_workflow_id(state.incident_id)
    )
    await incident.execute_update(IncidentWorkflow.resolve, fix)
    await incident.result()
    return outage, handle, state


async def synced(
    client: Client, pool: asyncpg.Pool[Any], ticket_id: uuid.UUID, *, posted: bool = True
) -> Any:
    """The ticket's occurrence once its defect's workflow ran: the row, with ``posted``
    (``posted``: wait for it, as a run that started before the report may answer first)."""

    async def row() -> Any:
        return await pool.fetchrow(
            "SELECT fingerprint, posted_at IS NOT NULL AS posted "
            "FROM support_defect_occurrences WHERE source_id = $1",
            ticket_id,
        )

    for _ in range(300):
        found = await row()
        if found is not None:
            break
        await asyncio.sleep(0.05)
    assert found is not None, "the resolution reported no defect"
    handle = client.get_workflow_handle(defect_workflow_id(found["fingerprint"]))
    for _ in range(300):
        try:
            await handle.result()  # the latest run; the time-skipping server skips its waits
            break
        except RPCError as exc:
            if exc.status is not RPCStatusCode.NOT_FOUND:
                raise
            await asyncio.sleep(0.05)
        except RuntimeError:
            pass  # the history's long poll came back empty (the test server): wait again
    for _ in range(100 if posted else 0):
        if found["posted"]:
            break
        await asyncio.sleep(0.05)
        found = await row()
    return found


async def audit_actions(pool: asyncpg.Pool[Any]) -> list[str]:
    rows = await pool.fetch(
        "SELECT action FROM support_audit_log WHERE action LIKE 'defect.%' ORDER BY id"
    )
    return [r["action"] for r in rows]


def everything_posted(github: FakeGitHubServer) -> str:
    """Every title, body and comment the fake received, as one text."""
    return "\n".join(part for i in github.created() for part in (i.title, i.body, *i.comments))


async def test_a_defect_resolved_twice_files_one_issue_and_one_comment(
    filing: Filing, github: FakeGitHubServer, openai_server: FakeOpenAIServer
) -> None:
    first, second = workout_ticket(), workout_ticket()
    async with filing.worker(github, llm=openai_server):
        row = await filing.resolve(first, prevention="Retry the save")
        assert row["posted"]
        assert (await filing.resolve(second))["posted"]

    [issue] = github.created()
    assert issue.labels == ["kruxt"]
    assert marker(row["fingerprint"]) in issue.body
    assert "<!-- kruxt:fingerprint=v1:" in issue.body
    assert str(first.ticket_id) in issue.body
    assert "Retry the save" in issue.body
    assert "**Severity:**" in issue.body
    [comment] = issue.comments
    assert str(second.ticket_id) in comment
    assert "2 resolution(s)" in comment
    creates = [r for r in github.requests if r.method == "POST" and r.path.endswith("/issues")]
    assert len(creates) == 1
    # Both tickets link to it; ours is the source of truth, not a search.
    link = await DefectStore(filing.pool).issue_of(second.ticket_id)
    assert link is not None
    assert (link.issue_number, link.state, link.occurrences) == (issue.number, "open", 2)
    # No customer personal data: neither requester's e-mail, nor those in the text.
    posted = everything_posted(github)
    for secret in (first.requester.email, second.requester.email, "ana.private", "0612345678"):
        assert secret not in posted
    assert "@" not in posted
    assert openai_server.requests == []  # the resolver's notes: nothing to draft


async def test_a_comment_whose_answer_is_lost_is_posted_once(
    filing: Filing, github: FakeGitHubServer
) -> None:
    second = workout_ticket()
    async with filing.worker(github):
        await filing.resolve(workout_ticket())
        # GitHub takes the comment, but its answer is lost: the retry reads the issue's
        # comments and finds the one that names this occurrence.
        github.fail(502, after_apply=True, on="POST comments")
        assert (await filing.resolve(second))["posted"]

    [issue] = github.created()
    [comment] = issue.comments
    assert occurrence_marker([second.ticket_id]) in comment
    posts = [r for r in github.requests if r.method == "POST" and r.path.endswith("/comments")]
    assert [r.status for r in posts] == [502]
    assert await audit_actions(filing.pool) == [
        "defect.reported",
        "defect.issue_created",
        "defect.reported",
        "defect.issue_commented",
    ]


async def test_without_prevention_notes_the_llm_drafts_them_marked_as_not_reviewed(
    filing: Filing, github: FakeGitHubServer, openai_server: FakeOpenAIServer
) -> None:
    notes = ["Alert when workout saves fail.", "Test saving under load before a release."]
    openai_server.script(status(503), valid({"notes": notes}))  # retried once
    ticket = workout_ticket()
    async with filing.worker(github, llm=openai_server):
        await filing.resolve(ticket)
        await filing.resolve(workout_ticket())  # filed already: nothing more to draft

    [issue] = github.created()
    assert "_Draft by the LLM, not reviewed:_\n- Alert when workout saves fail.\n- " in issue.body
    assert len(openai_server.requests) == 2
    system, user = openai_server.requests[-1].json["messages"]
    assert system["content"] == load_prompt("defect", DEFECT_PROMPT_VERSION).text
    prompt = user["content"]
    # The defect and its tickets' summaries, redacted: no personal data in the prompt either.
    assert "category: workout_log_submit" in prompt
    assert "[email redacted]" in prompt
    for secret in ("ana.private", "0612345678", ticket.requester.email):
        assert secret not in prompt
    assert "defect.prevention_drafted" in await audit_actions(filing.pool)


async def test_an_llm_that_fails_leaves_the_triages_draft(
    filing: Filing, github: FakeGitHubServer, openai_server: FakeOpenAIServer
) -> None:
    openai_server.script(status(503), status(400))  # retried, then refused for good
    ticket = workout_ticket()
    async with filing.worker(github, llm=openai_server):
        await filing.resolve(ticket)

    assert len(openai_server.requests) == 2
    [issue] = github.created()
    action = await filing.pool.fetchval(
        "SELECT prevention_draft FROM support_defect_occurrences WHERE source_id = $1",
        ticket.ticket_id,
    )
    assert f"_Draft, not reviewed by the resolver:_ {redact_personal(action)}" in issue.body
    assert "Draft by the LLM" not in issue.body


def test_occurrence_markers_are_read_back_from_any_comment() -> None:
    ids = [uuid.uuid4(), uuid.uuid4()]
    comments = ["no marker", f"Seen again.\n{occurrence_marker(ids)}", "<!-- kruxt:occurrences="]
    assert marked_occurrences(comments) == {str(i) for i in ids}


async def test_a_recurrence_reopens_a_closed_issue_as_regressed(
    filing: Filing, github: FakeGitHubServer
) -> None:
    first, again = workout_ticket(), workout_ticket()
    async with filing.worker(github):
        await filing.resolve(first)
        [issue] = github.created()
        github.close(issue.number)  # engineering shipped a fix
        await filing.resolve(again)

    assert [i.number for i in github.created()] == [issue.number]
    assert issue.state == "open"
    assert "regressed" in issue.labels
    [comment] = issue.comments
    assert comment.startswith("**Regressed:**")
    assert str(again.ticket_id) in comment
    assert "defect.issue_reopened" in await audit_actions(filing.pool)


async def test_concurrent_resolutions_of_one_defect_file_one_issue(
    filing: Filing, github: FakeGitHubServer
) -> None:
    tickets = [workout_ticket() for _ in range(3)]
    async with filing.worker(github):
        handles = [
            await start_ticket(filing.env.client, t, task_queue=filing.queue) for t in tickets
        ]
        for handle in handles:
            await state_where(handle, lambda s: s.triage is not None)
        resolve = StaffResolve(actor=LEAD, defect=True)
        await asyncio.gather(*(h.signal(TicketWorkflow.resolve, resolve) for h in handles))
        for t in tickets:
            assert (await filing.synced(t))["posted"]

    [issue] = github.created()
    text = issue.body + "".join(issue.comments)
    assert all(str(t.ticket_id) in text for t in tickets)


async def test_github_down_and_rate_limited_is_retried_with_nothing_lost_or_duplicated(
    filing: Filing, github: FakeGitHubServer
) -> None:
    ticket = workout_ticket()
    # The create goes through but its answer is lost: a retry finds it by its marker (the
    # label's issues listed, never searched) once GitHub answers again.
    github.fail(502, after_apply=True)
    github.rate_limit(primary=False, wait=1, status=429)
    github.rate_limit(primary=True, wait=1)
    async with filing.worker(github):
        row = await filing.resolve(ticket)

    assert row["posted"]
    [issue] = github.created()
    link = await DefectStore(filing.pool).issue_of(ticket.ticket_id)
    assert link is not None
    assert link.issue_number == issue.number
    assert await audit_actions(filing.pool) == ["defect.reported", "defect.issue_recovered"]


async def test_github_refusing_tells_a_person_and_keeps_the_report(
    filing: Filing, github: FakeGitHubServer
) -> None:
    ticket = workout_ticket()
    async with filing.worker(github, token="revoked"):
        row = await filing.resolve(ticket, posted=False)
        outcome = await filing.env.client.get_workflow_handle(
            defect_workflow_id(row["fingerprint"])
        ).result()

    assert not row["posted"]  # kept for the defect's next report
    assert github.created() == []
    assert "GitHubRefused" in outcome["failed"]
    assert await audit_actions(filing.pool) == ["defect.reported", "defect.issue_failed"]
    reason = await filing.pool.fetchval(
        "SELECT details->>'reason' FROM support_audit_log WHERE action = 'defect.issue_failed'"
    )
    assert "401" in reason


async def test_without_github_a_triaged_defect_is_audited_as_would_create(filing: Filing) -> None:
    # An outage: triage itself calls it a product defect; staff resolve it without marking.
    outage = intake(
        subject="App down",
        body="The whole app is down for everyone, nobody can log in or open anything.",
    )
    async with filing.worker(None):
        handle = await start_ticket(filing.env.client, outage, task_queue=filing.queue)
        state = await state_where(handle, lambda s: s.triage is not None)
        assert state.triage is not None and state.triage.product_defect
        await handle.signal(TicketWorkflow.resolve, StaffResolve(actor=LEAD))
        row = await filing.synced(outage, posted=False)

    assert not row["posted"]  # filed once GitHub is configured
    assert await audit_actions(filing.pool) == ["defect.reported", "defect.issue_would_create"]
    title = await filing.pool.fetchval(
        "SELECT details->>'title' FROM support_audit_log WHERE action = 'defect.issue_would_create'"
    )
    assert title.startswith("[P1] ")


async def test_an_incident_resolved_as_a_defect_and_its_ticket_share_one_issue(
    filing: Filing, github: FakeGitHubServer
) -> None:
    async with filing.worker(github):
        fix = ResolveIncident(by=LEAD, defect=True, prevention="Alert on save errors")
        outage, handle, state = await outage_fixed(filing, fix)
        assert state.incident_id is not None
        await filing.synced_source(state.incident_id)
        await handle.signal(TicketWorkflow.resolve, StaffResolve(actor=LEAD))
        await filing.synced(outage)

    [issue] = github.created()
    assert str(state.incident_id) in issue.body
    assert "Alert on save errors" in issue.body
    [comment] = issue.comments
    assert str(outage.ticket_id) in comment


@pytest.mark.parametrize("how", ["confirmed", "assumed"])
async def test_a_defect_the_customers_side_solves_files_its_issue_too(
    filing: Filing, github: FakeGitHubServer, how: str
) -> None:
    # An outage (triage: a product defect); its incident is resolved, not marked as one; the
    # ticket then waits on the customer, who confirms, or stays silent until it is assumed.
    async with filing.worker(github):
        outage, handle, state = await outage_fixed(filing, ResolveIncident(by=LEAD))
        assert state.triage is not None and state.triage.product_defect
        await until_status(handle, TicketStatus.AWAITING_CUSTOMER)
        if how == "confirmed":
            message = CustomerMessage(
                message_id=uuid.uuid4(), body="Thanks, that worked!", received_at=datetime.now(UTC)
            )
            await handle.signal(TicketWorkflow.customer_message, message)
        else:
            await filing.env.sleep(timedelta(hours=73))
        solved = await state_where(handle, lambda s: s.status is TicketStatus.RESOLVED)
        assert solved.lifecycle.solved_how == how
        row = await filing.synced(outage)

    assert row["posted"]
    [issue] = github.created()
    assert str(outage.ticket_id) in issue.body
    assert await audit_actions(filing.pool) == ["defect.reported", "defect.issue_created"]


async def test_kpi_lists_recurring_causes_and_show_the_linked_issue(
    filing: Filing, github: FakeGitHubServer
) -> None:
    tickets = [workout_ticket(), workout_ticket()]
    async with filing.worker(github):
        for t in tickets:
            await filing.resolve(t)

    report = await kpi_report(filing.pool, days=7)
    [cause] = report.recurring
    assert (cause.tickets, cause.issue_number) == (2, 1)
    page = render.kpi_report(report)
    assert "recurring root causes" in page
    assert "2 ticket(s)" in page
    assert "https://github.com/kruxt/app/issues/1" in page
    link = await DefectStore(filing.pool).issue_of(tickets[0].ticket_id)
    assert isinstance(link, DefectIssueLink)
    assert render.defect_issue(link).startswith("#1 (open) https://github.com/kruxt/app/issues/1")


def test_rules_triage_calls_outages_defects_and_questions_not() -> None:
    def triage(subject: str, body: str) -> bool:
        inp = TriageInput(
            ticket_id=uuid.uuid4(), channel=Channel.IN_APP, subject=subject, body=body
        )
        return triage_by_rules(inp).product_defect

    assert triage("App down", "The whole app is down for everyone, nobody can log in.")
    assert not triage("How do I export?", "How can I download a copy of my data?")


@pytest.mark.parametrize(("says", "injected", "defect"), [(True, False, True), (True, True, False)])
def test_the_llm_schema_asks_and_an_injected_ticket_files_nothing(
    says: bool, injected: bool, defect: bool
) -> None:
    assert "product_defect" in LlmTriage.model_json_schema()["properties"]
    answer = LlmTriage(
        summary="Saves fail for everyone.",
        severity=Priority.P1,
        category=Category.WORKOUT_LOG_SUBMIT,
        playbook="workout_log_submit",
        probable_root_cause="The save endpoint returns 500 since the release.",
        recommended_action="Roll back the release.",
        suspected_injection=injected,
        confidence=0.9,
        product_defect=says,
    )
    assert to_triage_result(answer).product_defect is defect


def test_redaction_removes_addresses_and_long_numbers_in_linear_time() -> None:
    assert redact_personal("mail a.b@c.example now") == "mail [email redacted] now"
    assert "0612345678" not in redact_personal("call 06-1234-5678 or 0612345678")
    hostile = "@" * 200_000 + "x" * 200_000
    assert redact_personal(hostile) == "[email redacted]"


@pytest.mark.e2e
async def test_cli_resolve_as_defect_then_show_and_kpi_link_the_issue(
    cli: Cli, github: FakeGitHubServer, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.env.setenv(
        "KRUXT_APPROVERS", '[{"name": "Lead", "email": "lead@kruxt.app", "roles": ["staff"]}]'
    )
    issues = GitHubIssues(GH_REPO, token=GH_TOKEN, base_url=github.api_url)
    async with cli.worker(Outside(github=issues)):
        new = ("ticket", "new", "--email", "bo@example.com", "--subject", SUBJECT, "--body", BODY)
        assert await cli.run(*new) == 0
        ticket_id = capsys.readouterr().out.split()[1]
        resolve = ("ticket", "resolve", ticket_id, "--as", LEAD, "--defect")
        assert await cli.run(*resolve, "--prevention", "Retry saves on the server") == 0

        async def filed() -> DefectIssueLink | None:
            link = await DefectStore(cli.pool).issue_of(uuid.UUID(ticket_id))
            return link if link is not None and link.issue_number is not None else None

        await eventually(filed, timeout=60)
        capsys.readouterr()
        assert await cli.run("ticket", "show", ticket_id) == 0
        assert "Issue    #1 (open) https://github.com/kruxt/app/issues/1" in capsys.readouterr().out
        assert await cli.run("kpi") == 0
        page = capsys.readouterr().out
    assert "1 ticket(s), 1 resolution(s)" in page
    assert "#1 https://github.com/kruxt/app/issues/1" in page
    [issue] = github.created()
    assert "Retry saves on the server" in issue.body
    assert "bo@example.com" not in issue.body


async def test_the_client_maps_githubs_answers_and_the_fake_refuses_like_github(
    github: FakeGitHubServer,
) -> None:
    client = GitHubIssues(GH_REPO, token=GH_TOKEN, base_url=github.api_url)
    issue = await client.create(title="t", body="b", labels=["kruxt"])
    with pytest.raises(GitHubRefused, match="401"):
        await GitHubIssues(GH_REPO, token="wrong", base_url=github.api_url).get(issue.number)
    with pytest.raises(GitHubRefused, match="404"):
        await GitHubIssues("kruxt/other", token=GH_TOKEN, base_url=github.api_url).get(1)
    with pytest.raises(GitHubRefused, match="422"):
        await client.comment(issue.number, "")
    github.rate_limit(primary=True, wait=30)
    with pytest.raises(GitHubUnavailable) as limited:
        await client.get(issue.number)
    assert limited.value.retry_after is not None and 0 < limited.value.retry_after <= 30
    github.rate_limit(primary=False, wait=7, status=429)
    with pytest.raises(GitHubUnavailable) as secondary:
        await client.get(issue.number)
    assert secondary.value.retry_after == 7
    github.fail(503)
    with pytest.raises(GitHubUnavailable, match="503"):
        await client.get(issue.number)
    assert (await client.get(issue.number)).state == "open"
