"""Stand-ins for saga tests: a plan of chosen steps, the real worker with some activities
replaced by fakes of the same name (the way Temporal's own samples replace one), and that
worker in a subprocess that kills itself (tests/crash_worker.py, tests/test_faults_worker_kills.py).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from typing import Any

import asyncpg
from temporalio.client import Client
from temporalio.worker import Worker

from kruxt.adapters.app_db import SUPPORT_ROLE, KruxtApp
from kruxt.adapters.approvers import ApproverDirectory
from kruxt.adapters.payload_codec import EncryptionCodec
from kruxt.adapters.postgres.pool import create_pool
from kruxt.adapters.settings import PROJECT_ROOT
from kruxt.adapters.temporal_client import connect
from kruxt.models.enums import RiskTier
from kruxt.models.playbooks import (
    ApproverRole,
    PlannedStep,
    PlanOutcome,
    PlanRequest,
    PlaybookPlan,
    Precondition,
)
from kruxt.workers.composition import Outside, activity_executor, build_activities, workflow_runner
from kruxt.workflows.ticket import TicketWorkflow
from tests.scenarios import APPROVERS

# The activities a stand-in replaces, by activity name.
StandIns = Mapping[str, Callable[..., Any]]


def stand_in_plan(
    req: PlanRequest,
    playbook: str,
    steps: list[PlannedStep],
    preconditions: list[Precondition],
    *,
    explain: str,
    tell: str,
) -> PlanOutcome:
    """A low-risk plan of ``steps`` for any approver; the technical and rollback texts name
    the steps' actions and compensations."""
    actions = ", ".join(dict.fromkeys(s.action for s in steps))
    undos = ", ".join(dict.fromkeys(s.compensation for s in steps if s.compensation))
    return PlanOutcome(
        plan=PlaybookPlan(
            plan_id=req.plan_id,
            ticket_id=req.ticket_id,
            playbook=playbook,
            risk=RiskTier.LOW,
            touches=list(dict.fromkeys(t for s in steps for t in s.touches)),
            approver_role=ApproverRole.APPROVER,
            diagnosis={},
            steps=steps,
            preconditions=preconditions,
            plain_explanation=explain,
            technical_explanation=f"kruxt_admin.{actions}",
            rollback_plan=undos,
            customer_update=tell,
        )
    )


def worker_with_stand_ins(
    client: Client,
    *,
    task_queue: str,
    pool: asyncpg.Pool[Any],
    app: KruxtApp,
    stand_ins: StandIns,
    executor: Executor,
    approvers: ApproverDirectory = APPROVERS,
    **options: Any,
) -> Worker:
    """The real ticket worker, each activity named in ``stand_ins`` replaced by its fake."""
    real = build_activities(pool=pool, outside=Outside(app=app, approvers=approvers))
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[TicketWorkflow],
        activities=[
            *(a for a in real if getattr(a, "__name__", "") not in stand_ins),
            *stand_ins.values(),
        ],
        activity_executor=executor,
        workflow_runner=workflow_runner(),
        **options,
    )


async def poll_with_stand_ins(
    who: str,
    argv: list[str],
    stand_ins: Callable[[asyncpg.Pool[Any], KruxtApp], StandIns],
    *,
    pool_size: int = 2,
    **options: Any,
) -> None:
    """The worker of a subprocess started by ``spawn_worker`` (``argv``: the Temporal address,
    the DSN, the task queue): says it is polling, then polls until it dies."""
    address, dsn, task_queue = argv
    # The test's client encrypts with the run's key (tests/conftest.py), inherited here.
    codec = EncryptionCodec.from_settings_text(os.environ["KRUXT_PAYLOAD_KEY"])
    client = await connect(address, payload_codec=codec)
    pool = await create_pool(dsn, max_size=pool_size)
    app = KruxtApp(await create_pool(dsn, max_size=2, role=SUPPORT_ROLE))
    worker = worker_with_stand_ins(
        client,
        task_queue=task_queue,
        pool=pool,
        app=app,
        stand_ins=stand_ins(pool, app),
        executor=activity_executor(8),
        **options,
    )
    print(f"{who}: polling", flush=True)
    await worker.run()


async def spawn_worker(module: str, *args: str) -> asyncio.subprocess.Process:
    """``python -m module ARGS...`` from the project root, once it says it is polling."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *args, cwd=PROJECT_ROOT, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    assert b"polling" in await asyncio.wait_for(proc.stdout.readline(), 60)
    return proc
