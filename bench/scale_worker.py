"""The worker the scale bench measures, in a process of its own so its RSS is its alone:
``python -m bench.scale_worker`` with BENCH_DSN, BENCH_TEMPORAL, BENCH_QUEUE, BENCH_CACHE,
KRUXT_PAYLOAD_KEY and KRUXT_AUDIT_KEY in the environment. Runs until SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal

from kruxt.adapters.app_db import SUPPORT_ROLE, KruxtApp
from kruxt.adapters.approvers import Approver, ApproverDirectory
from kruxt.adapters.payload_codec import EncryptionCodec
from kruxt.adapters.postgres import audit
from kruxt.adapters.postgres.pool import create_pool
from kruxt.adapters.temporal_client import connect
from kruxt.models.playbooks import ApproverRole
from kruxt.workers.composition import Outside, build_worker

# Who the plans wait on: nobody decides during the bench.
APPROVERS = ApproverDirectory(
    [Approver(name="Founder", email="founder@kruxt.app", roles=[ApproverRole.ADMIN])]
)


async def main() -> None:
    env = os.environ
    audit.use_keyring(audit.AuditKeyring.of(env["KRUXT_AUDIT_KEY"]))
    pool = await create_pool(env["BENCH_DSN"], max_size=10)
    app_pool = await create_pool(env["BENCH_DSN"], max_size=3, role=SUPPORT_ROLE)
    codec = EncryptionCodec.from_settings_text(env["KRUXT_PAYLOAD_KEY"])
    client = await connect(env["BENCH_TEMPORAL"], payload_codec=codec)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    worker = build_worker(
        client,
        task_queue=env["BENCH_QUEUE"],
        pool=pool,
        outside=Outside(app=KruxtApp(app_pool), approvers=APPROVERS),
        max_cached_workflows=int(env["BENCH_CACHE"]),
    )
    async with worker:
        print("ready", flush=True)
        await stop.wait()
    await app_pool.close()
    await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
