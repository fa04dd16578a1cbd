"""Record the audit chain's signed head outside the database (a Temporal Schedule runs it)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from kruxt.activities.audit_anchor import WORKFLOW_NAME, AuditAnchorActivities


@workflow.defn(name=WORKFLOW_NAME)
class AuditAnchorWorkflow:
    """One anchor: the activity appends the head; the anchored row's id is the result."""

    @workflow.run
    async def run(self) -> int:
        return await workflow.execute_activity_method(
            AuditAnchorActivities.anchor_audit_head,
            start_to_close_timeout=timedelta(minutes=1),
            # Bounded: the next scheduled run anchors again anyway.
            retry_policy=RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(seconds=30)),
        )
