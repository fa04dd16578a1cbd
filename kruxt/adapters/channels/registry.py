"""The channel of each :class:`~kruxt.models.enums.Channel`, checked complete at start."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from kruxt.adapters.channels.base import CustomerChannel
from kruxt.models.enums import Channel

__all__ = ["ChannelRegistry", "UnknownChannelError"]


class UnknownChannelError(Exception):
    """A ticket names a channel nothing is registered for."""


class ChannelRegistry:
    """Looks up the channel that delivers a ticket's messages; no ``if channel ==`` chains."""

    def __init__(self, channels: Mapping[Channel, CustomerChannel]) -> None:
        missing = [c.value for c in Channel if c not in channels]
        if missing:
            raise UnknownChannelError(f"no customer channel for {', '.join(missing)}")
        self._channels = MappingProxyType(dict(channels))

    @classmethod
    def thread_only(
        cls, channel: CustomerChannel, connected: Mapping[Channel, CustomerChannel] | None = None
    ) -> ChannelRegistry:
        """Every channel delivers into the ticket's thread, but those ``connected``.

        E-mail and CLI tickets are read from the same thread as in-app ones; Zendesk and
        Intercom deliver through their own entries when they are connected.
        """
        return cls({**dict.fromkeys(Channel, channel), **(connected or {})})

    def __getitem__(self, channel: Channel) -> CustomerChannel:
        """The channel registered for ``channel``."""
        return self._channels[channel]
