"""Bootstrap: the optional outside services built from settings (approvers, Slack, e-mail).

Shared by the worker and the API, the two entrypoints that read settings.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from slack_sdk.web.async_client import AsyncWebClient

from kruxt.adapters.approvers import ApproverDirectory, load_approvers
from kruxt.adapters.email import Mailer, OutboxMailer, SendGridMailer
from kruxt.adapters.email_tokens import ApprovalTokens
from kruxt.adapters.postgres.email_tokens import EmailTokenStore
from kruxt.adapters.settings import ConfigurationError, Settings
from kruxt.adapters.slack import SlackApprovals

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


def token_store(pool: asyncpg.Pool[Any]) -> EmailTokenStore:
    """Where issued links are remembered (single use)."""
    return EmailTokenStore(pool)
