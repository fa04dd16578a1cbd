"""All configuration, read once at an entrypoint (``starter`` or ``workers``) from the environment.

``kruxt dev`` writes the addresses and the intake token of the embedded stack to
``.kruxt/dev.env``; every other ``kruxt`` command reads that file too, so a second terminal
finds the running stack. Variables set in the environment always win over the file.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kruxt.models.incidents import parse_incident_cluster
from kruxt.models.lifecycle import parse_duration
from kruxt.models.reply_guard import DEFAULT_HELP_DOMAINS, parse_help_domains

if TYPE_CHECKING:
    from kruxt.adapters.postgres.audit import AuditKeyring

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEV_ENV_FILE = "dev.env"


class Settings(BaseSettings):
    """Every setting of the Support Autopilot; the README's configuration table lists them."""

    # Only the aliases (the documented variable names) are read: field names like `home`
    # would otherwise pick up unrelated variables such as $HOME.
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=False)

    # Where the embedded stack keeps its state.
    home: Path = Field(default=Path(".kruxt"), alias="KRUXT_HOME")

    # PostgreSQL: unset means the embedded server of `kruxt dev`.
    database_url: SecretStr | None = Field(default=None, alias="DATABASE_URL")
    # The owner role `kruxt migrate` connects as; DATABASE_URL is the runtime role the API
    # and workers use (sql/010). Unset = DATABASE_URL (one role: no separation).
    migrate_database_url: SecretStr | None = Field(default=None, alias="KRUXT_MIGRATE_DATABASE_URL")
    # Set: `kruxt migrate` creates (or updates) the runtime role's login with this password.
    runtime_db_password: SecretStr | None = Field(default=None, alias="KRUXT_RUNTIME_DB_PASSWORD")
    db_pool_max: int = Field(default=10, alias="KRUXT_DB_POOL_MAX", ge=1)

    # Temporal.
    temporal_address: str = Field(default="localhost:7233", alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field(default="default", alias="TEMPORAL_NAMESPACE")
    temporal_tls: bool = Field(default=False, alias="TEMPORAL_TLS")
    temporal_api_key: SecretStr | None = Field(default=None, alias="TEMPORAL_API_KEY")
    task_queue: str = Field(default="kruxt-support", alias="KRUXT_TASK_QUEUE")
    # Workflows a worker keeps in memory between their tasks (an evicted one is replayed from
    # its history): what bounds the worker's memory with thousands of tickets open.
    max_cached_workflows: int = Field(default=1000, alias="KRUXT_MAX_CACHED_WORKFLOWS", ge=0)
    # How a worker hands out its workflow-task slots: "sdk" (first come, first served) or
    # "sticky-first" (the tickets it already runs first: kruxt.workers.slots, for bursts
    # larger than the cache).
    workflow_slots: Literal["sdk", "sticky-first"] = Field(
        default="sdk", alias="KRUXT_WORKFLOW_SLOTS"
    )
    # Ports of the dev server `kruxt dev` starts when TEMPORAL_ADDRESS is not set (0 = any
    # free port; `kruxt dev` prints it and writes it to .kruxt/dev.env).
    dev_temporal_port: int = Field(default=7233, alias="KRUXT_DEV_TEMPORAL_PORT", ge=0, le=65535)
    dev_temporal_ui_port: int = Field(
        default=8233, alias="KRUXT_DEV_TEMPORAL_UI_PORT", ge=0, le=65535
    )

    # HTTP API.
    api_host: str = Field(default="127.0.0.1", alias="KRUXT_API_HOST")
    api_port: int = Field(default=8000, alias="KRUXT_API_PORT", ge=0, le=65535)  # 0 = any free
    intake_token: SecretStr | None = Field(default=None, alias="KRUXT_INTAKE_TOKEN")

    # Routing and knowledge.
    auto_reply_min_confidence: float = Field(
        default=0.75, alias="KRUXT_AUTO_REPLY_MIN_CONFIDENCE", ge=0.0, le=1.0
    )
    knowledge_dir: Path = Field(default=PROJECT_ROOT / "knowledge", alias="KRUXT_KNOWLEDGE_DIR")
    migrations_dir: Path = Field(default=PROJECT_ROOT / "sql", alias="KRUXT_MIGRATIONS_DIR")
    # The only domains (and their subdomains) an automatic reply may link or point to;
    # comma-separated, empty = none. The default is the one the articles name.
    help_domains: str = Field(default=",".join(DEFAULT_HELP_DOMAINS), alias="KRUXT_HELP_DOMAINS")
    # The lifecycle after an answer: silence that solves it, and how long a solved ticket
    # reopens on a customer message ("30s", "15m", "72h", "7d" or seconds).
    auto_solve_after: str = Field(default="72h", alias="KRUXT_AUTO_SOLVE_AFTER")
    reopen_window: str = Field(default="7d", alias="KRUXT_REOPEN_WINDOW")

    # The LLM (any OpenAI-compatible server); unset key = the rules triager only.
    openai_api_key: SecretStr | None = Field(default=None, alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(default=None, alias="OPENAI_BASE_URL")
    triage_model: str = Field(default="gpt-4o-mini", alias="KRUXT_TRIAGE_MODEL")
    reply_model: str | None = Field(default=None, alias="KRUXT_REPLY_MODEL")
    llm_timeout_s: float = Field(default=30.0, alias="KRUXT_LLM_TIMEOUT_S", gt=0)
    prompts_dir: Path = Field(default=PROJECT_ROOT / "prompts", alias="KRUXT_PROMPTS_DIR")

    # The KRUXT app database playbooks act on; unset = no app (context marked unavailable).
    app_database_url: SecretStr | None = Field(default=None, alias="APP_DATABASE_URL")

    # Approvers: inline YAML/JSON, or a file (`kruxt dev` writes .kruxt/approvers.yaml).
    approvers: str | None = Field(default=None, alias="KRUXT_APPROVERS")
    approvers_file: Path | None = Field(default=None, alias="KRUXT_APPROVERS_FILE")

    # Slack (approvals and incidents); unset token = Slack off.
    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_approval_channel: str | None = Field(default=None, alias="SLACK_APPROVAL_CHANNEL")
    slack_incident_channel: str | None = Field(default=None, alias="SLACK_INCIDENT_CHANNEL")
    slack_api_url: str | None = Field(default=None, alias="SLACK_API_URL")

    # Zendesk (a customer channel); unset webhook secret = the channel is off (404).
    zendesk_subdomain: str | None = Field(default=None, alias="ZENDESK_SUBDOMAIN")
    zendesk_api_url: str | None = Field(default=None, alias="ZENDESK_API_URL")
    zendesk_email: str | None = Field(default=None, alias="ZENDESK_EMAIL")
    zendesk_api_token: SecretStr | None = Field(default=None, alias="ZENDESK_API_TOKEN")
    zendesk_webhook_secret: SecretStr | None = Field(default=None, alias="ZENDESK_WEBHOOK_SECRET")

    # Intercom (a customer channel); unset client secret = the webhook is off (404).
    intercom_access_token: SecretStr | None = Field(default=None, alias="INTERCOM_ACCESS_TOKEN")
    intercom_client_secret: SecretStr | None = Field(default=None, alias="INTERCOM_CLIENT_SECRET")
    intercom_admin_id: str | None = Field(default=None, alias="INTERCOM_ADMIN_ID")
    intercom_api_url: str | None = Field(default=None, alias="INTERCOM_API_URL")

    # GitHub issues for product defects; unset token = off ("would create" in the audit).
    github_token: SecretStr | None = Field(default=None, alias="GITHUB_TOKEN")
    github_repository: str | None = Field(default=None, alias="GITHUB_REPOSITORY")
    github_api_url: str | None = Field(default=None, alias="GITHUB_API_URL")

    # E-mail: SendGrid when a key is set, else the dev outbox ($KRUXT_HOME/outbox).
    sendgrid_api_key: SecretStr | None = Field(default=None, alias="SENDGRID_API_KEY")
    sendgrid_api_url: str | None = Field(default=None, alias="SENDGRID_API_URL")
    email_from: str = Field(default="support-autopilot@kruxt.dev", alias="KRUXT_EMAIL_FROM")
    # Where e-mailed approval links point, and the secret that signs them (>= 32 bytes).
    public_url: str = Field(default="http://127.0.0.1:8000", alias="KRUXT_PUBLIC_URL")
    link_secret: SecretStr | None = Field(default=None, alias="KRUXT_LINK_SECRET")

    # The staff console (/console): how long a sign-in lasts, and OpenID Connect sign-in (on
    # when all three are set; the e-mailed sign-in link works either way).
    console_session_hours: int = Field(
        default=12, alias="KRUXT_CONSOLE_SESSION_HOURS", ge=1, le=24 * 30
    )
    oidc_issuer: str | None = Field(default=None, alias="KRUXT_OIDC_ISSUER")
    oidc_client_id: str | None = Field(default=None, alias="KRUXT_OIDC_CLIENT_ID")
    oidc_client_secret: SecretStr | None = Field(default=None, alias="KRUXT_OIDC_CLIENT_SECRET")

    # SLA targets and incident escalation (JSON/YAML; defaults are DESIGN.md's table).
    sla_targets: str | None = Field(default=None, alias="KRUXT_SLA_TARGETS")
    escalation_policy: str | None = Field(default=None, alias="KRUXT_ESCALATION_POLICY")
    escalation_policy_file: Path | None = Field(default=None, alias="KRUXT_ESCALATION_POLICY_FILE")
    incident_window_minutes: int = Field(default=360, alias="KRUXT_INCIDENT_WINDOW_MINUTES", ge=1)
    # How many P2 tickets of one cause, within how long, open an incident ("3/30m", "5/2h").
    incident_cluster: str = Field(default="3/30m", alias="KRUXT_INCIDENT_CLUSTER")

    # Temporal payload encryption (AES-256-GCM; 64 hex digits or base64 of 32 bytes). The
    # current key encrypts; retired keys (comma-separated) only decrypt older history.
    payload_key: SecretStr | None = Field(default=None, alias="KRUXT_PAYLOAD_KEY")
    payload_old_keys: SecretStr | None = Field(default=None, alias="KRUXT_PAYLOAD_OLD_KEYS")
    # The codec endpoint the Temporal Web UI decrypts history through (/codec/decode): a
    # bearer token, or (`kruxt dev`, loopback API only) requests from this machine.
    codec_token: SecretStr | None = Field(default=None, alias="KRUXT_CODEC_TOKEN")
    codec_allow_loopback: bool = Field(default=False, alias="KRUXT_CODEC_ALLOW_LOOPBACK")
    codec_cors_origins: str = Field(
        default="http://localhost:8233", alias="KRUXT_CODEC_CORS_ORIGINS"
    )

    # The audit chain's HMAC key (never stored in the database; >= 32 characters), retired
    # keys that still verify older rows (comma-separated), and where the signed chain head is
    # anchored (default $KRUXT_HOME/audit_anchors.jsonl) and how often.
    audit_key: SecretStr | None = Field(default=None, alias="KRUXT_AUDIT_KEY")
    audit_retired_keys: SecretStr | None = Field(default=None, alias="KRUXT_AUDIT_RETIRED_KEYS")
    audit_anchor_file: Path | None = Field(default=None, alias="KRUXT_AUDIT_ANCHOR_FILE")
    audit_anchor_minutes: int = Field(default=10, alias="KRUXT_AUDIT_ANCHOR_MINUTES", ge=1)

    # The weekly review: the time zone its Monday 08:00 and its weeks are in, and how many
    # automatic replies and AI triage decisions of each kind it samples for grading.
    time_zone: str = Field(default="UTC", alias="KRUXT_TIMEZONE")
    review_sample: int = Field(default=20, alias="KRUXT_REVIEW_SAMPLE", ge=0, le=500)

    # Telemetry.
    log_level: str = Field(default="INFO", alias="KRUXT_LOG_LEVEL")
    otlp_endpoint: str | None = Field(default=None, alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    # Prometheus, on the worker: the app's metrics and the Temporal SDK's (unset: not served).
    metrics_port: int | None = Field(default=None, alias="KRUXT_METRICS_PORT", ge=0, le=65535)
    temporal_metrics_port: int | None = Field(
        default=None, alias="KRUXT_TEMPORAL_METRICS_PORT", ge=0, le=65535
    )

    @field_validator(
        "database_url",
        "migrate_database_url",
        "runtime_db_password",
        "audit_key",
        "audit_retired_keys",
        "audit_anchor_file",
        "temporal_api_key",
        "intake_token",
        "openai_api_key",
        "openai_base_url",
        "reply_model",
        "app_database_url",
        "approvers",
        "approvers_file",
        "slack_bot_token",
        "slack_signing_secret",
        "slack_approval_channel",
        "slack_incident_channel",
        "slack_api_url",
        "sendgrid_api_key",
        "sendgrid_api_url",
        "link_secret",
        "sla_targets",
        "escalation_policy",
        "escalation_policy_file",
        "otlp_endpoint",
        "metrics_port",
        "temporal_metrics_port",
        "payload_key",
        "payload_old_keys",
        "codec_token",
        "zendesk_subdomain",
        "zendesk_api_url",
        "zendesk_email",
        "zendesk_api_token",
        "zendesk_webhook_secret",
        "intercom_access_token",
        "intercom_client_secret",
        "intercom_admin_id",
        "intercom_api_url",
        "github_token",
        "github_repository",
        "github_api_url",
        "oidc_issuer",
        "oidc_client_id",
        "oidc_client_secret",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # docker compose passes `${VAR:-}` through as an empty string.
        return None if value == "" else value

    @field_validator("incident_cluster")
    @classmethod
    def _incident_cluster_parse(cls, value: str) -> str:
        parse_incident_cluster(value)  # a ValueError says what COUNT/SPAN should look like
        return value

    @field_validator("time_zone")
    @classmethod
    def _time_zone_known(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"KRUXT_TIMEZONE: unknown time zone {value!r} (e.g. Europe/Berlin)"
            ) from exc
        return value

    @field_validator("help_domains")
    @classmethod
    def _help_domains_parse(cls, value: str) -> str:
        parse_help_domains(value)  # a ValueError names the entry that is not a domain
        return value

    @field_validator("auto_solve_after", "reopen_window")
    @classmethod
    def _duration_parse(cls, value: str, info: ValidationInfo) -> str:
        # A ValueError names the variable and says what a duration looks like.
        parse_duration(value, source=f"KRUXT_{str(info.field_name).upper()}")
        return value

    @property
    def dev_env_file(self) -> Path:
        """The file ``kruxt dev`` writes its addresses to."""
        return self.home / DEV_ENV_FILE

    def zendesk_base_url(self) -> str | None:
        """The Zendesk API base: ZENDESK_API_URL as given, else the account's of its subdomain."""
        if self.zendesk_api_url:
            return self.zendesk_api_url.rstrip("/")
        if self.zendesk_subdomain:
            return f"https://{self.zendesk_subdomain}.zendesk.com"
        return None

    def require_database_url(self) -> str:
        """The Postgres DSN, or a clear error saying how to get one."""
        if self.database_url is None:
            raise ConfigurationError(
                "DATABASE_URL is not set and no embedded stack is running: "
                "start one with `make run` (or `kruxt dev`), or set DATABASE_URL."
            )
        return self.database_url.get_secret_value()

    def require_migrate_database_url(self) -> str:
        """The owner role's DSN for migrations (KRUXT_MIGRATE_DATABASE_URL, else DATABASE_URL)."""
        if self.migrate_database_url is not None:
            return self.migrate_database_url.get_secret_value()
        return self.require_database_url()

    def require_audit_keyring(self) -> AuditKeyring:
        """The audit chain's keys, or a clear error: entries are never written unkeyed."""
        from kruxt.adapters.postgres.audit import AuditKeyring

        if self.audit_key is None or not self.audit_key.get_secret_value():
            raise ConfigurationError(
                "KRUXT_AUDIT_KEY is not set: the audit trail is HMAC-keyed with a key kept "
                "outside the database. Generate one (`openssl rand -hex 32`) and keep it safe: "
                "`kruxt audit verify` needs it (and retired ones in KRUXT_AUDIT_RETIRED_KEYS)."
            )
        retired = self.audit_retired_keys.get_secret_value() if self.audit_retired_keys else ""
        try:
            return AuditKeyring.of(
                self.audit_key.get_secret_value(), (k.strip() for k in retired.split(","))
            )
        except ValueError as exc:
            raise ConfigurationError(f"KRUXT_AUDIT_KEY / KRUXT_AUDIT_RETIRED_KEYS: {exc}") from exc

    @property
    def audit_anchors_path(self) -> Path:
        """The append-only file of signed chain heads."""
        return self.audit_anchor_file or self.home / "audit_anchors.jsonl"

    def require_intake_token(self) -> str:
        """The bearer token of the intake API."""
        if self.intake_token is None or not self.intake_token.get_secret_value():
            raise ConfigurationError("KRUXT_INTAKE_TOKEN is not set: the API refuses to start.")
        return self.intake_token.get_secret_value()


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine's loopback only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ConfigurationError(Exception):
    """A setting is missing or wrong; the message says which and how to fix it."""


def load_settings() -> Settings:
    """Read settings from the environment, then from ``$KRUXT_HOME/dev.env`` if it exists."""
    home = Path(os.environ.get("KRUXT_HOME", ".kruxt"))
    env_file = home / DEV_ENV_FILE
    return Settings(_env_file=env_file if env_file.is_file() else None)
