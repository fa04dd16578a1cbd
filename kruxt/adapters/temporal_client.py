"""Connecting to Temporal with the project's data converter and tracing."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverter,
    PayloadCodec,
    PayloadConverter,
)
from temporalio.service import RPCError, RPCStatusCode

if TYPE_CHECKING:
    from temporalio.api.failure.v1 import Failure

# More causes than anyone reads in the Web UI; a chain this long is a loop in all but name.
MAX_FAILURE_CAUSES = 20


class TemporalUnavailableError(Exception):
    """Temporal did not answer at the configured address."""


def data_converter(payload_codec: PayloadCodec | None) -> DataConverter:
    """The project's one data converter: pydantic payloads, encrypted by ``payload_codec``.

    With a codec, failure messages and stack traces are encoded too (they can quote ticket
    text); ``None`` is for clients that never carry a payload (health checks) and tests.
    """
    if payload_codec is None:
        return dataclasses.replace(
            pydantic_data_converter, failure_converter_class=BoundedCauseFailureConverter
        )
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=payload_codec,
        failure_converter_class=EncodedBoundedCauseFailureConverter,
    )


def cut_cause_loop(error: BaseException, limit: int = MAX_FAILURE_CAUSES) -> None:
    """End ``error``'s chain of causes before it repeats itself or passes ``limit`` links.

    The SDK turns an exception into a failure by recursing down ``__cause__`` (or an
    unsuppressed ``__context__``) with no guard. asyncpg can chain a reconnect's first error
    under its second by assigning ``__cause__`` by hand; with a loop there (seen once during a
    PostgreSQL restart) the SDK recorded only "Failed building exception result: maximum
    recursion depth exceeded", and the error itself was lost (a test converting such a loop
    with the SDK's converter alone crashed its interpreter: the protobuf message nests a
    thousand causes deep).
    """
    seen = {id(error)}
    link = error
    for _ in range(limit):
        after = link.__cause__ or (None if link.__suppress_context__ else link.__context__)
        if after is None:
            return
        if id(after) in seen:
            break
        seen.add(id(after))
        link = after
    link.__cause__ = None
    link.__suppress_context__ = True


class BoundedCauseFailureConverter(DefaultFailureConverter):
    """The SDK's default converter, safe from cause loops (see :func:`cut_cause_loop`)."""

    def to_failure(
        self, exception: BaseException, payload_converter: PayloadConverter, failure: Failure
    ) -> None:
        cut_cause_loop(exception)
        super().to_failure(exception, payload_converter, failure)


class EncodedBoundedCauseFailureConverter(BoundedCauseFailureConverter):
    """As ``DefaultFailureConverterWithEncodedAttributes``: messages and stack traces go in
    an encoded payload, so the codec encrypts them."""

    def __init__(self) -> None:
        super().__init__(encode_common_attributes=True)


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
