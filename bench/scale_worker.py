"""The worker the scale bench measures, in a process of its own so its RSS is its alone:
``python -m bench.scale_worker`` with BENCH_DSN, BENCH_TEMPORAL, BENCH_QUEUE, BENCH_CACHE,
KRUXT_PAYLOAD_KEY and KRUXT_AUDIT_KEY in the environment. Runs until SIGTERM.

Optional, to compare worker settings: BENCH_WF_SLOTS (workflow-task slots),
BENCH_STICKY_FIRST (1: the sticky-first slots of ``kruxt.workers.slots``; or their
``quiet,max_wait`` seconds), BENCH_WF_POLLS and BENCH_STICKY_RATIO (workflow pollers, the share
on the normal queue), BENCH_METRICS_PORT (the SDK's Prometheus metrics on 127.0.0.1),
BENCH_SLOTS_LOG (a file the sticky-first slots' counts are appended to every 5 s),
BENCH_CORE_LOG (the SDK core's log level on stderr, e.g. DEBUG; unset: WARN)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Mapping
from typing import Any

from temporalio.runtime import (
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.worker import CustomSlotSupplier, FixedSizeSlotSupplier

from kruxt.adapters import event_loop
from kruxt.adapters.app_db import SUPPORT_ROLE, KruxtApp
from kruxt.adapters.approvers import Approver, ApproverDirectory
from kruxt.adapters.payload_codec import EncryptionCodec
from kruxt.adapters.postgres import audit
from kruxt.adapters.postgres.pool import create_pool
from kruxt.adapters.temporal_client import connect
from kruxt.models.playbooks import ApproverRole
from kruxt.workers.composition import (
    WORKFLOW_SLOTS,
    Outside,
    build_worker,
    workflow_slot_supplier,
)
from kruxt.workers.slots import StickyFirstSlots
from kruxt.workers.watchdog import exit_when_wedged, supervise

# Who the plans wait on: nobody decides during the bench.
APPROVERS = ApproverDirectory(
    [Approver(name="Founder", email="founder@kruxt.app", roles=[ApproverRole.ADMIN])]
)


async def main() -> None:
    env = os.environ
    # Standard output tells the bench "ready" and nothing else: core's console log (which
    # writes to fd 1) goes to standard error with the rest of the log.
    ready = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    audit.use_keyring(audit.AuditKeyring.of(env["KRUXT_AUDIT_KEY"]))
    pool = await create_pool(env["BENCH_DSN"], max_size=10)
    app_pool = await create_pool(env["BENCH_DSN"], max_size=3, role=SUPPORT_ROLE)
    if "BENCH_METRICS_PORT" in env or "BENCH_CORE_LOG" in env:
        Runtime.set_default(Runtime(telemetry=telemetry(env)))
    codec = EncryptionCodec.from_settings_text(env["KRUXT_PAYLOAD_KEY"])
    client = await connect(env["BENCH_TEMPORAL"], payload_codec=codec)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    async def run_one(identity: str, done: asyncio.Event) -> None:
        slots = workflow_slots(env)
        worker = build_worker(
            client,
            identity=identity,
            task_queue=env["BENCH_QUEUE"],
            pool=pool,
            outside=Outside(app=KruxtApp(app_pool), approvers=APPROVERS),
            max_cached_workflows=int(env["BENCH_CACHE"]),
            workflow_slots=slots,
            **pollers(env),
        )
        async with worker:
            print("ready", file=ready, flush=True)
            logging = None
            if "BENCH_SLOTS_LOG" in env and isinstance(slots, StickyFirstSlots):
                logging = asyncio.create_task(log_slots(slots, env["BENCH_SLOTS_LOG"]))
            await done.wait()
            if logging is not None:
                logging.cancel()

    # Supervised, as ``kruxt worker`` runs it: a wedged worker ends the process (code 3) and
    # the bench starts another.
    await exit_when_wedged(supervise(run_one, client, env["BENCH_QUEUE"], stop))
    await app_pool.close()
    await pool.close()


async def log_slots(slots: StickyFirstSlots, path: str) -> None:
    """Every 5 s, a line of the slots reserved and the sticky ones busy (a stall's evidence)."""
    with await asyncio.to_thread(open, path, "a", 1) as out:
        while True:
            reserved, sticky = slots.counts()
            out.write(f"{time.strftime('%H:%M:%S')} reserved={reserved} sticky_busy={sticky}\n")
            await asyncio.sleep(5)


def telemetry(env: Mapping[str, str]) -> TelemetryConfig:
    """The SDK runtime's telemetry: Prometheus metrics on BENCH_METRICS_PORT, core's log at
    BENCH_CORE_LOG."""
    metrics = None
    if "BENCH_METRICS_PORT" in env:
        metrics = PrometheusConfig(bind_address=f"127.0.0.1:{env['BENCH_METRICS_PORT']}")
    level = env.get("BENCH_CORE_LOG", "WARN")
    levels = TelemetryFilter(core_level=level, other_level="WARN")
    return TelemetryConfig(metrics=metrics, logging=LoggingConfig(filter=levels))


def workflow_slots(env: Mapping[str, str]) -> FixedSizeSlotSupplier | CustomSlotSupplier:
    """BENCH_WF_SLOTS slots (100): the SDK's first come, first served unless
    BENCH_STICKY_FIRST is set (1: the defaults; else its ``quiet,max_wait`` seconds)."""
    slots = int(env.get("BENCH_WF_SLOTS", str(WORKFLOW_SLOTS)))
    first = env.get("BENCH_STICKY_FIRST", "0")
    if first in ("0", "1"):
        return workflow_slot_supplier("sdk" if first == "0" else "sticky-first", slots)
    quiet, max_wait = (float(part) for part in first.split(","))
    return StickyFirstSlots(slots, quiet=quiet, max_wait=max_wait)


def pollers(env: Mapping[str, str]) -> dict[str, Any]:
    """The workflow-poller settings the environment asks for (none: the SDK's defaults)."""
    options: dict[str, Any] = {}
    if "BENCH_WF_POLLS" in env:
        options["max_concurrent_workflow_task_polls"] = int(env["BENCH_WF_POLLS"])
    if "BENCH_STICKY_RATIO" in env:
        options["nonsticky_to_sticky_poll_ratio"] = float(env["BENCH_STICKY_RATIO"])
    return options


if __name__ == "__main__":
    event_loop.run(main())
