"""The Temporal Schedule that anchors the audit chain's head outside the database."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.client import Client, ScheduleOverlapPolicy

from kruxt.activities.audit_anchor import ensure_schedule, schedule_id
from kruxt.adapters.postgres import audit
from kruxt.workers.composition import Outside, build_worker


async def _anchors(path: Path, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    for _ in range(int(timeout / 0.2)):
        if path.is_file() and len(lines := path.read_text().splitlines()) >= count:
            return [json.loads(line) for line in lines]
        await asyncio.sleep(0.2)
    raise AssertionError(f"{path} did not get {count} anchors in {timeout}s")


async def test_the_schedule_anchors_the_head_and_is_created_once(
    dev_client: Client, pool: asyncpg.Pool[Any], task_queue: str, tmp_path: Path
) -> None:
    async with pool.acquire() as conn:
        for i in range(3):
            await audit.append(
                conn, actor="t", action="x", ticket_id=uuid.uuid4(), details={"i": i}
            )
        head_id, head_hash = await audit.chain_head(conn)
    anchors = tmp_path / "anchors" / "audit_anchors.jsonl"
    worker = build_worker(
        dev_client, task_queue=task_queue, pool=pool, outside=Outside(audit_anchor_file=anchors)
    )
    async with worker:
        every = timedelta(hours=1)
        try:
            assert await ensure_schedule(dev_client, task_queue=task_queue, every=every)
            assert not await ensure_schedule(dev_client, task_queue=task_queue, every=every)
            # Triggered at creation: the first anchor does not wait an interval.
            [first] = await _anchors(anchors, 1)
            handle = dev_client.get_schedule_handle(schedule_id(task_queue))
            # The first run may still be finishing after its line is written: the schedule's
            # own policy (SKIP) would drop a trigger made meanwhile; BUFFER_ONE runs it next.
            await handle.trigger(overlap=ScheduleOverlapPolicy.BUFFER_ONE)
            second = (await _anchors(anchors, 2))[1]
        finally:
            await dev_client.get_schedule_handle(schedule_id(task_queue)).delete()
    assert (first["id"], first["hash"]) == (head_id, head_hash)
    assert (second["id"], second["hash"]) == (head_id, head_hash)
    async with pool.acquire() as conn:
        result = await audit.verify_anchors(conn, anchors)
    assert result.intact and result.rows_checked == 2
