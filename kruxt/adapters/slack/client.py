"""The Slack Web API: typed errors (retry or not), where a message landed, response URLs.

The client is slack_sdk's ``AsyncWebClient``, built by the composition root with ``token=``
and ``base_url=`` (tests point it at a local fake). Every call goes through :func:`call`,
so a failure is always :class:`SlackUnavailable` (retry) or :class:`SlackRejected` (do not).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import aiohttp
import httpx
from slack_sdk.errors import SlackApiError

from kruxt.adapters.notifier import MessageRef, NotifyRejected, NotifyUnavailable

__all__ = [
    "SlackError",
    "SlackMessageRef",
    "SlackRejected",
    "SlackUnavailable",
    "call",
    "post_to_response_url",
]

_RETRYABLE_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# What slack_sdk's async client raises: Slack's answer, or no answer at all.
_ERRORS = (SlackApiError, aiohttp.ClientError, TimeoutError, OSError)

T = TypeVar("T")


class SlackError(Exception):
    """A Slack Web API call failed; ``error`` is Slack's error code."""

    def __init__(self, method: str, error: str, *, status: int | None = None) -> None:
        super().__init__(
            f"slack {method} failed: {error}" + (f" (HTTP {status})" if status else "")
        )
        self.method = method
        self.error = error
        self.status = status


class SlackUnavailable(SlackError, NotifyUnavailable):
    """Worth retrying: rate limited (wait ``retry_after`` seconds), Slack 5xx, no connection."""

    def __init__(
        self,
        method: str,
        error: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(method, error, status=status)
        self.retry_after = retry_after


class SlackRejected(SlackError, NotifyRejected):
    """Retrying cannot help: invalid_auth, channel_not_found, invalid_blocks, expired trigger..."""


def _map_error(method: str, exc: Exception) -> SlackError:
    """Slack's (or the network's) failure as a typed error."""
    if isinstance(exc, SlackApiError):
        response = exc.response
        status = getattr(response, "status_code", None)
        data = getattr(response, "data", None)
        error = str(data.get("error") or "") if isinstance(data, dict) else ""
        if status == 429 or error == "ratelimited":
            headers = getattr(response, "headers", None) or {}
            return SlackUnavailable(
                method,
                error or "ratelimited",
                status=status,
                retry_after=_retry_after(headers.get("Retry-After")),
            )
        if (status is not None and status >= 500) or error in _RETRYABLE_ERRORS:
            return SlackUnavailable(method, error or "server_error", status=status)
        return SlackRejected(method, error or "unknown_error", status=status)
    return SlackUnavailable(method, f"connection: {type(exc).__name__}: {exc}")


def _retry_after(value: object) -> float | None:
    try:
        return max(0.0, float(str(value))) if value is not None else None
    except ValueError:
        return None


async def call(method: str, request: Awaitable[T]) -> T:
    """Await one Web API call (``method`` names it in errors); failures become typed."""
    try:
        return await request
    except _ERRORS as exc:
        raise _map_error(method, exc) from exc


# Where a Slack message landed: the chat port's reference, under its historical name.
SlackMessageRef = MessageRef


async def post_to_response_url(url: str, text: str, *, timeout_s: float = 5.0) -> None:
    """An ephemeral reply through an interaction's ``response_url`` (only the clicker sees it)."""
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"not a response_url: {url!r}")
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        response = await client.post(
            url,
            json={"response_type": "ephemeral", "replace_original": False, "text": text},
        )
        response.raise_for_status()
