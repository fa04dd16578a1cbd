"""``POST /webhooks/zendesk``: Zendesk's signed ticket events (see ``kruxt.adapters.channels.
zendesk`` for the shapes and the signature). Off, it answers 404: no secret, no channel."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request

from kruxt.starter.api.channel_webhooks import ChannelWebhook
from kruxt.starter.api.webhook_routes import webhook_router

__all__ = ["zendesk_router"]


def zendesk_router(get_webhook: Callable[[Request], ChannelWebhook]) -> APIRouter:
    """The Zendesk webhook's route; ``get_webhook`` answers 404 when the channel is off."""
    return webhook_router(
        "/webhooks/zendesk",
        get_webhook,
        description="A ticket created or a comment added, signed by Zendesk; anything else is "
        "200 and ignored, a redelivery 200 and a duplicate.",
    )
