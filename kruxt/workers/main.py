"""``kruxt worker``: build the adapters from settings, run a worker until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta
from typing import Any

import asyncpg

from kruxt.activities.audit_anchor import ensure_schedule
from kruxt.activities.notifications import EmailApprovals
from kruxt.adapters.app_db import SUPPORT_ROLE, KruxtApp
from kruxt.adapters.llm_reply import OpenAIReplyWriter
from kruxt.adapters.llm_triage import OpenAITriager, build_openai_client
from kruxt.adapters.postgres import audit
from kruxt.adapters.postgres.knowledge import index_knowledge
from kruxt.adapters.postgres.pool import create_pool
from kruxt.adapters.prompts import load_prompt
from kruxt.adapters.settings import Settings
from kruxt.agents.knowledge import ReplyGuard
from kruxt.bootstrap import (
    approvers_from,
    escalation_from,
    incident_ack_tokens_from,
    incident_slack_from,
    link_tokens_from,
    mailer_from,
    slack_from,
    temporal_from,
    token_store,
)
from kruxt.workers.composition import Outside, build_worker

log = logging.getLogger(__name__)

TRIAGE_PROMPT_VERSION = "v1"
REPLY_PROMPT_VERSION = "v1"


def build_llm(settings: Settings) -> tuple[OpenAITriager | None, OpenAIReplyWriter | None]:
    """The LLM triager and reply writer when OPENAI_API_KEY is set; else neither."""
    if settings.openai_api_key is None:
        log.info("OPENAI_API_KEY unset: the rules triager and article templates answer")
        return None, None
    client = build_openai_client(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url,
        timeout_s=settings.llm_timeout_s,
    )
    triage_prompt = load_prompt("triage", TRIAGE_PROMPT_VERSION, settings.prompts_dir)
    reply_prompt = load_prompt("reply", REPLY_PROMPT_VERSION, settings.prompts_dir)
    reply_model = settings.reply_model or settings.triage_model
    log.info("LLM triage with %s, replies with %s", settings.triage_model, reply_model)
    return (
        OpenAITriager(client, model=settings.triage_model, prompt=triage_prompt),
        OpenAIReplyWriter(
            client, model=reply_model, prompt=reply_prompt, guard=reply_guard_from(settings)
        ),
    )


def reply_guard_from(settings: Settings) -> ReplyGuard:
    """The reply guard of KRUXT_HELP_DOMAINS (validated when the settings were read)."""
    return ReplyGuard.from_setting(settings.help_domains)


async def connect_app(settings: Settings) -> asyncpg.Pool[Any] | None:
    """A pool on the KRUXT app database whose sessions act as the support role only."""
    if settings.app_database_url is None:
        log.info("APP_DATABASE_URL unset: playbooks and account context are unavailable")
        return None
    return await create_pool(
        settings.app_database_url.get_secret_value(), max_size=5, role=SUPPORT_ROLE
    )


async def run_worker(settings: Settings) -> None:
    """Connect, register everything and poll the task queue until told to stop."""
    # Fail at startup, not at the first audit entry, when the audit key is missing.
    audit.use_keyring(settings.require_audit_keyring())
    client = await temporal_from(settings)
    pool = await create_pool(settings.require_database_url(), max_size=settings.db_pool_max)
    app_pool = await connect_app(settings)
    try:
        synced = await index_knowledge(pool, settings.knowledge_dir)
        log.info("knowledge index: %s", synced)
        triager, writer = build_llm(settings)
        tokens = link_tokens_from(settings)
        if tokens is None:
            log.warning("KRUXT_LINK_SECRET unset: approval requests are not e-mailed")
        outside = Outside(
            triager=triager,
            reply_writer=writer,
            reply_guard=reply_guard_from(settings),
            app=KruxtApp(app_pool) if app_pool else None,
            approvers=approvers_from(settings),
            slack=slack_from(settings),
            email=EmailApprovals(
                mailer=mailer_from(settings),
                tokens=tokens,
                token_store=token_store(pool),
                public_url=settings.public_url,
            )
            if tokens is not None
            else None,
            incident_slack=incident_slack_from(settings),
            mailer=mailer_from(settings),
            escalation=escalation_from(settings),
            public_url=settings.public_url,
            incident_window=timedelta(minutes=settings.incident_window_minutes),
            incident_ack_tokens=incident_ack_tokens_from(settings),
            audit_anchor_file=settings.audit_anchors_path,
        )
        worker = build_worker(client, task_queue=settings.task_queue, pool=pool, outside=outside)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with worker:
            if await ensure_schedule(
                client,
                task_queue=settings.task_queue,
                every=timedelta(minutes=settings.audit_anchor_minutes),
            ):
                log.info("audit anchors: every %d min", settings.audit_anchor_minutes)
            log.info(
                "worker polling task queue %s on %s", settings.task_queue, settings.temporal_address
            )
            await stop.wait()
            log.info("worker stopping: finishing the tasks in hand")
    finally:
        await pool.close()
        if app_pool is not None:
            await app_pool.close()
