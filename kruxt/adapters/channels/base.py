"""The port every customer channel implements."""

from __future__ import annotations

from typing import Protocol

from kruxt.models.channels import (
    ChannelEvent,
    ChannelIdentity,
    ChannelRequest,
    ChannelTicket,
    Delivery,
)
from kruxt.models.records import OutboundMessageResult

__all__ = ["CustomerChannel"]


class CustomerChannel(Protocol):
    """Where customers write and read; the workflow never knows which one a ticket uses."""

    def verify(self, request: ChannelRequest) -> ChannelIdentity:
        """Who sent ``request``; raises ``ChannelUnauthorized`` before anything is parsed."""
        ...

    def parse(self, request: ChannelRequest) -> ChannelEvent:
        """A verified request as a new ticket, a follow-up, a staff comment or nothing to do
        (pydantic refuses bad bodies)."""
        ...

    async def deliver(
        self, ticket: ChannelTicket, message: Delivery
    ) -> OutboundMessageResult | None:
        """Show ``message`` on the ticket's channel; a public reply says when it went out."""
        ...
