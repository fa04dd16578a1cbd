"""The worker's wiring: the adapters ``kruxt.bootstrap`` built, handed to the activity classes.

``Outside`` (the optional outside world) is declared in ``kruxt.bootstrap`` and re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

import asyncpg
from temporalio.client import Client
from temporalio.worker import CustomSlotSupplier, FixedSizeSlotSupplier, Worker, WorkerTuner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from kruxt.activities.approvals import ApprovalActivities
from kruxt.activities.audit_anchor import AuditAnchorActivities
from kruxt.activities.context import ContextActivities
from kruxt.activities.github_issues import GitHubIssueActivities
from kruxt.activities.incidents import IncidentActivities
from kruxt.activities.knowledge import KnowledgeActivities
from kruxt.activities.lifecycle import LifecycleActivities
from kruxt.activities.llm_triage import LlmTriageActivities
from kruxt.activities.notifications import NotificationActivities
from kruxt.activities.playbooks.activities import PlaybookActivities
from kruxt.activities.sla import SlaActivities
from kruxt.activities.tickets import TicketActivities
from kruxt.activities.triage import TriageActivities
from kruxt.activities.weekly_review import WeeklyReviewActivities
from kruxt.adapters.channels import ChannelRegistry, InAppChannel
from kruxt.adapters.postgres.approvals import ApprovalStore
from kruxt.adapters.postgres.automation_runs import AutomationRunStore
from kruxt.adapters.postgres.defects import DefectStore
from kruxt.adapters.postgres.incidents import IncidentStore, SlaEventStore
from kruxt.adapters.postgres.knowledge import KnowledgeIndex
from kruxt.adapters.postgres.playbook_runs import PlaybookRunStore
from kruxt.adapters.postgres.reviews import ReviewStore
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.bootstrap import Outside
from kruxt.workers.bytecode import cache_workflow_bytecode
from kruxt.workers.slots import StickyFirstSlots
from kruxt.workflows.audit_anchor import AuditAnchorWorkflow
from kruxt.workflows.defect_issue import DefectIssueWorkflow
from kruxt.workflows.incident import IncidentWorkflow
from kruxt.workflows.ticket import TicketWorkflow
from kruxt.workflows.ticket_priority import TaskPriorityInterceptor
from kruxt.workflows.weekly_review import WeeklyReviewWorkflow

__all__ = [
    "SANDBOX_PASSTHROUGH",
    "WORKFLOWS",
    "WORKFLOW_SLOTS",
    "ExecutorWorker",
    "Outside",
    "activity_executor",
    "build_activities",
    "build_worker",
    "weekly_review_activities",
    "worker_tuner",
    "workflow_runner",
    "workflow_slot_supplier",
]

WORKFLOWS: Sequence[type] = (
    TicketWorkflow,
    IncidentWorkflow,
    AuditAnchorWorkflow,
    DefectIssueWorkflow,
    WeeklyReviewWorkflow,
)

# Workflow tasks at once: the SDK's default number of workflow-task slots.
WORKFLOW_SLOTS = 100

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
    outside: Outside | None = None,
    executor: Executor | None = None,
) -> list[Callable[..., Any]]:
    """Every activity of the project, bound to its adapters.

    Optional adapters (the LLM, the KRUXT app) left out mean the features that need them
    answer "not configured", and the workflows take their fallback paths. ``executor`` is the
    worker's ``activity_executor``: the knowledge drafting runs its CPU work there too.
    """
    out = outside or Outside()
    app = out.app
    store = TicketStore(pool)
    # The composition root decides where answers go: a ticket's own thread, or the channel
    # it came by when that one is connected (Zendesk, Intercom: bootstrap builds them).
    tickets = TicketActivities(
        store,
        ChannelRegistry.thread_only(InAppChannel(store), out.channels),
        confirm_links=out.confirm_links,
    )
    context = ContextActivities(store, app)
    rules = TriageActivities()
    llm = LlmTriageActivities(out.triager)
    knowledge = KnowledgeActivities(
        index=KnowledgeIndex(pool),
        runs=AutomationRunStore(pool),
        writer=out.reply_writer,
        guard=out.reply_guard,
        executor=executor,
    )
    approval_store = ApprovalStore(pool)
    approvals = ApprovalActivities(approval_store)
    notifications = NotificationActivities(
        approvals=approval_store, approvers=out.approvers, chat=out.slack, email=out.email
    )
    playbooks = PlaybookActivities(app, PlaybookRunStore(pool))
    incidents = IncidentActivities(
        IncidentStore(pool),
        chat=out.incident_slack,
        mailer=out.mailer,
        public_url=out.public_url,
        policy=out.escalation,
        window=out.incident_window,
        cluster=out.incident_cluster,
        ack_tokens=out.incident_ack_tokens,
    )
    sla = SlaActivities(
        SlaEventStore(pool),
        chat=out.incident_slack,
        mailer=out.mailer,
        policy=out.escalation,
        public_url=out.public_url,
    )
    defects = GitHubIssueActivities(DefectStore(pool), out.github, out.prevention_drafter)
    review = weekly_review_activities(pool, out)
    anchors = (
        [AuditAnchorActivities(pool, out.audit_anchor_file).anchor_audit_head]
        if out.audit_anchor_file is not None
        else []
    )
    return [
        *anchors,
        tickets.persist_ticket,
        tickets.record_triage,
        tickets.record_inbound_message,
        tickets.send_customer_message,
        tickets.attach_draft,
        tickets.assign,
        tickets.change_priority,
        tickets.change_status,
        context.gather_context,
        rules.triage_with_rules,
        llm.triage_with_llm,
        knowledge.draft_reply,
        knowledge.draft_acknowledgement,
        approvals.record_approval,
        notifications.resolve_directory,
        notifications.notify_approvers,
        notifications.close_approval_messages,
        playbooks.plan_playbook,
        playbooks.check_preconditions,
        playbooks.run_step,
        playbooks.compensate_step,
        playbooks.record_run,
        incidents.open_or_join_incident,
        incidents.page_level,
        incidents.record_incident_event,
        incidents.set_incident_status,
        incidents.post_timeline,
        incidents.tell_incident_tickets,
        sla.notify_sla,
        sla.record_sla_met,
        defects.report_defect,
        defects.draft_prevention,
        defects.sync_defect_issue,
        LifecycleActivities(pool).record_lifecycle,
        review.build_weekly_review,
        review.deliver_weekly_review,
    ]


def weekly_review_activities(pool: asyncpg.Pool[Any], out: Outside) -> WeeklyReviewActivities:
    """The weekly review's activities, bound to the outside world the worker was given."""
    return WeeklyReviewActivities(
        ReviewStore(pool),
        time_zone=out.time_zone,
        sample_size=out.review_sample,
        public_url=out.public_url,
        reviewers=out.approvers,
        chat=out.review_chat,
        mailer=out.mailer,
        tokens=out.grade_tokens,
    )


