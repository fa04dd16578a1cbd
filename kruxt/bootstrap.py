"""The composition root: every adapter the worker and the API use, built once from settings.

``bootstrap(settings, **overrides)`` connects and builds them (cosmicpython's ``bootstrap``);
tests pass the parts they bring (a client, a pool, a fake) as overrides. It sits below the
entrypoints: it imports adapters, activities and models, never ``starter`` or ``workers``,
so the services of ``starter`` are built by their entrypoints from what it returns.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
from pydantic import SecretStr
from temporalio.client import Client

from kruxt.activities.notifications import EmailApprovals
from kruxt.adapters.app_db import SUPPORT_ROLE, KruxtApp
from kruxt.adapters.approvers import ApproverDirectory, load_approvers
from kruxt.adapters.channels.base import CustomerChannel
from kruxt.adapters.email import Mailer, OutboxMailer, SendGridMailer
from kruxt.adapters.email_tokens import (
    ApprovalTokens,
    ConfirmLinks,
    ConfirmTokens,
    GradeTokens,
    IncidentAckTokens,
)
from kruxt.adapters.payload_codec import EncryptionCodec, PayloadKeyError
from kruxt.adapters.postgres.channel_events import ChannelEventLog
from kruxt.adapters.postgres.email_tokens import EmailTokenStore
from kruxt.adapters.postgres.pool import create_pool
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.adapters.prompts import load_prompt
from kruxt.adapters.settings import ConfigurationError, Settings
from kruxt.adapters.temporal_client import connect
from kruxt.agents.knowledge import ReplyGuard
from kruxt.models.enums import Channel
from kruxt.models.incidents import (
    DEFAULT_INCIDENT_CLUSTER,
    EscalationPolicy,
    IncidentCluster,
    default_escalation_policy,
    parse_escalation_policy,
    parse_incident_cluster,
)
from kruxt.models.lifecycle import parse_duration
from kruxt.models.sla import SlaTargets, parse_sla_targets

# The outside services' clients (OpenAI, Slack, Zendesk, Intercom, GitHub) are most of the
# import time: each is imported by the builder that needs it, so a command that connects only
# to PostgreSQL and Temporal (the CLI's) starts without loading them.
if TYPE_CHECKING:
    import openai
    from slack_sdk.web.async_client import AsyncWebClient

    from kruxt.adapters.channels.intercom import IntercomChannel
    from kruxt.adapters.channels.zendesk import ZendeskChannel
    from kruxt.adapters.github_client import GitHubIssues
    from kruxt.adapters.intercom_client import IntercomClient
    from kruxt.adapters.llm_prevention import OpenAIPreventionDrafter
    from kruxt.adapters.llm_reply import OpenAIReplyWriter
    from kruxt.adapters.llm_triage import OpenAITriager, PromptedModel
    from kruxt.adapters.slack import SlackApprovals, SlackIncidents
    from kruxt.adapters.slack.reviews import SlackReviews
    from kruxt.adapters.zendesk_client import ZendeskClient

log = logging.getLogger(__name__)

ConnectedChannel = TypeVar("ConnectedChannel", "ZendeskChannel", "IntercomChannel")
_Signer = TypeVar("_Signer", ApprovalTokens, GradeTokens, IncidentAckTokens, ConfirmTokens)

TRIAGE_PROMPT_VERSION = "v2"
REPLY_PROMPT_VERSION = "v1"
DEFECT_PROMPT_VERSION = "v1"


def approvers_from(settings: Settings) -> ApproverDirectory:
    """The approvers directory (empty when none is configured)."""
    return load_approvers(file=settings.approvers_file, inline=settings.approvers)


def slack_client_from(settings: Settings) -> AsyncWebClient:
    """The Slack Web API client of SLACK_BOT_TOKEN (at SLACK_API_URL when set, e.g. a fake)."""
    if settings.slack_bot_token is None:
        raise ConfigurationError("SLACK_BOT_TOKEN is not set")
    from slack_sdk.web.async_client import AsyncWebClient

    kwargs: dict[str, Any] = {"token": settings.slack_bot_token.get_secret_value()}
    if settings.slack_api_url:
        kwargs["base_url"] = settings.slack_api_url
    return AsyncWebClient(**kwargs)


def slack_from(settings: Settings) -> SlackApprovals | None:
    """Slack approvals when a bot token and an approval channel are configured."""
    if settings.slack_bot_token is None:
        return None
    if not settings.slack_approval_channel:
        raise ConfigurationError("SLACK_BOT_TOKEN is set but SLACK_APPROVAL_CHANNEL is not")
    from kruxt.adapters.slack import SlackApprovals

    return SlackApprovals(
        slack_client_from(settings),
        channel=settings.slack_approval_channel,
        ticket_url=lambda ticket_id: f"{settings.public_url}/v1/tickets/{ticket_id}",
    )


def github_from(settings: Settings) -> GitHubIssues | None:
    """GitHub issues for product defects when GITHUB_TOKEN is set (checked complete, no I/O)."""
    token = settings.github_token
    if token is None:
        return None
    if not settings.github_repository:
        raise ConfigurationError("GITHUB_TOKEN is set but GITHUB_REPOSITORY (owner/name) is not")
    from kruxt.adapters.github_client import GitHubIssues

    try:
        return GitHubIssues(
            settings.github_repository,
            token=token.get_secret_value(),
            base_url=settings.github_api_url,
        )
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def zendesk_client_from(settings: Settings) -> ZendeskClient | None:
    """The Zendesk API client when ZENDESK_API_TOKEN is set (checked complete, no I/O)."""
    token = settings.zendesk_api_token
    if token is None:
        return None
    base = settings.zendesk_base_url()
    if base is None or not settings.zendesk_email:
        raise ConfigurationError(
            "ZENDESK_API_TOKEN is set: ZENDESK_EMAIL and ZENDESK_SUBDOMAIN (or ZENDESK_API_URL) "
            "are needed too"
        )
    from kruxt.adapters.zendesk_client import ZendeskClient

    return ZendeskClient(base, email=settings.zendesk_email, api_token=token.get_secret_value())


def zendesk_from(
    settings: Settings, pool: asyncpg.Pool[Any], client: ZendeskClient | None
) -> ZendeskChannel | None:
    """The Zendesk channel when its webhook secret or API token is set; else None (off)."""
    from kruxt.adapters.channels.zendesk import ZendeskChannel

    return connected_channel(ZendeskChannel, settings.zendesk_webhook_secret, client, pool)


def intercom_client_from(settings: Settings) -> IntercomClient | None:
    """The Intercom API client when INTERCOM_ACCESS_TOKEN is set (checked complete, no I/O)."""
    token = settings.intercom_access_token
    if token is None:
        return None
    if not settings.intercom_admin_id:
        raise ConfigurationError(
            "INTERCOM_ACCESS_TOKEN is set: INTERCOM_ADMIN_ID (the admin the autopilot replies "
            "as) is needed too"
        )
    from kruxt.adapters.intercom_client import DEFAULT_API_URL, IntercomClient

    return IntercomClient(
        settings.intercom_api_url or DEFAULT_API_URL,
        access_token=token.get_secret_value(),
        admin_id=settings.intercom_admin_id,
    )


def intercom_from(
    settings: Settings, pool: asyncpg.Pool[Any], client: IntercomClient | None
) -> IntercomChannel | None:
    """The Intercom channel when its client secret or access token is set; else None (off)."""
    from kruxt.adapters.channels.intercom import IntercomChannel

    return connected_channel(IntercomChannel, settings.intercom_client_secret, client, pool)


def connected_channel(
    kind: type[ConnectedChannel], secret: SecretStr | None, client: Any, pool: asyncpg.Pool[Any]
) -> ConnectedChannel | None:
    """A connected channel (Zendesk, Intercom) when its signing secret or API client is set.

    Without the secret its webhook answers 404; without the client nothing is posted.
    """
    if secret is None and client is None:
        return None
    return kind(
        secret=secret.get_secret_value() if secret is not None else "",
        client=client,
        store=TicketStore(pool),
        events=ChannelEventLog(pool),
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


def _signer_from(settings: Settings, signer: Callable[[bytes], _Signer]) -> _Signer | None:
    """A signer of links, keyed from the link secret (each kind derives its own key); None
    when no secret is configured."""
    if settings.link_secret is None:
        return None
    return signer(settings.link_secret.get_secret_value().encode())


def link_tokens_from(settings: Settings) -> ApprovalTokens | None:
    """The signer of e-mailed approval links, when a secret is configured."""
    return _signer_from(settings, ApprovalTokens)


def grade_tokens_from(settings: Settings) -> GradeTokens | None:
    """The signer of the weekly review's grade links (the link secret, its own key)."""
    return _signer_from(settings, GradeTokens)


