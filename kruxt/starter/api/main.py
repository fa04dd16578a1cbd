"""``kruxt api``: bootstrap the adapters, build the API's services on them, serve with uvicorn."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import uvicorn
from fastapi import FastAPI

from kruxt.adapters.payload_codec import EncryptionCodec
from kruxt.adapters.postgres.approvals import ApprovalStore
from kruxt.adapters.postgres.console_sessions import ConsoleSessionStore
from kruxt.adapters.postgres.incidents import IncidentStore
from kruxt.adapters.postgres.reviews import ReviewStore
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.adapters.settings import ConfigurationError, Settings, is_loopback_host
from kruxt.adapters.telemetry import uvicorn_log_config
from kruxt.bootstrap import (
    Bootstrapped,
    bootstrap,
    confirm_tokens_from,
    mailer_from,
    payload_codec_from,
)
from kruxt.models.approvals import ApprovalRequest
from kruxt.starter.api.app import ApiDeps, create_app
from kruxt.starter.api.codec_routes import CodecContext, parse_origins
from kruxt.starter.api.confirm_routes import ConfirmContext
from kruxt.starter.api.email_routes import EmailContext
from kruxt.starter.api.grade_routes import GradeContext
from kruxt.starter.api.incident_routes import IncidentAckContext
from kruxt.starter.api.slack_routes import SlackContext
from kruxt.starter.approvals import ApprovalService
from kruxt.starter.console.actions import ConsoleActions
from kruxt.starter.console.auth import ConsoleAuth, console_auth_from
from kruxt.starter.console.context import ConsoleContext
from kruxt.starter.console.queries import ConsoleQueries
from kruxt.starter.incidents import IncidentService, responders_of
from kruxt.starter.intake import IntakeService, routing_policy_from
from kruxt.starter.staff import StaffService


async def build_deps(settings: Settings, **overrides: Any) -> tuple[ApiDeps, Bootstrapped]:
    """Bootstrap (``overrides`` as :func:`kruxt.bootstrap.bootstrap` takes them) and build the
    API's services on it; return the deps and what to ``close()`` when the API stops."""
    token = settings.require_intake_token()
    codec = overrides.pop("codec", None) or payload_codec_from(settings)
    codec_ctx = codec_context_from(settings, codec)
    boot = await bootstrap(settings, codec=codec, **overrides)
    client, pool = boot.client, boot.pool

    async def postgres_ok() -> None:
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 1")

    async def temporal_ok() -> None:
        await client.service_client.check_health()

    approval_store = ApprovalStore(pool)
    service = ApprovalService(client, approvers=boot.approvers, store=approval_store)

    async def load_request(approval_id: uuid.UUID) -> ApprovalRequest | None:
        found = await approval_store.get(approval_id)
        return found[0] if found else None

    incident_store = IncidentStore(pool)
    incidents = IncidentService(
        client,
        store=incident_store,
        responders=responders_of(boot.escalation, boot.approvers),
    )

    async def load_incident_title(incident_id: uuid.UUID) -> str | None:
        record = await incident_store.get(incident_id)
        return f"[{record.priority.value}] {record.title}" if record is not None else None

    async def load_incident_ack(incident_id: uuid.UUID) -> tuple[str, datetime] | None:
        record = await incident_store.get(incident_id)
        if record is None or record.acknowledged_by is None or record.acknowledged_at is None:
            return None
        return record.acknowledged_by, record.acknowledged_at

    confirm = confirm_tokens_from(settings)
    deps = ApiDeps(
        intake=IntakeService(
            client,
            task_queue=settings.task_queue,
            policy=routing_policy_from(settings),
            sla=boot.sla,
        ),
        tickets=TicketStore(pool),
        intake_token=token,
        health_checks={"temporal": temporal_ok, "postgres": postgres_ok},
        slack=SlackContext(
            signing_secret=settings.slack_signing_secret.get_secret_value(),
            approvers=boot.approvers,
            decider=service,
            slack=boot.slack,
            audit_refusal=service.audit_slack_stranger,
            incidents=incidents,
            audit_incident_refusal=incident_store.record_refused_ack,
        )
        if boot.slack is not None and settings.slack_signing_secret is not None
        else None,
        email=EmailContext(
            tokens=boot.link_tokens,
            store=boot.token_store,
            load_request=load_request,
            decider=service,
            load_standing=approval_store.standing,
        )
        if boot.link_tokens is not None
        else None,
        incident_ack=IncidentAckContext(
            tokens=boot.incident_ack_tokens,
            acknowledger=incidents,
            load_title=load_incident_title,
            load_acknowledgement=load_incident_ack,
        )
        if boot.incident_ack_tokens is not None
        else None,
        confirm=ConfirmContext(tokens=confirm, client=client) if confirm is not None else None,
        codec=codec_ctx,
        grade=GradeContext(tokens=boot.outside.grade_tokens, store=ReviewStore(boot.pool))
        if boot.outside.grade_tokens is not None
        else None,
        zendesk=boot.zendesk,
        intercom=boot.intercom,
        console=console_of(settings, boot, approvals=service, incidents=incidents),
    )
    return deps, boot


