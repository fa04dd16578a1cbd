"""Logging as JSON lines with bearer links redacted, and OpenTelemetry tracing (OTLP when
configured)."""

from __future__ import annotations

import copy
import json
import logging
import re
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

if TYPE_CHECKING:
    from fastapi import FastAPI


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


def configure_tracing(
    service_name: str, otlp_endpoint: str | None, *, exporters: Sequence[SpanExporter] = ()
) -> TracerProvider:
    """Install the process's tracer provider; with somewhere to send spans, instrument the
    libraries too (:func:`instrument_libraries`, :func:`trace_app`).

    Spans go to OTLP over HTTP when ``otlp_endpoint`` is set (OTEL_EXPORTER_OTLP_ENDPOINT,
    ``/v1/traces`` appended as the OTLP spec says), and to ``exporters`` as they end (tests).
    Temporal's spans come from the ``TracingInterceptor`` every client carries
    (:mod:`kruxt.adapters.temporal_client`): one trace runs from the HTTP request through the
    workflow and its activities to PostgreSQL and the outside services' HTTP calls.
    """
    sending = bool(otlp_endpoint or exporters)
    # With nowhere to send them, spans are not recorded (Temporal's interceptor still makes
    # one per workflow task and activity): their ids still flow, at a fraction of the cost.
    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}),
        sampler=None if sending else ALWAYS_OFF,
    )
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = otlp_endpoint.rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    for exporter in exporters:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    # With nowhere to send them, the libraries' spans would only cost time (a span per query).
    if sending:
        instrument_libraries(provider)
    return provider


# Whether instrument_libraries ran (and was not undone): the API's apps are traced then.
_instrumented: TracerProvider | None = None


def instrument_libraries(provider: TracerProvider) -> None:
    """Spans for every asyncpg query and every outside call: httpx (OpenAI, Zendesk, Intercom,
    GitHub), aiohttp (Slack), urllib (SendGrid). The API's apps: :func:`trace_app`."""
    # Imported here: the CLI's commands log through this module and need none of them.
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.urllib import URLLibInstrumentor

    AsyncPGInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    AioHttpClientInstrumentor().instrument(tracer_provider=provider)
    URLLibInstrumentor().instrument(tracer_provider=provider)
    global _instrumented
    _instrumented = provider


def uninstrument_libraries() -> None:
    """Undo :func:`instrument_libraries` (tests)."""
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.urllib import URLLibInstrumentor

    AioHttpClientInstrumentor().uninstrument()
    URLLibInstrumentor().uninstrument()
    global _instrumented
    _instrumented = None

    AsyncPGInstrumentor().uninstrument()  # type: ignore[no-untyped-call]
    HTTPXClientInstrumentor().uninstrument()


def trace_app(app: FastAPI) -> None:
    """A server span for each request ``app`` serves, when the libraries are instrumented.

    Per app, not FastAPIInstrumentor's global patch: that replaces ``fastapi.FastAPI``, which
    the API's app class (fastapi-offline's) was derived from before any patch could run.
    """
    if _instrumented is not None:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, tracer_provider=_instrumented)
