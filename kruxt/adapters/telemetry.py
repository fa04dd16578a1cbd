"""Logging as JSON lines with bearer links redacted, and OpenTelemetry tracing (OTLP when
configured)."""

from __future__ import annotations

import copy
import json
import logging
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider


class JsonFormatter(logging.Formatter):
    """One JSON object per line: what log shippers and `jq` read best."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = redact_tokens(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


# Paths whose last segment is a bearer credential (a signed, single-use link): whoever reads
# it in a log could use it. Every route with a token in its path is listed here; a test fails
# when a new one is not.
# "/confirm/" is the tail of /v1/tickets/{id}/confirm/{token}.
TOKEN_PATH_PREFIXES = (
    "/approvals/email/",
    "/incidents/ack/",
    "/confirm/",
    "/reviews/grade/",
    "/reviews/report/",
)
# Query parameters that carry credentials.
TOKEN_QUERY_PARAMS = ("token", "access_token", "code", "sig", "signature", "key")
REDACTED = "[redacted]"

# Literal alternatives followed by one character class: linear in the length of the line.
_TOKEN_PATH = re.compile(
    "(" + "|".join(re.escape(p) for p in TOKEN_PATH_PREFIXES) + r")[^/?#\s\"']+"
)
_TOKEN_QUERY = re.compile(
    r"([?&](?:" + "|".join(TOKEN_QUERY_PARAMS) + r")=)[^&#\s\"']+", re.IGNORECASE
)


def redact_tokens(text: str) -> str:
    """``text`` with the token of every signed-link path and credential query replaced."""
    text = _TOKEN_PATH.sub(rf"\1{REDACTED}", text)
    return _TOKEN_QUERY.sub(rf"\1{REDACTED}", text)


class TokenRedactionFilter(logging.Filter):
    """Redacts link tokens from a record's arguments and message; never drops a record.

    Arguments are redacted in place, so formatters that read them positionally (uvicorn's
    access log) still work; a message that still shows a token once formatted (a token passed
    alone for a ``.../%s`` format) is replaced by its redacted, formatted text.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_tokens(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {
                k: redact_tokens(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format: logging would print the raw arguments
            record.msg, record.args = redact_tokens(f"{record.msg} {record.args!r}"), ()
            return True
        redacted = redact_tokens(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's default logging configuration with token redaction on its handlers."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_tokens"] = {"()": TokenRedactionFilter}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_tokens")
    return config


def configure_logging(level: str = "INFO", *, json_lines: bool = True) -> None:
    """Route every logger to stderr, as JSON lines for services, plain for the CLI; tokens of
    signed links never reach a log line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json_lines else logging.Formatter("%(levelname)s %(message)s")
    )
    handler.addFilter(TokenRedactionFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def configure_tracing(service_name: str, otlp_endpoint: str | None) -> None:
    """Install a tracer provider; spans go to OTLP when an endpoint is configured."""
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if otlp_endpoint:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found]
                OTLPSpanExporter,
            )
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError:
            logging.getLogger(__name__).warning(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set but opentelemetry-exporter-otlp is not "
                "installed; spans stay in process"
            )
        else:
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
