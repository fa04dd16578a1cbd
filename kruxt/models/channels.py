"""What a customer channel receives, hands to intake, and is asked to deliver.

A channel (the in-app API, later Zendesk and Intercom) verifies a request, parses it into a new
ticket or a follow-up, and delivers the ticket's messages back. These are the shapes crossing
that port; the workflow never sees which channel a ticket came from.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from kruxt.models.enums import Channel, TicketStatus
from kruxt.models.records import MessageKind
from kruxt.models.tickets import NewMessageRequest, NewTicketRequest, StaffChannel


class ChannelRequest(BaseModel):
    """One request as the channel's endpoint received it (header names lower-case)."""

    model_config = ConfigDict(frozen=True)

    headers: dict[str, str] = Field(default_factory=dict)
    body: bytes = b""
    ticket_id: uuid.UUID | None = Field(
        default=None, description="The ticket a follow-up is addressed to, when the URL names one"
    )


class ChannelIdentity(BaseModel):
    """Who a verified request came from: the channel, and its caller there."""

    channel: Channel
    caller: str


class ChannelUnauthorized(Exception):
    """The request does not carry the channel's credentials; nothing in it may be read."""


class NewTicket(BaseModel):
    """A parsed request that opens a ticket."""

    channel: Channel
    ticket: NewTicketRequest
    event_keys: list[str] = Field(
        default_factory=list, description="The channel's ids of this event: seen once, handled once"
    )


class FollowUp(BaseModel):
    """A parsed request that adds a customer's message to an existing ticket."""

    channel: Channel
    ticket_id: uuid.UUID
    message: NewMessageRequest
    event_keys: list[str] = Field(default_factory=list)
    opening: NewTicketRequest | None = Field(
        default=None,
        description="The ticket to open with this message when it arrives before its ticket",
    )


Parsed = NewTicket | FollowUp


class StaffComment(BaseModel):
    """A message on the ticket by an agent or by the autopilot: recorded, never the customer's."""

    channel: Channel
    ticket_id: uuid.UUID
    message_key: str
    author: str
    body: str
    public: bool
    event_keys: list[str] = Field(default_factory=list)


class Ignored(BaseModel):
    """A verified event the autopilot has nothing to do with (acknowledged all the same)."""

    channel: Channel
    reason: str


# Everything a channel's webhook can carry; the in-app API only ever parses ``Parsed``.
ChannelEvent = NewTicket | FollowUp | StaffComment | Ignored


class DeliveryRefused(Exception):
    """The channel refused a delivery for good (a 4xx): retrying sends the same refusal."""


class DeliveryDeferred(Exception):
    """The channel cannot take a delivery now (429, 5xx, unreachable): try again later.

    ``retry_after`` is the wait the channel asked for (a 429's ``Retry-After``), if any.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeliveryKind(StrEnum):
    """What the channel is asked to show: to the customer, to staff only, or a status."""

    PUBLIC_REPLY = "public_reply"
    INTERNAL_NOTE = "internal_note"
    STATUS = "status"


class ChannelTicket(BaseModel):
    """The ticket a delivery goes to, as its channel knows it."""

    ticket_id: uuid.UUID
    channel: Channel


class Delivery(BaseModel):
    """One message for a ticket's channel; ``idempotency_key`` makes a retry deliver once."""

    kind: DeliveryKind
    message_id: uuid.UUID
    body: str
    idempotency_key: str
    message_kind: MessageKind = Field(description="The thread's kind (reply, acknowledgement ...)")
    author: str = "kruxt-support"
    article_ids: list[str] = Field(default_factory=list)
    status: TicketStatus | None = Field(
        default=None, description="The ticket's new status (a STATUS delivery)"
    )
    via: StaffChannel = None
