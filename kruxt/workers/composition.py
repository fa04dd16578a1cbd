"""The composition root: adapters built once, handed to the activity classes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from kruxt.activities.context import AccountDirectory, ContextActivities
from kruxt.activities.knowledge import KnowledgeActivities
from kruxt.activities.llm_triage import LlmTriageActivities
from kruxt.activities.tickets import TicketActivities
from kruxt.activities.triage import TriageActivities
from kruxt.adapters.llm_triage import OpenAITriager
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.agents.knowledge import load_articles
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


def build_activities(
    *,
    pool: asyncpg.Pool[Any],
    knowledge_dir: Path,
    triager: OpenAITriager | None = None,
    app: AccountDirectory | None = None,
) -> list[Callable[..., Any]]:
    """Every activity of the project, bound to its adapters.

    Optional adapters (the LLM, the KRUXT app) left out mean the features that need them
    answer "not configured", and the workflows take their fallback paths.
    """
    store = TicketStore(pool)
    tickets = TicketActivities(store)
    context = ContextActivities(store, app)
    rules = TriageActivities()
    llm = LlmTriageActivities(triager)
    knowledge = KnowledgeActivities(load_articles(knowledge_dir))
    return [
        tickets.persist_ticket,
        tickets.record_triage,
        tickets.record_inbound_message,
        tickets.send_customer_message,
        tickets.change_status,
        context.gather_context,
        rules.triage_with_rules,
        llm.triage_with_llm,
        knowledge.draft_reply,
        knowledge.draft_acknowledgement,
    ]


def build_worker(
    client: Client,
    *,
    task_queue: str,
    pool: asyncpg.Pool[Any],
    knowledge_dir: Path,
    triager: OpenAITriager | None = None,
    app: AccountDirectory | None = None,
    max_concurrent_activities: int = 50,
) -> Worker:
    """A worker for the task queue with all workflows and activities registered."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=build_activities(
            pool=pool, knowledge_dir=knowledge_dir, triager=triager, app=app
        ),
        max_concurrent_activities=max_concurrent_activities,
        workflow_runner=workflow_runner(),
    )
