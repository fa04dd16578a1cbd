"""The one route every customer channel's webhook is (``POST /webhooks/<channel>``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request

from kruxt.starter.api.channel_webhooks import ChannelWebhook

__all__ = ["webhook_router"]


def webhook_router(
    path: str, get_webhook: Callable[[Request], ChannelWebhook], *, description: str
) -> APIRouter:
    """``POST path`` handing each request to ``get_webhook``'s channel (which answers 404
    when the channel is off); ``description`` is the route's OpenAPI text."""
    router = APIRouter(tags=["channels"])

    # Called here, not declared as Depends: under postponed annotations FastAPI cannot
    # resolve a closure's local in a signature, and would read the argument as a query field.
    async def webhook(request: Request) -> dict[str, Any]:
        return await get_webhook(request).accept(request)

    name = path.strip("/").replace("/", "_")
    router.add_api_route(path, webhook, methods=["POST"], name=name, description=description)
    return router
