"""The Intercom calls the autopilot makes, through the maintained ``python-intercom`` client.

``python-intercom`` (generated from Intercom's API definition) takes any ``base_url``, so
tests point it at a local server; it is async on ``httpx`` and retries nothing unless asked
(``max_retries`` is 0 by default), so a 429 reaches the activity, which hands its wait to
Temporal. Two endpoints are all the autopilot needs: a reply (public comment or internal note)
and closing the conversation.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import httpx
from intercom import AdminReplyConversationRequest, AsyncIntercom
from intercom.conversations import ConversationsManageRequestBody_Close
from intercom.core.api_error import ApiError

from kruxt.models.channels import DeliveryDeferred, DeliveryRefused

__all__ = ["DEFAULT_API_URL", "IntercomClient"]

DEFAULT_API_URL = "https://api.intercom.io"
# The REST API version the requests are written against (sent as ``Intercom-Version``), so
# a change of the workspace's default version does not change what the autopilot sends.
API_VERSION = "2.11"
# Per call; the activity's own timeout and retries bound the whole delivery.
TIMEOUT_S = 20.0


class IntercomClient:
    """Replies and closes as one admin (``INTERCOM_ADMIN_ID``), with a bearer access token.

    Errors come out as the channel port's: ``DeliveryDeferred`` for what a later attempt may
    get through (429 with its wait, 5xx, timeouts, connection errors), ``DeliveryRefused`` for
    the 4xx that will not change.
    """

    def __init__(self, base_url: str, *, access_token: str, admin_id: str) -> None:
        self._http = httpx.AsyncClient(timeout=TIMEOUT_S)
        self._api = AsyncIntercom(
            base_url=base_url.rstrip("/"),
            token=access_token,
            headers={"Intercom-Version": API_VERSION},
            httpx_client=self._http,
        )
        self.admin_id = admin_id

    async def reply(self, conversation_id: str, *, body: str, note: bool) -> str | None:
        """Post ``body`` as the admin: a comment the customer sees, or a note for the team.

        Returns the new part's id (the last part of the conversation Intercom answers with).
        """
        request = AdminReplyConversationRequest(
            message_type="note" if note else "comment", admin_id=self.admin_id, body=body
        )
        try:
            conversation = await self._api.conversations.reply(conversation_id, request=request)
        except (ApiError, httpx.HTTPError) as exc:
            raise _as_delivery_error(exc, "reply") from None
        parts = conversation.conversation_parts
        listed = parts.conversation_parts if parts is not None else None
        return str(listed[-1].id) if listed else None

    async def close(self, conversation_id: str) -> None:
        """Close the conversation as the admin (``POST /conversations/{id}/parts``)."""
        request = ConversationsManageRequestBody_Close(admin_id=self.admin_id)
        try:
            await self._api.conversations.manage(conversation_id, request=request)
        except (ApiError, httpx.HTTPError) as exc:
            raise _as_delivery_error(exc, "close") from None

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()


def _as_delivery_error(exc: ApiError | httpx.HTTPError, what: str) -> Exception:
    """The channel port's error for a failed call: the status and the call only. Raised
    ``from None``: ``ApiError``'s text is the response body, which can echo ticket text, and
    a chained cause would carry it into the worker's log."""
    if isinstance(exc, httpx.HTTPError):  # timeouts, refused connections, broken streams
        return DeliveryDeferred(f"intercom unreachable on {what}: {type(exc).__name__}")
    status = exc.status_code or 0
    if status == 429:
        return DeliveryDeferred(
            f"intercom rate limit on {what}", retry_after=retry_after(exc.headers or {})
        )
    if status >= 500 or status == 0:
        return DeliveryDeferred(f"intercom answered {status} to {what}")
    return DeliveryRefused(f"intercom answered {status} to {what}")


def retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """The wait a 429 asks for: ``Retry-After`` seconds, else until ``X-RateLimit-Reset``.

    Intercom documents ``X-RateLimit-Reset`` (a Unix time); ``Retry-After`` is honoured first
    when present. None when neither is readable (Temporal's backoff applies).
    """
    lower = {k.lower(): v.strip() for k, v in headers.items()}
    seconds = lower.get("retry-after", "")
    if seconds.isascii() and seconds.isdigit():
        return float(seconds)
    reset = lower.get("x-ratelimit-reset", "")
    if reset.isascii() and reset.isdigit():
        return max(0.0, float(reset) - (time.time() if now is None else now))
    return None
