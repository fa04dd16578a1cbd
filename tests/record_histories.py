"""Record workflow histories for the replay test:
``python -m tests.record_histories TAG [SCENARIO ...]`` (all scenarios when none is named).

Files are named ``<scenario>__<TAG>.json``, or ``<scenario>__<TAG>-<label>.json`` when a
scenario leaves several runs (a ticket and its incident; the runs of a continue-as-new
chain). Keep the old ones: every history ever recorded must still replay (a change to the
workflow goes behind ``workflow.patched``), and an existing file is never overwritten. Record
a new TAG when a workflow gains a new path, with a scenario for it in ``tests/scenarios.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from kruxt.adapters.app_db import SUPPORT_ROLE, KruxtApp, install_app_schema
from kruxt.adapters.embedded_postgres import EmbeddedPostgres, with_database
from kruxt.adapters.postgres import migrations
from kruxt.adapters.postgres.knowledge import index_knowledge
from kruxt.adapters.postgres.pool import connect, create_pool
from kruxt.workers.composition import Outside, build_worker
from tests.conftest import KNOWLEDGE, MIGRATIONS, register_search_attributes
from tests.scenarios import APPROVERS, OUTSIDE, SCENARIOS, Rig

OUT = Path(__file__).parent / "histories"


async def main(tag: str, names: list[str]) -> None:
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"no such scenario: {', '.join(sorted(unknown))}")
    chosen = {n: s for n, s in SCENARIOS.items() if not names or n in names}
    taken = [p.name for n in chosen for p in OUT.glob(f"{n}__{tag}*.json")]
    if taken:
        raise SystemExit(f"already recorded, pick another TAG: {', '.join(taken)}")
    root = Path(tempfile.mkdtemp(prefix="kx-rec-"))
    server = EmbeddedPostgres(root / "pg")
    dsn = with_database(server.start(), "postgres")
    try:
        conn = await connect(dsn)
        await migrations.apply(conn, MIGRATIONS)
        await install_app_schema(conn, with_demo_data=True)
        await conn.close()
        pool = await create_pool(dsn)
        await index_knowledge(pool, KNOWLEDGE)
        app_pool = await create_pool(dsn, role=SUPPORT_ROLE)
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
            data_converter=pydantic_data_converter,
        )
        await register_search_attributes(env.client)
        outside = Outside(app=KruxtApp(app_pool), approvers=APPROVERS)
        queue = f"record-{uuid.uuid4().hex[:8]}"
        # One worker for all: an incident one scenario opens may be joined by a later one.
        async with build_worker(env.client, task_queue=queue, pool=pool, outside=outside):
            for name, scenario in chosen.items():
                changes = OUTSIDE.get(name)
                if changes is None:
                    recorded = await scenario(Rig(env=env, queue=queue, pool=pool))
                else:  # its own worker beside the shared one, with its outside world
                    own = f"{queue}-{name}"
                    async with build_worker(
                        env.client,
                        task_queue=own,
                        pool=pool,
                        outside=dataclasses.replace(outside, **changes),
                    ):
                        recorded = await scenario(Rig(env=env, queue=own, pool=pool))
                for label, handle in recorded.items():
                    history = await handle.fetch_history()
                    path = OUT / f"{name}__{tag}{'-' + label if label else ''}.json"
                    path.write_text(history.to_json())
                    print(f"recorded {path.name}: {len(history.events)} events")
        await env.shutdown()
        await pool.close()
        await app_pool.close()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m tests.record_histories TAG [SCENARIO ...]")
    asyncio.run(main(sys.argv[1], sys.argv[2:]))
