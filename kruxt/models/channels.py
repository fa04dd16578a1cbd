"""What a customer channel receives, hands to intake, and is asked to deliver.

A channel (the in-app API, later Zendesk and Intercom) verifies a request, parses it into a new
ticket or a follow-up, and delivers the ticket's messages back. These are the shapes crossing
that port; the workflow never sees which channel a ticket came from.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from kruxt.models.enums import Channel
from kruxt.models.records import MessageKind
from kruxt.models.tickets import NewMessageRequest, NewTicketRequest


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


class FollowUp(BaseModel):
    """A parsed request that adds a customer's message to an existing ticket."""

    channel: Channel
    ticket_id: uuid.UUID
    message: NewMessageRequest


Parsed = NewTicket | FollowUp


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
