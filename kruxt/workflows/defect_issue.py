"""DefectIssueWorkflow: the one writer of a product defect's GitHub issue.

Workflow id ``defect-<digest of the fingerprint>`` (``defect_workflow_id``); every resolution
of the defect stores its occurrence, then signals-with-start this workflow.
Only one run per id is open at a time, so two resolutions of one defect at once file one issue:
the first sync creates it and stores its number, the next finds the number and comments.
The workflow syncs until no report is waiting, then completes; the next report starts a new run.

A sync that GitHub refuses (or that finds GitHub down for all its attempts) ends the run; the
activity has told a person (audit + log) and the occurrences stay unposted in the database,
so the defect's next report files them all.

Before a sync that may file the issue, the LLM (when configured) drafts prevention notes if no
resolver gave any; a few attempts, then the triage's recommended action is the draft instead.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from kruxt.activities.github_issues import GITHUB_MAX_ATTEMPTS, GitHubIssueActivities
    from kruxt.models.defects import (
        DefectIssueInput,
        DefectIssueOutcome,
        DefectReport,
        DefectReported,
        DefectSync,
        PreventionDraft,
    )
    from kruxt.workflows.failures import failure_reason
    from kruxt.workflows.policies import (
        LLM_DEADLINE,
        LLM_RETRY,
        LLM_TIMEOUT,
        NON_RETRYABLE,
        db_activity,
    )

__all__ = [
    "DRAFTS_PREVENTION",
    "FILES_DEFECT_ISSUES",
    "GITHUB_RETRY",
    "GITHUB_TIMEOUT",
    "SOLVED_TICKETS_REPORT_DEFECTS",
    "DefectIssueWorkflow",
    "report_defect",
]

# workflow.patched: a resolution whose cause is a product defect reports it (ticket, incident).
FILES_DEFECT_ISSUES = "files-defect-issues"
# workflow.patched: a ticket the customer's side solves (confirmed, assumed) reports it too.
SOLVED_TICKETS_REPORT_DEFECTS = "solved-tickets-report-defects"
# workflow.patched: the LLM drafts prevention notes before the issue is filed (draft_prevention).
DRAFTS_PREVENTION = "defect-drafts-prevention"

# GitHub calls: a sync makes at most four; a rate limit's Retry-After sets the next wait.
GITHUB_TIMEOUT = timedelta(seconds=60)
GITHUB_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=GITHUB_MAX_ATTEMPTS,
    non_retryable_error_types=[*NON_RETRYABLE, "GitHubRefused"],
)


async def report_defect(report: DefectReport) -> None:
    """From a resolving workflow: store the defect's occurrence and wake its issue's workflow
    (which runs on its own: the resolution does not wait for GitHub)."""
    await db_activity(
        GitHubIssueActivities.report_defect,
        report,
        "Report the product defect",
    )


@workflow.defn
class DefectIssueWorkflow:
    """Sync one defect's issue until no report waits."""

    @workflow.init
    def __init__(self, inp: DefectIssueInput) -> None:
        # A run always syncs once: it was started for a report (or continued with some).
        self._dirty = True

    @workflow.signal
    def reported(self, news: DefectReported) -> None:
        """A resolution of this defect was stored: sync again."""
        self._dirty = True

    @workflow.run
    async def run(self, inp: DefectIssueInput) -> DefectIssueOutcome:
        """Sync, and sync again while reports arrive; returns the issue as it stands."""
        outcome = DefectIssueOutcome(fingerprint=inp.fingerprint)
        while self._dirty:
            self._dirty = False
            draft = ""
            if outcome.issue_number is None and workflow.patched(DRAFTS_PREVENTION):
                draft = await _draft_prevention(inp.fingerprint)
            try:
                result = await workflow.execute_activity_method(
                    GitHubIssueActivities.sync_defect_issue,
                    DefectSync(fingerprint=inp.fingerprint, prevention_draft=draft),
                    start_to_close_timeout=GITHUB_TIMEOUT,
                    retry_policy=GITHUB_RETRY,
                    summary="Sync the defect's GitHub issue",
                )
            except ActivityError as err:
                # Told (audit + log) by the activity; the occurrences wait in the database.
                outcome.failed = failure_reason(err)
                break
            outcome.syncs += 1
            outcome.issue_number = result.issue_number or outcome.issue_number
            if not self._dirty:
                await workflow.wait_condition(workflow.all_handlers_finished)
            if self._dirty and workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(inp)
        return outcome


async def _draft_prevention(fingerprint: str) -> str:
    """The LLM's prevention notes, or "" (not needed, not configured, or failed: then the
    triage's recommended action is filed as the draft, as without an LLM)."""
    try:
        draft: PreventionDraft = await workflow.execute_activity_method(
            GitHubIssueActivities.draft_prevention,
            DefectSync(fingerprint=fingerprint),
            start_to_close_timeout=LLM_TIMEOUT,
            schedule_to_close_timeout=LLM_DEADLINE,
            retry_policy=LLM_RETRY,
            summary="Draft prevention notes",
        )
    except ActivityError as err:
        workflow.logger.warning("prevention notes not drafted: %s", failure_reason(err))
        return ""
    return draft.text
