"""``kruxt worker``: bootstrap the adapters from settings, run a worker until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta

from kruxt.activities.audit_anchor import ensure_schedule
from kruxt.adapters.metrics import serve_metrics
from kruxt.adapters.postgres import audit
from kruxt.adapters.postgres.knowledge import index_knowledge
from kruxt.adapters.settings import Settings
from kruxt.bootstrap import bootstrap
from kruxt.workers.composition import build_worker, workflow_slot_supplier
from kruxt.workers.watchdog import exit_when_wedged, supervise

log = logging.getLogger(__name__)


async def run_worker(settings: Settings) -> None:
    """Connect, register everything and poll the task queue until told to stop."""
    # Fail at startup, not at the first audit entry, when the audit key is missing.
    audit.use_keyring(settings.require_audit_keyring())
    # Before the first client connects: the SDK's runtime is chosen then.
    serve_metrics(settings.metrics_port, settings.temporal_metrics_port)
    boot = await bootstrap(settings, worker=True)
    try:
        synced = await index_knowledge(boot.pool, settings.knowledge_dir)
        log.info("knowledge index: %s", synced)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        async def run_one(identity: str, done: asyncio.Event) -> None:
            worker = build_worker(
                boot.client,
                identity=identity,
                task_queue=settings.task_queue,
                pool=boot.pool,
                outside=boot.outside,
                max_cached_workflows=settings.max_cached_workflows,
                workflow_slots=workflow_slot_supplier(settings.workflow_slots),
            )
            async with worker:
                log.info(
                    "worker polling task queue %s on %s",
                    settings.task_queue,
                    settings.temporal_address,
                )
                await done.wait()
                log.info("worker stopping: finishing the tasks in hand")

        if await ensure_schedule(
            boot.client,
            task_queue=settings.task_queue,
            every=timedelta(minutes=settings.audit_anchor_minutes),
        ):
            log.info("audit anchors: every %d min", settings.audit_anchor_minutes)
        await exit_when_wedged(supervise(run_one, boot.client, settings.task_queue, stop))
    finally:
        await boot.close()
