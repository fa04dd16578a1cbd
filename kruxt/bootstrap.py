"""Bootstrap: the optional outside services built from settings (approvers, Slack, e-mail).

Shared by the worker and the API, the two entrypoints that read settings. It sits below them:
it imports adapters and models, never ``starter`` or ``workers``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import asyncpg
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.client import Client

from kruxt.adapters.approvers import ApproverDirectory, load_approvers
from kruxt.adapters.email import Mailer, OutboxMailer, SendGridMailer
from kruxt.adapters.email_tokens import ApprovalTokens, IncidentAckTokens
from kruxt.adapters.payload_codec import EncryptionCodec, PayloadKeyError
from kruxt.adapters.postgres.email_tokens import EmailTokenStore
from kruxt.adapters.settings import ConfigurationError, Settings
from kruxt.adapters.slack import SlackApprovals
from kruxt.adapters.slack_incidents import SlackIncidents
from kruxt.adapters.temporal_client import connect
from kruxt.models.incidents import EscalationPolicy, parse_escalation_policy
from kruxt.models.sla import SlaTargets, parse_sla_targets

log = logging.getLogger(__name__)


def approvers_from(settings: Settings) -> ApproverDirectory:
    """The approvers directory (empty when none is configured)."""
    return load_approvers(file=settings.approvers_file, inline=settings.approvers)


def slack_from(settings: Settings) -> SlackApprovals | None:
    """Slack approvals when a bot token and an approval channel are configured."""
    if settings.slack_bot_token is None:
        return None
    if not settings.slack_approval_channel:
        raise ConfigurationError("SLACK_BOT_TOKEN is set but SLACK_APPROVAL_CHANNEL is not")
    kwargs: dict[str, Any] = {"token": settings.slack_bot_token.get_secret_value()}
    if settings.slack_api_url:
        kwargs["base_url"] = settings.slack_api_url
    return SlackApprovals(
        AsyncWebClient(**kwargs),
        channel=settings.slack_approval_channel,
        ticket_url=lambda ticket_id: f"{settings.public_url}/v1/tickets/{ticket_id}",
    )


def mailer_from(settings: Settings) -> Mailer:
    """SendGrid when a key is set; otherwise .eml files in $KRUXT_HOME/outbox."""
    if settings.sendgrid_api_key is not None:
        return SendGridMailer(
            settings.sendgrid_api_key.get_secret_value(),
            settings.email_from,
            host=settings.sendgrid_api_url,
        )
    outbox = settings.home / "outbox"
    outbox.mkdir(parents=True, exist_ok=True)
    log.info("SENDGRID_API_KEY unset: mail goes to %s", outbox)
    return OutboxMailer(outbox, sender=settings.email_from, announce=log.info)


def link_tokens_from(settings: Settings) -> ApprovalTokens | None:
    """The signer of e-mailed approval links, when a secret is configured."""
    if settings.link_secret is None:
        return None
    return ApprovalTokens(settings.link_secret.get_secret_value().encode())


def incident_ack_tokens_from(settings: Settings) -> IncidentAckTokens | None:
    """The signer of e-mailed incident "Acknowledge" links (the same secret, its own key)."""
    if settings.link_secret is None:
        return None
    return IncidentAckTokens(settings.link_secret.get_secret_value().encode())


def token_store(pool: asyncpg.Pool[Any]) -> EmailTokenStore:
    """Where issued links are remembered (single use)."""
    return EmailTokenStore(pool)


def load_escalation_policy(*, inline: str | None, file: Path | None) -> EscalationPolicy:
    """The policy from ``KRUXT_ESCALATION_POLICY`` (inline) or ``_FILE``; else the dev default.

    Raises:
        ConfigurationError: the file is missing, or the policy is invalid.
    """
    try:
        if inline:
            return parse_escalation_policy(inline, source="KRUXT_ESCALATION_POLICY")
        if file is not None:
            if not file.is_file():
                raise ConfigurationError(f"KRUXT_ESCALATION_POLICY_FILE {file} does not exist")
            return parse_escalation_policy(file.read_text(), source=str(file))
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc
    return parse_escalation_policy(None)


def escalation_from(settings: Settings) -> EscalationPolicy:
    """The on-call escalation policy of the settings."""
    return load_escalation_policy(
        inline=settings.escalation_policy, file=settings.escalation_policy_file
    )


def incident_slack_from(settings: Settings) -> SlackIncidents | None:
    """Incident pages and SLA alerts in Slack (incident channel, else the approval one)."""
    if settings.slack_bot_token is None:
        return None
    channel = settings.slack_incident_channel or settings.slack_approval_channel
    if not channel:
        raise ConfigurationError("SLACK_BOT_TOKEN is set but no SLACK_INCIDENT_CHANNEL")
    kwargs: dict[str, Any] = {"token": settings.slack_bot_token.get_secret_value()}
    if settings.slack_api_url:
        kwargs["base_url"] = settings.slack_api_url
    return SlackIncidents(
        AsyncWebClient(**kwargs),
        incident_channel=channel,
        warning_channel=settings.slack_approval_channel,
        ticket_url=lambda ticket_id: f"{settings.public_url}/v1/tickets/{ticket_id}",
    )


def sla_targets_from(settings: Settings) -> SlaTargets:
    """The SLA targets of the settings (DESIGN.md's table by default)."""
    try:
        return parse_sla_targets(settings.sla_targets)
    except ValueError as exc:
        raise ConfigurationError(f"KRUXT_SLA_TARGETS: {exc}") from exc


def payload_codec_from(settings: Settings) -> EncryptionCodec:
    """The codec encrypting every Temporal payload; no key, no start (DESIGN.md: history
    holds encrypted payloads)."""
    if settings.payload_key is None:
        raise ConfigurationError(
            "KRUXT_PAYLOAD_KEY is not set: Temporal history would hold ticket text in the "
            "clear. Generate one with `python -c 'import secrets; print(secrets.token_hex(32))'` "
            "(`kruxt dev` keeps one in .kruxt/payload_key)."
        )
    old = settings.payload_old_keys
    try:
        return EncryptionCodec.from_settings_text(
            settings.payload_key.get_secret_value(), old.get_secret_value() if old else None
        )
    except PayloadKeyError as exc:
        raise ConfigurationError(f"KRUXT_PAYLOAD_KEY / KRUXT_PAYLOAD_OLD_KEYS: {exc}") from exc


async def temporal_from(settings: Settings, codec: EncryptionCodec | None = None) -> Client:
    """A Temporal client for the configured address, namespace and credentials, encrypting
    its payloads with ``codec`` (default: the one the settings describe)."""
    return await connect(
        settings.temporal_address,
        payload_codec=codec or payload_codec_from(settings),
        namespace=settings.temporal_namespace,
        tls=settings.temporal_tls,
        api_key=settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None,
    )