def console_of(
    settings: Settings,
    boot: Bootstrapped,
    *,
    approvals: ApprovalService,
    incidents: IncidentService,
) -> ConsoleContext | None:
    """The staff console (None: off, without its sign-in): what it shows is read from the
    database and the workflows, what it does goes through the same services as Slack,
    e-mail and the CLI."""
    auth = console_auth_of(settings, boot)
    if auth is None:
        return None
    return ConsoleContext(
        auth=auth,
        queries=ConsoleQueries(boot.pool, boot.client, boot.sla),
        actions=ConsoleActions(
            approvals=approvals, staff=StaffService(boot.client), incidents=incidents
        ),
        public_url=settings.public_url,
    )


def console_auth_of(settings: Settings, boot: Bootstrapped) -> ConsoleAuth | None:
    """The staff console's sign-in (None: the console is off, no KRUXT_LINK_SECRET); its links
    are mailed by the API itself (the worker's mailer is the worker's)."""
    return console_auth_from(
        settings,
        ConsoleSessionStore(boot.pool),
        boot.approvers,
        boot.mailer or mailer_from(settings),
    )


def codec_context_from(settings: Settings, codec: EncryptionCodec) -> CodecContext | None:
    """The codec endpoint's access rules; ``None`` (the routes answer 404) when nobody may use
    it.

    Raises:
        ConfigurationError: the loopback allowance is on but the API listens beyond loopback.
    """
    token = settings.codec_token.get_secret_value() if settings.codec_token else None
    if settings.codec_allow_loopback and not is_loopback_host(settings.api_host):
        raise ConfigurationError(
            f"KRUXT_CODEC_ALLOW_LOOPBACK is on but KRUXT_API_HOST={settings.api_host} is not a "
            "loopback address: set KRUXT_CODEC_TOKEN instead"
        )
    if token is None and not settings.codec_allow_loopback:
        return None
    return CodecContext(
        codec=codec,
        token=token,
        allow_loopback=settings.codec_allow_loopback,
        cors_origins=parse_origins(settings.codec_cors_origins),
    )


def app_from_settings(settings: Settings) -> FastAPI:
    """An app whose dependencies are connected when it starts and closed when it stops."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        deps, boot = await build_deps(settings)
        app.state.deps = deps
        try:
            yield
        finally:
            if deps.slack is not None:
                await deps.slack.drain()  # decisions still being sent to workflows
            await boot.close()

    return create_app(lifespan=lifespan)


def uvicorn_config(app: FastAPI, settings: Settings) -> uvicorn.Config:
    """How the API is served: the settings' address, access lines with link tokens redacted."""
    return uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        log_config=uvicorn_log_config(),
        access_log=True,
    )


def run_api(settings: Settings) -> None:
    """Serve the API until SIGINT/SIGTERM."""
    uvicorn.Server(uvicorn_config(app_from_settings(settings), settings)).run()
