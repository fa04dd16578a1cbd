"""A small typed client of the Zendesk Support API (httpx against the documented endpoints).

Not ``zenpy``: it builds ``https://{subdomain}.{domain}`` (the scheme changes only through a
process-wide environment variable, so a local test server cannot be named), it is synchronous
(``requests``), and it sleeps through 429s inside the call, where the activity must hand the
``Retry-After`` to Temporal instead. Two endpoints are all the autopilot needs.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import httpx

from kruxt.models.channels import DeliveryDeferred, DeliveryRefused

__all__ = ["ZendeskClient", "ZendeskUser"]

DEFAULT_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class ZendeskUser:
    """A Zendesk user as the ticket's requester."""

    id: str
    email: str
    name: str


class ZendeskClient:
    """``PUT /api/v2/tickets/{id}.json`` and ``GET /api/v2/users/{id}.json``, API-token auth.

    Errors come out as the channel port's: ``DeliveryDeferred`` for what a later attempt may
    get through (429 with its ``Retry-After``, 5xx, timeouts, connection errors),
    ``DeliveryRefused`` for the 4xx that will not change.
    """

    def __init__(
        self,
        base_url: str,
        *,
        email: str,
        api_token: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        # Zendesk's API-token scheme: basic auth of "{email}/token" and the token.
        credentials = base64.b64encode(f"{email}/token:{api_token}".encode()).decode()
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Basic {credentials}", "Accept": "application/json"},
            timeout=timeout_s,
            transport=transport,
        )

    async def update_ticket(
        self, ticket_id: str, *, comment: str | None, public: bool, status: str | None
    ) -> str | None:
        """Add a comment and/or set the status in one update; the new comment's id, if any."""
        ticket: dict[str, Any] = {}
        if comment is not None:
            ticket["comment"] = {"body": comment, "public": public}
        if status is not None:
            ticket["status"] = status
        data = await self._call("PUT", f"/api/v2/tickets/{ticket_id}.json", {"ticket": ticket})
        events = (data.get("audit") or {}).get("events") or []
        ids = [str(e["id"]) for e in events if e.get("type") == "Comment" and "id" in e]
        return ids[0] if ids else None

    async def user(self, user_id: str) -> ZendeskUser:
        """A user by id (a requester named only by id in an event-subscription payload);
        ``"me"`` is the API user itself."""
        data = await self._call("GET", f"/api/v2/users/{user_id}.json", None)
        user = data.get("user") or {}
        return ZendeskUser(
            id=str(user.get("id", user_id)),
            email=str(user.get("email") or ""),
            name=str(user.get("name") or ""),
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _call(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        try:
            response = await self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:  # timeouts, refused connections, broken streams
            raise DeliveryDeferred(f"zendesk unreachable: {type(exc).__name__}") from exc
        where = f"{method} {path.split('?', 1)[0]}"
        if response.status_code == 429:
            raise DeliveryDeferred(
                f"zendesk rate limit on {where}",
                retry_after=_seconds(response.headers.get("retry-after")),
            )
        if response.status_code >= 500:
            raise DeliveryDeferred(f"zendesk answered {response.status_code} to {where}")
        if response.status_code >= 400:
            # The body can echo ticket text: the status and the path only.
            raise DeliveryRefused(f"zendesk answered {response.status_code} to {where}")
        try:
            data = response.json()
        except ValueError as exc:
            raise DeliveryDeferred(f"zendesk answered {where} with no JSON") from exc
        return data if isinstance(data, dict) else {}


def _seconds(value: str | None) -> float | None:
    """``Retry-After`` in seconds (Zendesk sends an integer); None when absent or unreadable."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
