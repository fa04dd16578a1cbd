"""Engineering issues for product defects: record each resolution, file or update its issue.

``report_defect`` stores the resolution under its defect's fingerprint and signals-with-start
the defect's DefectIssueWorkflow, the one writer of its issue; ``sync_defect_issue`` (run by
that workflow only) brings the issue up to date with the occurrences it has not shown yet:
it creates the issue, comments on it, or reopens it ("regressed"). Our database maps the
fingerprint to the issue number; GitHub search is never asked. Each write is found again on a
retry whose first answer was lost: the issue by the fingerprint marker of its body, a comment
by the occurrence marker it ends with.

``draft_prevention`` (before an issue is filed, when no resolver gave prevention notes) asks
the LLM, when configured, for notes; the issue shows them as a draft nobody reviewed.

Without GitHub configured nothing is sent: the audit records what would have been filed, and
the occurrences wait, unposted, for the first sync once it is configured.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError

from kruxt.activities._data_errors import bad_data_is_final
from kruxt.activities._keys import activity_key
from kruxt.adapters.github_client import GitHubIssues, GitHubRefused, GitHubUnavailable, Issue
from kruxt.adapters.llm_prevention import OpenAIPreventionDrafter
from kruxt.adapters.llm_triage import LlmError, LlmRateLimited
from kruxt.adapters.postgres.defects import DefectStore, Occurrence, StoredDefect
from kruxt.models.defects import (
    ISSUE_LABEL,
    REGRESSED_LABEL,
    DefectIssueInput,
    DefectReport,
    DefectReported,
    DefectSource,
    DefectSync,
    DefectSyncResult,
    PreventionDraft,
    defect_workflow_id,
    marked_occurrences,
    marker,
    occurrence_marker,
    redact_personal,
)

__all__ = [
    "DEFECT_REPORTED_SIGNAL",
    "DEFECT_WORKFLOW",
    "GITHUB_MAX_ATTEMPTS",
    "GitHubIssueActivities",
    "issue_body",
]

log = logging.getLogger(__name__)

# Started by name: activities do not import workflows.
DEFECT_WORKFLOW = "DefectIssueWorkflow"
DEFECT_REPORTED_SIGNAL = "reported"
# GitHub down or rate-limited this many times in a row: the sync gives up, a person is told
# (audit + log) and the occurrences stay unposted for the defect's next report.
GITHUB_MAX_ATTEMPTS = 8
_TITLE_MAX = 120


@dataclass(frozen=True)
class GitHubIssueActivities:
    """The defect store, and the repository's issues when GitHub is configured (else None);
    the LLM that drafts prevention notes when configured (else None)."""

    store: DefectStore
    github: GitHubIssues | None
    drafter: OpenAIPreventionDrafter | None = None

    @activity.defn
    @bad_data_is_final
    async def report_defect(self, report: DefectReport) -> None:
        """Record the resolution under its defect and wake the defect's workflow."""
        added = await self.store.record(report)
        log.info(
            "defect %s: %s %s recorded (new: %s)",
            report.fingerprint,
            report.source.value,
            report.source_id,
            added,
        )
        await activity.client().start_workflow(
            DEFECT_WORKFLOW,
            DefectIssueInput(fingerprint=report.fingerprint),
            id=defect_workflow_id(report.fingerprint),
            task_queue=activity.info().task_queue,
            # One run at a time per defect: a running one gets the signal, else a new run.
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            start_signal=DEFECT_REPORTED_SIGNAL,
            start_signal_args=[DefectReported(source_id=report.source_id)],
            static_summary=f"Defect issue ({report.category.value}, {report.severity.value})",
        )

    @activity.defn
    async def draft_prevention(self, inp: DefectSync) -> PreventionDraft:
        """The LLM's prevention notes for a defect about to be filed with none given; empty
        when not needed (filed already, notes given, GitHub or the LLM not configured).

        Raises:
            ApplicationError: typed as the LLM error (the retry policy knows which are final);
                the workflow then files the triage's recommended action as the draft.
        """
        if self.drafter is None or self.github is None:
            return PreventionDraft()
        defect = await self.store.get(inp.fingerprint)
        if defect is None or defect.issue_number is not None:
            return PreventionDraft()
        if any(o.prevention for o in defect.occurrences):
            return PreventionDraft()
        try:
            drafted = await self.drafter.draft(
                category=defect.category,
                severity=defect.severity,
                root_cause=redact_personal(defect.root_cause),
                summaries=[redact_personal(o.summary) for o in defect.occurrences],
            )
        except LlmError as exc:
            log.warning("prevention notes not drafted for %s: %s", inp.fingerprint, exc)
            wait = exc.retry_after if isinstance(exc, LlmRateLimited) else None
            delay = timedelta(seconds=wait) if wait is not None else None
            kind = type(exc).__name__  # LLM_RETRY lists the final ones
            raise ApplicationError(str(exc), type=kind, next_retry_delay=delay) from None
        await self.store.audit_event(
            inp.fingerprint,
            action="defect.prevention_drafted",
            details={
                "model": drafted.model,
                "prompt_version": drafted.prompt_version,
                "input_digest": drafted.input_digest,
            },
            idempotency_key=activity_key(),
        )
        return PreventionDraft(text=drafted.notes)

    @activity.defn
    async def sync_defect_issue(self, inp: DefectSync) -> DefectSyncResult:
        """File the defect's issue, or tell it of the occurrences it has not shown yet."""
        defect = await self.store.get(inp.fingerprint)
        if defect is None or not defect.pending:
            return DefectSyncResult(action="nothing", issue_number=defect and defect.issue_number)
        count = len(defect.occurrences)
        if self.github is None:
            await self.store.audit_event(
                inp.fingerprint,
                action="defect.issue_would_create"
                if defect.issue_number is None
                else "defect.issue_would_comment",
                details={"title": issue_title(defect), "occurrences": count},
                idempotency_key=activity_key(),
            )
            log.info("GitHub not configured: would file defect %s (%d)", inp.fingerprint, count)
            return DefectSyncResult(action="would_create", occurrences=count)
        try:
            issue, action = await self._update_issue(self.github, defect, inp.prevention_draft)
        except GitHubRefused as exc:
            await self._give_up(defect, str(exc))
            raise ApplicationError(str(exc), type="GitHubRefused", non_retryable=True) from None
        except GitHubUnavailable as exc:
            last = activity.info().attempt >= GITHUB_MAX_ATTEMPTS
            if last:
                await self._give_up(defect, str(exc))
            wait = exc.retry_after
            raise ApplicationError(
                str(exc),
                type="GitHubUnavailable",
                non_retryable=last,
                next_retry_delay=timedelta(seconds=wait) if wait is not None else None,
            ) from None
        await self.store.issue_synced(
            inp.fingerprint,
            number=issue.number,
            url=issue.url,
            state=issue.state,
            posted=[o.source_id for o in defect.pending],
            action=action,
            idempotency_key=activity_key(),
        )
        return DefectSyncResult(action=action, issue_number=issue.number, occurrences=count)

    async def _update_issue(
        self, github: GitHubIssues, defect: StoredDefect, llm_draft: str
    ) -> tuple[Issue, str]:
        if defect.issue_number is None:
            found = None
            if activity.info().attempt > 1:
                # An earlier attempt may have created it and failed before storing its number.
                found = await github.find_marked(ISSUE_LABEL, marker(defect.fingerprint))
            if found is not None:
                return found, "recovered"
            body = issue_body(defect, llm_draft=llm_draft)
            issue = await github.create(title=issue_title(defect), body=body, labels=[ISSUE_LABEL])
            return issue, "created"
        issue = await github.get(defect.issue_number)
        fresh = defect.pending
        if activity.info().attempt > 1:
            # An earlier attempt may have commented and failed before marking them posted.
            shown = marked_occurrences(await github.recent_comments(issue))
            fresh = [o for o in fresh if str(o.source_id) not in shown]
        regressed = issue.state == "closed"
        if regressed:
            issue = await github.reopen(defect.issue_number)
            await github.add_labels(defect.issue_number, [REGRESSED_LABEL])
        if fresh:
            comment = recurrence_comment(defect, fresh, regressed=regressed)
            await github.comment(defect.issue_number, comment)
        return issue, "reopened" if regressed else "commented"

    async def _give_up(self, defect: StoredDefect, reason: str) -> None:
        """A person is told: the audit names the defect and why; nothing is marked posted."""
        log.error("defect issue %s not updated on GitHub: %s", defect.fingerprint, reason)
        await self.store.audit_event(
            defect.fingerprint,
            action="defect.issue_failed",
            details={"reason": reason, "pending": len(defect.pending)},
            idempotency_key=activity_key("failed"),
        )


