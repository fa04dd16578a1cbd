"""``kruxt worker``: run a worker until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

from kruxt.adapters.llm_triage import OpenAITriager, build_openai_client
from kruxt.adapters.postgres.pool import create_pool
from kruxt.adapters.prompts import load_prompt
from kruxt.adapters.settings import Settings
from kruxt.adapters.temporal_client import connect
from kruxt.workers.composition import build_worker

log = logging.getLogger(__name__)

TRIAGE_PROMPT_VERSION = "v1"


def build_triager(settings: Settings) -> OpenAITriager | None:
    """The LLM triager when OPENAI_API_KEY is set; None leaves the rules triager in charge."""
    if settings.openai_api_key is None:
        log.info("OPENAI_API_KEY unset: triage uses the rules triager")
        return None
    client = build_openai_client(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url,
        timeout_s=settings.llm_timeout_s,
    )
    prompt = load_prompt("triage", TRIAGE_PROMPT_VERSION, settings.prompts_dir)
    log.info("LLM triage with %s (%s)", settings.triage_model, prompt.ref)
    return OpenAITriager(client, model=settings.triage_model, prompt=prompt)


async def run_worker(settings: Settings) -> None:
    """Connect, register everything and poll the task queue until told to stop."""
    client = await connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        tls=settings.temporal_tls,
        api_key=settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None,
    )
    pool = await create_pool(settings.require_database_url(), max_size=settings.db_pool_max)
    try:
        worker = build_worker(
            client,
            task_queue=settings.task_queue,
            pool=pool,
            knowledge_dir=settings.knowledge_dir,
            triager=build_triager(settings),
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with worker:
            log.info(
                "worker polling task queue %s on %s", settings.task_queue, settings.temporal_address
            )
            await stop.wait()
            log.info("worker stopping: finishing the tasks in hand")
    finally:
        await pool.close()
