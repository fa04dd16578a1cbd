"""The in-app channel: the app calls ``/v1/tickets`` with a bearer token and reads the thread.

Delivering is storing: the app shows the ticket's thread from ``support_ticket_messages``, so a
public reply is an outbound message, an internal note a staff-only one, and a status change is
already on the ticket row (nothing more to send).
"""

from __future__ import annotations

import hmac
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from kruxt.adapters import untrusted_json
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.models import channels as ch
from kruxt.models.enums import Channel
from kruxt.models.records import OutboundMessageResult, ThreadMessage
from kruxt.models.tickets import NewMessageRequest, NewTicketRequest

__all__ = ["InAppChannel"]

M = TypeVar("M", bound=BaseModel)


def bearer_token(authorization: str) -> str:
    """The credentials of an ``Authorization: Bearer <token>`` header, else "".

    Read as FastAPI's ``HTTPBearer`` reads it: the scheme case-insensitive, the rest after the
    first space, stripped.
    """
    scheme, _, credentials = authorization.partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


def _read_json(body: bytes, model: type[M]) -> M:
    """``body`` as ``model``, read by Python's JSON reader as FastAPI reads request bodies.

    pydantic's own reader refuses some text Python's takes (a lone surrogate escape); read
    this way, the model's validators refuse it instead, naming the field it is in.
    """
    try:
        data = untrusted_json.loads(body)
    except ValueError as exc:  # not JSON, or not UTF-8
        error = {"type": "json_invalid", "loc": (), "input": body, "ctx": {"error": str(exc)}}
        raise ValidationError.from_exception_data(model.__name__, [error]) from exc  # type: ignore[list-item]
    return model.model_validate(data)


class InAppChannel:
    """The first :class:`~kruxt.adapters.channels.base.CustomerChannel`.

    ``intake_token`` is the app's shared bearer token (``KRUXT_INTAKE_TOKEN``); an empty one
    verifies nobody, so a worker built without it can deliver but never accept a request.
    """

    channel = Channel.IN_APP

    def __init__(self, store: TicketStore, *, intake_token: str = "") -> None:
        self._store = store
        self._token = intake_token

    def verify(self, request: ch.ChannelRequest) -> ch.ChannelIdentity:
        """The caller is the app when it presents the intake token (compared in constant time)."""
        presented = bearer_token(request.headers.get("authorization", ""))
        if not presented or not self._token:
            raise ch.ChannelUnauthorized("a valid bearer token is required")
        if not hmac.compare_digest(presented.encode(), self._token.encode()):
            raise ch.ChannelUnauthorized("a valid bearer token is required")
        return ch.ChannelIdentity(channel=self.channel, caller="app")

    def parse(self, request: ch.ChannelRequest) -> ch.Parsed:
        """``POST /v1/tickets`` opens a ticket; a body for a named ticket is its follow-up."""
        if request.ticket_id is None:
            ticket = _read_json(request.body, NewTicketRequest)
            return ch.NewTicket(channel=self.channel, ticket=ticket)
        message = _read_json(request.body, NewMessageRequest)
        return ch.FollowUp(channel=self.channel, ticket_id=request.ticket_id, message=message)

    async def deliver(
        self, ticket: ch.ChannelTicket, message: ch.Delivery
    ) -> OutboundMessageResult | None:
        """Store the message in the ticket's thread (a retry under the same key stores once)."""
        written = ThreadMessage(
            ticket_id=ticket.ticket_id,
            message_id=message.message_id,
            kind=message.message_kind,
            body=message.body,
            author=message.author,
            article_ids=message.article_ids,
            via=message.via,
        )
        key = message.idempotency_key
        if message.kind is ch.DeliveryKind.PUBLIC_REPLY:
            return await self._store.record_outbound_message(written, idempotency_key=key)
        if message.kind is ch.DeliveryKind.INTERNAL_NOTE:
            await self._store.record_internal_note(written, idempotency_key=key)
        # A status is on the ticket row already; the app reads it with the thread.
        return None