class ExecutorWorker(Worker):
    """A worker that owns its ``activity_executor`` and shuts it down when it stops."""

    def __init__(self, *args: Any, activity_executor: ThreadPoolExecutor, **kwargs: Any) -> None:
        super().__init__(*args, activity_executor=activity_executor, **kwargs)
        self._executor = activity_executor

    async def run(self) -> None:
        """Poll until shut down, then let the executor's threads finish and exit."""
        try:
            await super().run()
        finally:
            # Sync activities still running after the graceful timeout cannot be interrupted;
            # waiting for them here would block the event loop.
            self._executor.shutdown(wait=False, cancel_futures=True)


def activity_executor(max_workers: int) -> ThreadPoolExecutor:
    """The thread pool synchronous (CPU-bound) activities run on, off the event loop."""
    return ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="kruxt-activity")


def workflow_slot_supplier(
    kind: str, slots: int = WORKFLOW_SLOTS
) -> FixedSizeSlotSupplier | CustomSlotSupplier:
    """``slots`` workflow-task slots as ``KRUXT_WORKFLOW_SLOTS`` names them: ``sdk`` (first
    come, first served) or ``sticky-first`` (``kruxt.workers.slots``)."""
    if kind == "sticky-first":
        return StickyFirstSlots(slots)
    if kind == "sdk":
        return FixedSizeSlotSupplier(slots)
    raise ValueError(f"no such workflow slot supplier: {kind!r} (sdk, sticky-first)")


def worker_tuner(
    max_concurrent_activities: int,
    workflow_slots: FixedSizeSlotSupplier | CustomSlotSupplier | None = None,
) -> WorkerTuner:
    """The slots of a worker: ``workflow_slots`` (by default the SDK's 100, first come first
    served) and ``max_concurrent_activities`` activity slots."""
    return WorkerTuner.create_composite(
        workflow_supplier=workflow_slots or workflow_slot_supplier("sdk"),
        activity_supplier=FixedSizeSlotSupplier(max_concurrent_activities),
        # The SDK's defaults: the project runs no local activities or Nexus operations.
        local_activity_supplier=FixedSizeSlotSupplier(100),
        nexus_supplier=FixedSizeSlotSupplier(100),
    )


def build_worker(
    client: Client,
    *,
    task_queue: str,
    pool: asyncpg.Pool[Any],
    outside: Outside | None = None,
    max_concurrent_activities: int = 50,
    max_cached_workflows: int = 1000,
    workflow_slots: FixedSizeSlotSupplier | CustomSlotSupplier | None = None,
    **options: Any,
) -> ExecutorWorker:
    """A worker for the task queue with all workflows and activities registered.

    ``max_cached_workflows`` bounds the workflows kept in memory between their tasks (the
    SDK's default, 1000, is kept); an evicted one is replayed from its history when it wakes.

    Its thread pool has one thread per activity slot, as the SDK expects: a sync activity
    never waits for a thread once it has a slot (its timeout would run while it waited).

    ``workflow_slots`` hands out the workflow-task slots: by default the SDK's 100, first come
    first served (``workflow_slot_supplier`` also makes the sticky-first ones).
    ``options`` go to the SDK's ``Worker`` as they are (its identity, the bench's pollers).

    The workflows' modules get their bytecode written first (``kruxt.workers.bytecode``): the
    sandbox imports them again for every run.
    """
    cache_workflow_bytecode(WORKFLOWS)
    executor = activity_executor(max_concurrent_activities)
    return ExecutorWorker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=build_activities(pool=pool, outside=outside, executor=executor),
        activity_executor=executor,
        tuner=worker_tuner(max_concurrent_activities, workflow_slots),
        max_cached_workflows=max_cached_workflows,
        workflow_runner=workflow_runner(),
        interceptors=[TaskPriorityInterceptor()],
        **options,
    )
