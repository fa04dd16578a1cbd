"""``POST /webhooks/intercom``: an Intercom app's signed notifications (see
``kruxt.adapters.channels.intercom`` for the topics and the signature). Off, it answers 404:
no client secret, no channel."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request

from kruxt.starter.api.channel_webhooks import ChannelWebhook
from kruxt.starter.api.webhook_routes import webhook_router

__all__ = ["intercom_router"]


def intercom_router(get_webhook: Callable[[Request], ChannelWebhook]) -> APIRouter:
    """The Intercom webhook's route; ``get_webhook`` answers 404 when the channel is off."""
    return webhook_router(
        "/webhooks/intercom",
        get_webhook,
        description="A conversation opened or replied to, signed with the app's client secret; "
        "the `ping` topic and anything else are 200 and ignored, a redelivery 200 and a "
        "duplicate.",
    )