def review_chat_from(settings: Settings) -> SlackReviews | None:
    """The weekly review's Slack post, in the approval channel, when Slack is configured."""
    if settings.slack_bot_token is None or not settings.slack_approval_channel:
        return None
    from kruxt.adapters.slack.reviews import SlackReviews

    return SlackReviews(slack_client_from(settings), channel=settings.slack_approval_channel)


def incident_ack_tokens_from(settings: Settings) -> IncidentAckTokens | None:
    """The signer of e-mailed incident "Acknowledge" links (the same secret, its own key)."""
    return _signer_from(settings, IncidentAckTokens)


def confirm_tokens_from(settings: Settings) -> ConfirmTokens | None:
    """The signer of customers' confirm links (the link secret, its own key)."""
    return _signer_from(settings, ConfirmTokens)


def confirm_links_from(settings: Settings) -> ConfirmLinks | None:
    """Confirm links for answers that wait on the customer; valid while the ticket can be
    confirmed or reopened (the auto-solve wait plus the reopen window)."""
    tokens = confirm_tokens_from(settings)
    if tokens is None:
        return None
    valid_for = parse_duration(
        settings.auto_solve_after, source="KRUXT_AUTO_SOLVE_AFTER"
    ) + parse_duration(settings.reopen_window, source="KRUXT_REOPEN_WINDOW")
    return ConfirmLinks(tokens, settings.public_url, valid_for)


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
    from kruxt.adapters.slack import SlackIncidents

    return SlackIncidents(
        slack_client_from(settings),
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


def reply_guard_from(settings: Settings) -> ReplyGuard:
    """The reply guard of KRUXT_HELP_DOMAINS (validated when the settings were read)."""
    return ReplyGuard.from_setting(settings.help_domains)


def llm_from(settings: Settings) -> tuple[OpenAITriager | None, OpenAIReplyWriter | None]:
    """The LLM triager and reply writer when OPENAI_API_KEY is set; else neither."""
    if settings.openai_api_key is None:
        log.info("OPENAI_API_KEY unset: the rules triager and article templates answer")
        return None, None
    from kruxt.adapters.llm_reply import OpenAIReplyWriter
    from kruxt.adapters.llm_triage import OpenAITriager

    client = _openai_client(settings.openai_api_key, settings)
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


def prevention_drafter_from(settings: Settings) -> OpenAIPreventionDrafter | None:
    """The reply model drafting defect issues' prevention notes when OPENAI_API_KEY is set."""
    if settings.openai_api_key is None:
        return None
    from kruxt.adapters.llm_prevention import OpenAIPreventionDrafter

    prompt = load_prompt("defect", DEFECT_PROMPT_VERSION, settings.prompts_dir)
    model = settings.reply_model or settings.triage_model
    client = _openai_client(settings.openai_api_key, settings)
    return OpenAIPreventionDrafter(client, model=model, prompt=prompt)


def _openai_client(key: SecretStr, settings: Settings) -> openai.AsyncOpenAI:
    from kruxt.adapters.llm_triage import build_openai_client

    return build_openai_client(
        api_key=key.get_secret_value(),
        base_url=settings.openai_base_url,
        timeout_s=settings.llm_timeout_s,
    )


async def connect_app(settings: Settings) -> asyncpg.Pool[Any] | None:
    """A pool on the KRUXT app database whose sessions act as the support role only."""
    if settings.app_database_url is None:
        log.info("APP_DATABASE_URL unset: playbooks and account context are unavailable")
        return None
    return await create_pool(
        settings.app_database_url.get_secret_value(), max_size=5, role=SUPPORT_ROLE
    )


@dataclass
class Outside:
    """The optional outside world the activities use: the LLM, the KRUXT app, approvers,
    Slack, e-mail. Left out, a part means "not configured" and the workflows fall back."""

    triager: OpenAITriager | None = None
    reply_writer: OpenAIReplyWriter | None = None
    # What every automatic reply must pass (KRUXT_HELP_DOMAINS), template or LLM.
    reply_guard: ReplyGuard = field(default_factory=ReplyGuard)
    app: KruxtApp | None = None
    approvers: ApproverDirectory = field(default_factory=lambda: ApproverDirectory([]))
    slack: SlackApprovals | None = None
    email: EmailApprovals | None = None
    # Incidents and SLA alerts: their Slack channel, plain mail (pages), who is on call.
    incident_slack: SlackIncidents | None = None
    mailer: Mailer | None = None
    escalation: EscalationPolicy = field(default_factory=default_escalation_policy)
    public_url: str = "http://127.0.0.1:8000"
    incident_window: timedelta = timedelta(hours=6)
    # How many P2 tickets of one cause within how long open an incident (KRUXT_INCIDENT_CLUSTER).
    incident_cluster: IncidentCluster = DEFAULT_INCIDENT_CLUSTER
    # Signs the "Acknowledge" links of page e-mails; without it pages name the CLI only.
    incident_ack_tokens: IncidentAckTokens | None = None
    # Where the audit chain's head is anchored (the schedule's activity); None = not here.
    audit_anchor_file: Path | None = None
    # Customer channels connected beyond the ticket's own thread (Zendesk, Intercom).
    channels: dict[Channel, CustomerChannel] = field(default_factory=dict)
    # The repository product defects are filed in (GITHUB_TOKEN); None: "would create" only.
    github: GitHubIssues | None = None
    # Drafts their prevention notes when no resolver gave any (OPENAI_API_KEY); None: the
    # triage's recommended action is the draft.
    prevention_drafter: OpenAIPreventionDrafter | None = None
    # Ends answers that wait on the customer with a confirm link (KRUXT_LINK_SECRET).
    confirm_links: ConfirmLinks | None = None
    # The weekly review: its Slack post, its grade links, its time zone and sample size.
    review_chat: SlackReviews | None = None
    grade_tokens: GradeTokens | None = None
    time_zone: str = "UTC"
    review_sample: int = 20


@dataclass
class Bootstrapped:
    """Everything the worker and the API need, connected; ``close()`` when done."""

    settings: Settings
    codec: EncryptionCodec
    client: Client
    pool: asyncpg.Pool[Any]
    # The KRUXT app's database (the worker's playbooks and account context); None: absent.
    app_pool: asyncpg.Pool[Any] | None
    approvers: ApproverDirectory
    escalation: EscalationPolicy
    sla: SlaTargets
    # The worker's mailer (approval mail, pages, SLA alerts); None in the API.
    mailer: Mailer | None
    slack: SlackApprovals | None
    incident_slack: SlackIncidents | None
    link_tokens: ApprovalTokens | None
    incident_ack_tokens: IncidentAckTokens | None
    outside: Outside
    # Pools this bootstrap opened (not those passed in): closed by close().
    owned_pools: list[asyncpg.Pool[Any]] = field(default_factory=list)
    # The LLM models it built (their HTTP clients): closed by close().
    owned_models: list[PromptedModel] = field(default_factory=list)
    # The Zendesk channel (its webhook and its API); None: not configured.
    zendesk: ZendeskChannel | None = None
    # The Intercom channel (its webhook and its API); None: not configured.
    intercom: IntercomChannel | None = None

    @property
    def token_store(self) -> EmailTokenStore:
        """Where issued e-mail links are remembered (single use)."""
        return token_store(self.pool)

    async def close(self) -> None:
        """Close the pools and LLM clients this bootstrap opened."""
        for model in self.owned_models:
            await model.aclose()
        self.owned_models.clear()
        if self.zendesk is not None:
            await self.zendesk.aclose()
        if self.intercom is not None:
            await self.intercom.aclose()
        for pool in reversed(self.owned_pools):
            await pool.close()
        self.owned_pools.clear()


async def bootstrap(settings: Settings, *, worker: bool = False, **overrides: Any) -> Bootstrapped:
    """Build every adapter from ``settings`` once; a keyword named after a field of
    :class:`Bootstrapped` is used as given instead (tests pass a client, a pool, fakes).

    ``worker``: also the LLM and the KRUXT app's pool, which only the worker holds (the API
    never gets the app's credentials). Fails before connecting when a setting is invalid.

    Raises:
        ConfigurationError: a setting is missing or invalid.
        TypeError: an override names no field of :class:`Bootstrapped`.
    """
    unknown = set(overrides) - {f.name for f in fields(Bootstrapped)} - {"owned_pools"}
    if unknown:
        raise TypeError(f"bootstrap() got unknown overrides: {', '.join(sorted(unknown))}")

    def given(name: str, build: Any) -> Any:
        return overrides[name] if name in overrides else build()

    # Everything that needs no connection first: a bad setting fails before any I/O.
    codec: EncryptionCodec = given("codec", lambda: payload_codec_from(settings))
    approvers: ApproverDirectory = given("approvers", lambda: approvers_from(settings))
    escalation: EscalationPolicy = given("escalation", lambda: escalation_from(settings))
    sla: SlaTargets = given("sla", lambda: sla_targets_from(settings))
    slack: SlackApprovals | None = given("slack", lambda: slack_from(settings))
    incident_slack: SlackIncidents | None = given(
        "incident_slack", lambda: incident_slack_from(settings)
    )
    link_tokens: ApprovalTokens | None = given("link_tokens", lambda: link_tokens_from(settings))
    ack_tokens: IncidentAckTokens | None = given(
        "incident_ack_tokens", lambda: incident_ack_tokens_from(settings)
    )
    # One mailer for approval mail, pages and SLA alerts; only the worker sends mail.
    mailer: Mailer | None = given("mailer", lambda: mailer_from(settings) if worker else None)
    triager, writer = llm_from(settings) if worker and "outside" not in overrides else (None, None)
    github = github_from(settings) if worker and "outside" not in overrides else None
    drafter = prevention_drafter_from(settings) if worker and "outside" not in overrides else None
    zendesk_api = zendesk_client_from(settings) if "zendesk" not in overrides else None
    intercom_api = intercom_client_from(settings) if "intercom" not in overrides else None

    client: Client = (
        overrides["client"] if "client" in overrides else await temporal_from(settings, codec)
    )
    owned: list[asyncpg.Pool[Any]] = []
    try:
        if "pool" in overrides:
            pool: asyncpg.Pool[Any] = overrides["pool"]
        else:
            pool = await create_pool(settings.require_database_url(), max_size=settings.db_pool_max)
            owned.append(pool)
        if "app_pool" in overrides:
            app_pool: asyncpg.Pool[Any] | None = overrides["app_pool"]
        else:
            app_pool = await connect_app(settings) if worker else None
            if app_pool is not None:
                owned.append(app_pool)
    except BaseException:
        for opened in owned:
            await opened.close()
        raise
    if link_tokens is None and worker:
        log.warning("KRUXT_LINK_SECRET unset: approval requests are not e-mailed")
    zendesk: ZendeskChannel | None = given(
        "zendesk", lambda: zendesk_from(settings, pool, zendesk_api)
    )
    intercom: IntercomChannel | None = given(
        "intercom", lambda: intercom_from(settings, pool, intercom_api)
    )
    outside: Outside = given(
        "outside",
        lambda: Outside(
            triager=triager,
            reply_writer=writer,
            reply_guard=reply_guard_from(settings),
            app=KruxtApp(app_pool) if app_pool is not None else None,
            approvers=approvers,
            slack=slack,
            email=EmailApprovals(
                mailer=mailer,
                tokens=link_tokens,
                token_store=token_store(pool),
                public_url=settings.public_url,
            )
            if link_tokens is not None and mailer is not None
            else None,
            incident_slack=incident_slack,
            mailer=mailer,
            escalation=escalation,
            public_url=settings.public_url,
            incident_window=timedelta(minutes=settings.incident_window_minutes),
            incident_cluster=parse_incident_cluster(settings.incident_cluster),
            incident_ack_tokens=ack_tokens,
            audit_anchor_file=settings.audit_anchors_path,
            github=github,
            prevention_drafter=drafter,
            confirm_links=confirm_links_from(settings),
            review_chat=review_chat_from(settings),
            grade_tokens=grade_tokens_from(settings),
            time_zone=settings.time_zone,
            review_sample=settings.review_sample,
            channels={
                name: channel
                for name, channel in ((Channel.ZENDESK, zendesk), (Channel.INTERCOM, intercom))
                if channel is not None
            },
        ),
    )
    return Bootstrapped(
        settings=settings,
        codec=codec,
        client=client,
        pool=pool,
        app_pool=app_pool,
        approvers=approvers,
        escalation=escalation,
        sla=sla,
        mailer=mailer,
        slack=slack,
        incident_slack=incident_slack,
        link_tokens=link_tokens,
        incident_ack_tokens=ack_tokens,
        outside=outside,
        owned_pools=owned,
        owned_models=[m for m in (triager, writer, drafter) if m is not None],
        zendesk=zendesk,
        intercom=intercom,
    )
