"""The approval gate's side effects: recording requests and decisions (notifying approvers)."""

from __future__ import annotations

from temporalio import activity

from kruxt.activities._data_errors import bad_data_is_final
from kruxt.activities._keys import activity_key
from kruxt.adapters import metrics
from kruxt.adapters.postgres.approvals import ApprovalStore
from kruxt.models.approvals import ApprovalRecord


class ApprovalActivities:
    """Record approval requests and their decisions in ``support_approvals``."""

    def __init__(self, store: ApprovalStore) -> None:
        self._store = store

    @activity.defn
    @bad_data_is_final
    async def record_approval(self, record: ApprovalRecord) -> None:
        """Store a new request, or the decision on one, with its audit entry."""
        await self._store.record(record=record, idempotency_key=activity_key())
        metrics.approval_decided(record.status.value, record.request.requested_at)