def issue_title(defect: StoredDefect) -> str:
    """``[P2] workout_log_submit: <root cause>``, short and redacted."""
    title = f"[{defect.severity}] {defect.category}: {redact_personal(defect.root_cause)}"
    return title if len(title) <= _TITLE_MAX else title[: _TITLE_MAX - 1] + "…"


def _line(o: Occurrence) -> str:
    return f"- {o.source.value} `{o.source_id}` ({o.at:%Y-%m-%d}): {redact_personal(o.summary)}"


def _prevention(defect: StoredDefect, llm_draft: str) -> str:
    given = [o.prevention for o in defect.occurrences if o.prevention]
    if given:
        return "\n".join(f"- {redact_personal(p)}" for p in given)
    if llm_draft:
        return f"_Draft by the LLM, not reviewed:_\n{_redacted_lines(llm_draft)}"
    drafts = [o.prevention_draft for o in defect.occurrences if o.prevention_draft]
    if drafts:
        return f"_Draft, not reviewed by the resolver:_ {redact_personal(drafts[-1])}"
    return "_None given yet._"


def _redacted_lines(text: str) -> str:
    """``text`` redacted line by line (a draft's list stays a list)."""
    return "\n".join(redact_personal(line) for line in text.splitlines() if line.strip())


def _counts(defect: StoredDefect) -> str:
    tickets = sum(o.source is DefectSource.TICKET for o in defect.occurrences)
    return f"{len(defect.occurrences)} resolution(s): {tickets} ticket(s), " + (
        f"{len(defect.occurrences) - tickets} incident(s)"
    )


