"""The composition root: adapters built once, handed to the activity classes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from kruxt.activities.approvals import ApprovalActivities
from kruxt.activities.context import ContextActivities
from kruxt.activities.knowledge import KnowledgeActivities
from kruxt.activities.llm_triage import LlmTriageActivities
from kruxt.activities.notifications import EmailApprovals, NotificationActivities
from kruxt.activities.playbooks.activities import PlaybookActivities
from kruxt.activities.tickets import TicketActivities
from kruxt.activities.triage import TriageActivities
from kruxt.adapters.app_db import KruxtApp
from kruxt.adapters.approvers import ApproverDirectory
from kruxt.adapters.llm_reply import OpenAIReplyWriter
from kruxt.adapters.llm_triage import OpenAITriager
from kruxt.adapters.postgres.approvals import ApprovalStore
from kruxt.adapters.postgres.automation_runs import AutomationRunStore
from kruxt.adapters.postgres.knowledge import KnowledgeIndex
from kruxt.adapters.postgres.playbook_runs import PlaybookRunStore
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.adapters.slack import SlackApprovals
from kruxt.workflows.ticket import TicketWorkflow

WORKFLOWS: Sequence[type] = (TicketWorkflow,)

# Pydantic validates e-mail addresses inside workflow code by importing these lazily; they are
# deterministic and side-effect free, so they are shared with the sandbox instead of re-imported.
SANDBOX_PASSTHROUGH = ("email_validator", "idna")


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox every worker (and the replay tests) runs the workflows in."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*SANDBOX_PASSTHROUGH)
    )


@dataclass
class Outside:
    """The optional outside world: the LLM, the KRUXT app, approvers, Slack, e-mail."""

    triager: OpenAITriager | None = None
    reply_writer: OpenAIReplyWriter | None = None
    app: KruxtApp | None = None
    approvers: ApproverDirectory = field(default_factory=lambda: ApproverDirectory([]))
    slack: SlackApprovals | None = None
    email: EmailApprovals | None = None


def build_activities(
    *,
    pool: asyncpg.Pool[Any],
    triager: OpenAITriager | None = None,
    reply_writer: OpenAIReplyWriter | None = None,
    app: KruxtApp | None = None,
    outside: Outside | None = None,
) -> list[Callable[..., Any]]:
    """Every activity of the project, bound to its adapters.

    Optional adapters (the LLM, the KRUXT app) left out mean the features that need them
    answer "not configured", and the workflows take their fallback paths.
    """
    out = outside or Outside(triager=triager, reply_writer=reply_writer, app=app)
    triager, reply_writer, app = out.triager, out.reply_writer, out.app
    store = TicketStore(pool)
    tickets = TicketActivities(store)
    context = ContextActivities(store, app)
    rules = TriageActivities()
    llm = LlmTriageActivities(triager)
    knowledge = KnowledgeActivities(
        index=KnowledgeIndex(pool), runs=AutomationRunStore(pool), writer=reply_writer
    )
    approval_store = ApprovalStore(pool)
    approvals = ApprovalActivities(approval_store)
    notifications = NotificationActivities(
        approvals=approval_store, approvers=out.approvers, slack=out.slack, email=out.email
    )
    playbooks = PlaybookActivities(app, PlaybookRunStore(pool))
    return [
        tickets.persist_ticket,
        tickets.record_triage,
        tickets.record_inbound_message,
        tickets.send_customer_message,
        tickets.attach_draft,
        tickets.change_status,
        context.gather_context,
        rules.triage_with_rules,
        llm.triage_with_llm,
        knowledge.draft_reply,
        knowledge.draft_acknowledgement,
        approvals.record_approval,
        notifications.notify_approvers,
        notifications.close_approval_messages,
        playbooks.plan_playbook,
        playbooks.check_preconditions,
        playbooks.run_step,
        playbooks.compensate_step,
        playbooks.record_run,
    ]


def build_worker(
    client: Client,
    *,
    task_queue: str,
    pool: asyncpg.Pool[Any],
    triager: OpenAITriager | None = None,
    reply_writer: OpenAIReplyWriter | None = None,
    app: KruxtApp | None = None,
    outside: Outside | None = None,
    max_concurrent_activities: int = 50,
) -> Worker:
    """A worker for the task queue with all workflows and activities registered."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=build_activities(
            pool=pool, triager=triager, reply_writer=reply_writer, app=app, outside=outside
        ),
        max_concurrent_activities=max_concurrent_activities,
        workflow_runner=workflow_runner(),
    )
