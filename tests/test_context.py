"""Account context and recent activity for the Triage agent; a missing app never blocks it."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from temporalio.testing import ActivityEnvironment

from kruxt.activities.context import ContextActivities
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.models.context import AccountContextStatus, ContextInput
from kruxt.models.triage import TriageOutcome, TriageResult
from tests.support import intake


class App:
    """A KRUXT app with one account (a test double of the read-only lookup)."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.asked: list[str] = []

    async def account_context(self, *, user_id: str) -> dict[str, Any] | None:
        self.asked.append(user_id)
        if self.fail:
            raise ConnectionRefusedError("app database down")
        return {"plan": "pro", "platform": "ios"} if user_id == "u-1" else None


async def gather(pool: asyncpg.Pool[Any], app: App | None, account: str | None) -> Any:
    acts = ContextActivities(TicketStore(pool), app)
    return await ActivityEnvironment().run(
        acts.gather_context, ContextInput(ticket_id=uuid.uuid4(), account_id=account)
    )


async def test_account_context_states(pool: asyncpg.Pool[Any]) -> None:
    found = await gather(pool, App(), "u-1")
    assert found.account_status is AccountContextStatus.AVAILABLE
    assert found.account == {"plan": "pro", "platform": "ios"}
    assert (await gather(pool, App(), "u-404")).account_status is (
        AccountContextStatus.UNKNOWN_ACCOUNT
    )
    assert (await gather(pool, App(), None)).account_status is AccountContextStatus.NO_ACCOUNT_ID
    down = await gather(pool, App(fail=True), "u-1")
    assert down.account_status is AccountContextStatus.APP_UNAVAILABLE
    assert "app database down" in down.note
    none = await gather(pool, None, "u-1")
    assert none.account_status is AccountContextStatus.APP_UNAVAILABLE


async def test_recent_urgent_tickets_and_category_counts(pool: asyncpg.Pool[Any]) -> None:
    store = TicketStore(pool)
    for i, (sev, cat) in enumerate(
        [("P1", "auth_login"), ("P3", "auth_login"), ("P2", "billing_invoice")]
    ):
        t = intake(subject=f"t{i}")
        await store.persist_ticket(intake=t, workflow_id=f"w{i}", idempotency_key=f"k{i}")
        result = TriageResult(
            summary="s",
            severity=sev,
            category=cat,
            playbook=cat,
            probable_root_cause="r",
            recommended_action="a",
            confidence=0.9,
        )
        outcome = TriageOutcome(result=result, model="rules", prompt_version="v", input_digest="d")
        await store.record_triage(ticket_id=t.ticket_id, outcome=outcome, idempotency_key=f"tr{i}")
    context = await gather(pool, None, None)
    assert context.tickets_last_24h_by_category == {"auth_login": 2, "billing_invoice": 1}
    assert [t.priority for t in context.open_urgent_tickets] == ["P1", "P2"]
    text = context.render()
    assert "auth_login=2" in text
    assert "open urgent ticket: P1 auth_login" in text