def issue_body(defect: StoredDefect, *, llm_draft: str = "") -> str:
    """The issue's body: cause, prevention (the resolvers', else ``llm_draft``, else the
    triage's recommended action: drafts marked so), severity, counts and the tickets (ids and
    redacted summaries only), with the hidden fingerprint marker."""
    return "\n".join(
        [
            f"**Probable root cause:** {redact_personal(defect.root_cause)}",
            f"**Severity:** {defect.severity} · **Category:** {defect.category} · "
            f"**Component:** {defect.component}",
            f"**Seen:** {_counts(defect)}",
            "",
            "### Prevention",
            _prevention(defect, llm_draft),
            "",
            "### Tickets and incidents",
            *(_line(o) for o in defect.occurrences),
            "",
            "_Filed by the KRUXT support autopilot: ids and summaries only, no customer data._",
            marker(defect.fingerprint),
        ]
    )


def recurrence_comment(defect: StoredDefect, news: list[Occurrence], *, regressed: bool) -> str:
    """The comment a recurrence adds: the new tickets (``news``) and the count so far, with
    the hidden marker naming them."""
    head = (
        "**Regressed:** this defect came back after the issue was closed."
        if regressed
        else "**Seen again.**"
    )
    lines = [head, *(_line(o) for o in news)]
    lines += [f"- prevention: {redact_personal(o.prevention)}" for o in news if o.prevention]
    mark = occurrence_marker([o.source_id for o in news])
    return "\n".join([*lines, "", f"**Seen:** {_counts(defect)}", mark])
