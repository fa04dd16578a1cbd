"""An approver's click to the first playbook step started: p50 and p99.

The click is the e-mail link's POST (``/approvals/email/{token}``) as the approver's browser
sends it, served by the API in this process (httpx's ASGI transport: no socket, so what is
timed is the app's work). The link comes from the approval mail the real worker wrote to a
dev outbox. The end is the ``run_step`` activity's start as Temporal recorded it, read from
the history afterwards, so the polling that finds it adds nothing to the figure.
"""

from __future__ import annotations

import re
import secrets
import shutil
import tempfile
import uuid
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from bench.scale import locked_ticket
from bench.stack import Stack, on_own_stack, percentile, start_ticket, until, verdict
from kruxt.activities.notifications import EmailApprovals
from kruxt.adapters import event_loop
from kruxt.adapters.approvers import Approver, ApproverDirectory
from kruxt.adapters.email import OutboxMailer
from kruxt.adapters.email_tokens import ApprovalTokens
from kruxt.adapters.postgres.approvals import ApprovalStore
from kruxt.adapters.postgres.email_tokens import EmailTokenStore
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.models.approvals import ApprovalRequest
from kruxt.models.enums import TicketStatus
from kruxt.models.playbooks import ApproverRole
from kruxt.models.tickets import RoutingPolicy, TicketState
from kruxt.starter.api.app import ApiDeps, create_app
from kruxt.starter.api.email_routes import EmailContext
from kruxt.starter.approvals import ApprovalService
from kruxt.starter.intake import IntakeService
from kruxt.workers.composition import Outside, build_worker
from kruxt.workflows.ticket import TicketWorkflow

P50_GOAL_MS = 300.0
FOUNDER = "founder@kruxt.app"
APPROVERS = ApproverDirectory([Approver(name="Founder", email=FOUNDER, roles=list(ApproverRole))])
APPROVE = re.compile(r"Approve: (\S+/approvals/email/(\S+))")


def approve_token(outbox: Path, tokens: ApprovalTokens, approval_id: uuid.UUID) -> str | None:
    """The approve link's token for ``approval_id``, once its mail arrived (whole)."""
    for path in sorted(outbox.glob("*.eml")):
        mail = message_from_bytes(path.read_bytes(), policy=policy.default)
        body = mail.get_body(preferencelist=("plain",))
        found = APPROVE.search(body.get_content() if body is not None else "")
        if found:  # else another mail, or one still being written
            token = found.group(2)
            if tokens.verify(token, now=datetime.now(UTC)).approval_id == approval_id:
                return token
    return None


async def step_started_at(handle: WorkflowHandle[Any, Any]) -> datetime | None:
    """When the first ``run_step`` started, once Temporal recorded it."""
    scheduled: set[int] = set()
    for event in (await handle.fetch_history()).events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == "run_step":
                scheduled.add(event.event_id)
        elif (
            event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
            and event.activity_task_started_event_attributes.scheduled_event_id in scheduled
        ):
            return event.event_time.ToDatetime().replace(tzinfo=UTC)
    return None


async def until_awaiting(handle: WorkflowHandle[Any, Any]) -> TicketState:
    """The ticket's state once its plan waits for an approver."""
    states: list[TicketState] = []

    async def awaiting() -> bool:
        state: TicketState = await handle.query(TicketWorkflow.state)
        states[:] = [state]
        return state.status is TicketStatus.AWAITING_APPROVAL

    await until(awaiting, timeout=120)
    return states[0]


async def click_once(
    stack: Stack, http: httpx.AsyncClient, queue: str, outbox: Path, tokens: ApprovalTokens
) -> float:
    """Open a locked account's ticket, click its approve link; seconds to the first step."""
    handle = await start_ticket(stack.client, locked_ticket(), queue)
    state = await until_awaiting(handle)
    approval_id = state.approvals[-1].request.approval_id
    token: list[str] = []

    async def mailed() -> bool:
        found = approve_token(outbox, tokens, approval_id)
        if found:
            token.append(found)
        return bool(token)

    await until(mailed, timeout=120)
    clicked = datetime.now(UTC)
    r = await http.post(f"/approvals/email/{token[0]}")
    if r.status_code != 200:
        raise RuntimeError(f"the click answered {r.status_code}: {r.text[:300]}")
    started: list[datetime] = []

    async def stepped() -> bool:
        at = await step_started_at(handle)
        if at is not None:
            started.append(at)
        return at is not None

    await until(stepped, timeout=120)
    return (started[0] - clicked).total_seconds()


async def measure(stack: Stack, n: int) -> str:
    """Click n approvals one after another; the report line."""
    queue = f"bench-click-{uuid.uuid4().hex[:8]}"
    outbox = Path(tempfile.mkdtemp(prefix="kx-bench-outbox-"))
    tokens = ApprovalTokens(secrets.token_bytes(32))
    token_store = EmailTokenStore(stack.pool)
    email = EmailApprovals(
        mailer=OutboxMailer(outbox, sender="autopilot@kruxt.app"),
        tokens=tokens,
        token_store=token_store,
        public_url="http://api",
    )
    approval_store = ApprovalStore(stack.pool)

    async def load_request(approval_id: uuid.UUID) -> ApprovalRequest | None:
        found = await approval_store.get(approval_id)
        return found[0] if found else None

    deps = ApiDeps(
        intake=IntakeService(stack.client, task_queue=queue, policy=RoutingPolicy()),
        tickets=TicketStore(stack.pool),
        intake_token="unused",
        health_checks={},
        email=EmailContext(
            tokens=tokens,
            store=token_store,
            load_request=load_request,
            decider=ApprovalService(stack.client, approvers=APPROVERS, store=approval_store),
            load_standing=approval_store.standing,
        ),
    )
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(deps)), base_url="http://api"
    )
    outside = Outside(app=stack.app, approvers=APPROVERS, email=email)
    latencies: list[float] = []
    try:
        async with build_worker(stack.client, task_queue=queue, pool=stack.pool, outside=outside):
            for _ in range(n + 1):  # the first is a warm-up
                # The last click's plan unlocked the demo account: lock it again, as it was.
                await stack.pool.execute(
                    "UPDATE kruxt_app.users SET locked_until = now() + interval '30 minutes', "
                    "failed_logins = 7 WHERE id = 'u-locked'"
                )
                latencies.append(await click_once(stack, http, queue, outbox, tokens))
    finally:
        await http.aclose()
        shutil.rmtree(outbox, ignore_errors=True)
    p50, p99 = percentile(latencies[1:], 50) * 1e3, percentile(latencies[1:], 99) * 1e3
    return (
        f"approval click (e-mail POST) to first playbook step started, {n} clicks: "
        f"p50 {p50:,.0f} ms, p99 {p99:,.0f} ms; goal p50 < {P50_GOAL_MS:.0f} ms "
        f"{verdict(p50 < P50_GOAL_MS)}"
    )


async def run(n: int = 50) -> str:
    """The click bench on a stack of its own."""
    return await on_own_stack(measure, n)


if __name__ == "__main__":
    print(event_loop.run(run(10)))
