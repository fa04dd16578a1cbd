"""Task priority by severity: a ticket's activities after triage carry its severity's key."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from kruxt.models.enums import Priority, TicketStatus
from kruxt.workers.composition import build_worker
from tests.support import intake, start_ticket, until_status

OUTAGE = {
    "subject": "Nobody at our gym can log in",
    "body": "Since 7am none of our members can log in, everyone gets an error. Whole gym down.",
}
QUESTION = {
    "subject": "Where is my data export?",
    "body": "I requested a data export of my account last week, what is the status?",
}


async def _scheduled_keys(handle: WorkflowHandle[Any, Any]) -> dict[str, set[int]]:
    """Each scheduled activity type, with the priority keys it was scheduled with (0: none)."""
    keys: dict[str, set[int]] = {}
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            keys.setdefault(attrs.activity_type.name, set()).add(attrs.priority.priority_key)
    return keys


@pytest.mark.parametrize(
    ("text", "severity", "settles_at", "after_triage"),
    [
        (OUTAGE, Priority.P1, TicketStatus.AWAITING_HUMAN, "open_or_join_incident"),
        (QUESTION, Priority.P4, TicketStatus.AWAITING_CUSTOMER, "send_customer_message"),
    ],
)
async def test_activities_after_triage_carry_the_severity(
    dev_client: Client,
    pool: asyncpg.Pool[Any],
    task_queue: str,
    text: dict[str, str],
    severity: Priority,
    settles_at: TicketStatus,
    after_triage: str,
) -> None:
    async with build_worker(dev_client, task_queue=task_queue, pool=pool):
        handle = await start_ticket(
            dev_client, intake(subject=text["subject"], body=text["body"]), task_queue=task_queue
        )
        state = await until_status(handle, settles_at)
    assert state.priority is severity
    keys = await _scheduled_keys(handle)
    expected = int(severity.value[1])
    # Before triage the severity is unknown: the default priority.
    assert keys["persist_ticket"] == {0}
    assert keys["record_triage"] == {0}
    assert keys[after_triage] == {expected}
    assert keys["change_status"] == {expected}
