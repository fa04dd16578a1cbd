"""Connecting to Temporal with the project's data converter and tracing."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)
from temporalio.service import RPCError, RPCStatusCode


class TemporalUnavailableError(Exception):
    """Temporal did not answer at the configured address."""


def data_converter(payload_codec: PayloadCodec | None) -> DataConverter:
    """The project's one data converter: pydantic payloads, encrypted by ``payload_codec``.

    With a codec, failure messages and stack traces are encoded too (they can quote ticket
    text); ``None`` is for clients that never carry a payload (health checks) and tests.
    """
    if payload_codec is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=payload_codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


async def connect(
    address: str,
    *,
    payload_codec: PayloadCodec | None,
    namespace: str = "default",
    tls: bool = False,
    api_key: str | None = None,
) -> Client:
    """A client whose payloads are pydantic models, encrypted, and whose calls are traced.

    ``payload_codec`` has no default on purpose: every caller decides whether what it sends
    lands in history encrypted (``kruxt.bootstrap.temporal_from`` always passes one).
    """
    try:
        return await Client.connect(
            address,
            namespace=namespace,
            tls=tls or bool(api_key),
            api_key=api_key,
            data_converter=data_converter(payload_codec),
            interceptors=[TracingInterceptor()],
        )
    except RuntimeError as exc:  # the core SDK reports connection failures as RuntimeError
        raise TemporalUnavailableError(
            f"cannot reach Temporal at {address} (namespace {namespace}): {exc}"
        ) from exc


_UNAVAILABLE = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED}


@contextmanager
def unavailable_as_error(address: str = "Temporal") -> Iterator[None]:
    """Turn "cannot reach the server" failures into TemporalUnavailableError.

    A connected client reports an outage as an UNAVAILABLE RPCError; a lazy client that never
    connected reports it as RuntimeError. Callers answer both the same way (HTTP 503).
    """
    try:
        yield
    except RPCError as exc:
        if exc.status in _UNAVAILABLE:
            raise TemporalUnavailableError(f"{address} unavailable: {exc.message}") from exc
        raise
    except RuntimeError as exc:
        if "connect" in str(exc).lower():
            raise TemporalUnavailableError(f"{address} unavailable: {exc}") from exc
        raise
