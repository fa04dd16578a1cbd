"""Customer channels behind one port: verify a request, parse it, deliver messages back.

One module per channel (the in-app API today; Zendesk and Intercom next); ``registry`` picks
the one of a ticket's :class:`~kruxt.models.enums.Channel`.
"""

from kruxt.adapters.channels.base import CustomerChannel
from kruxt.adapters.channels.in_app import InAppChannel
from kruxt.adapters.channels.registry import ChannelRegistry, UnknownChannelError

__all__ = ["ChannelRegistry", "CustomerChannel", "InAppChannel", "UnknownChannelError"]
