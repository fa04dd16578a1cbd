"""Prometheus metrics: the app's own (counted by the activities) and the Temporal SDK's.

The worker serves both: the app's on ``KRUXT_METRICS_PORT`` (prometheus-client), the SDK's
runtime metrics (task latencies, slots, polls) on ``KRUXT_TEMPORAL_METRICS_PORT``, served by
the SDK's core itself. The API serves its own (the webhooks' refusals) at ``GET /metrics``,
behind its bearer token. Activities are where the work happens once (a replayed workflow would
count twice), so the counters are incremented there.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from wsgiref.simple_server import WSGIServer

from prometheus_client import Counter, Histogram, start_http_server
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

log = logging.getLogger(__name__)

TICKET_STATUS = Counter(
    "kruxt_ticket_status_changes",
    "Status changes of tickets; the route taken out of triage is the status it lands in "
    "(auto_reply: awaiting_customer, playbook: awaiting_approval, human: awaiting_human).",
    ["status"],
)
APPROVAL_DECISION = Histogram(
    "kruxt_approval_decision_seconds",
    "From an approval request to its decision (approved, rejected, expired).",
    ["status"],
    buckets=(60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 72 * 3600),
)
SLA_BREACHES = Counter(
    "kruxt_sla_breaches", "SLA clocks that ran past their target.", ["clock", "priority"]
)
COMPENSATIONS = Counter(
    "kruxt_playbook_compensations",
    "Playbook steps undone by their compensation (a saga rolling back).",
    ["action"],
)
WEBHOOK_REFUSALS = Counter(
    "kruxt_webhook_refusals",
    "Webhook requests a customer channel refused before reading them (unsigned, forged, "
    "tampered, stale), by channel and our own reason; counted by the API.",
    ["channel", "reason"],
)


def ticket_status(status: str) -> None:
    """A ticket was set to ``status``."""
    TICKET_STATUS.labels(status=status).inc()


def approval_decided(status: str, requested_at: datetime) -> None:
    """An approval request was decided now; pending records are not decisions."""
    if status != "pending":
        seconds = max((datetime.now(UTC) - requested_at).total_seconds(), 0.0)
        APPROVAL_DECISION.labels(status=status).observe(seconds)


def sla_breached(clock: str, priority: str) -> None:
    """A ticket's ``clock`` passed its target."""
    SLA_BREACHES.labels(clock=clock, priority=priority).inc()


def compensated(action: str) -> None:
    """A playbook step running ``action`` was undone."""
    COMPENSATIONS.labels(action=action).inc()


def webhook_refused(channel: str, reason: str) -> None:
    """The API refused a webhook request to ``channel`` (``reason``: one of the channel's
    fixed refusal texts, never the sender's)."""
    WEBHOOK_REFUSALS.labels(channel=channel, reason=reason).inc()


def serve_metrics(
    port: int | None,
    temporal_port: int | None,
    host: str = "0.0.0.0",  # noqa: S104 (scraped from outside the container)
) -> WSGIServer | None:
    """Serve the app's metrics on ``port`` and the SDK's on ``temporal_port`` (each when set);
    returns the app's server (``shutdown()`` stops it).

    Call before the first Temporal client connects: the SDK's runtime is process-wide and
    clients take the default one when they are built.
    """
    server = None
    if port is not None:
        server, _ = start_http_server(port, addr=host)
        log.info("app metrics on http://%s:%d/metrics", host, server.server_port)
    if temporal_port is not None:
        Runtime.set_default(temporal_runtime(f"{host}:{temporal_port}"))
        log.info("Temporal SDK metrics on http://%s:%d/metrics", host, temporal_port)
    return server


def temporal_runtime(bind_address: str) -> Runtime:
    """A Temporal runtime exporting the SDK's metrics for Prometheus at ``bind_address``."""
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=bind_address, durations_as_seconds=True)
        )
    )
