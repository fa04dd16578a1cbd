"""Reading a channel's webhook JSON (Zendesk, Intercom) by name, evaluating nothing in it."""

from __future__ import annotations

from typing import Any

from kruxt.models.enums import Channel

__all__ = ["BODY_MAX", "SUBJECT_MAX", "json_object", "json_text", "requester_email"]

# Intake's limits (kruxt.models.tickets): longer text from a channel is cut, not refused,
# because a refused webhook is dropped after the channel's retries and the customer's
# message would be lost.
SUBJECT_MAX = 300
BODY_MAX = 20_000


def json_object(data: dict[str, Any], key: str) -> dict[str, Any]:
    """``data[key]``, which must be an object.

    Raises:
        ValueError: it is missing or not an object.
    """
    value = data.get(key)
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be an object")
    return value


def json_text(value: Any) -> str:
    """Ids come as numbers or strings, text as strings; anything else reads as absent ("")."""
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)


def requester_email(email: str, channel: Channel, user_id: str) -> str:
    """``email``, or for a requester the channel knows without one (a Zendesk messaging
    user, an Intercom Messenger lead) an address named after their id there in a reserved
    domain (RFC 2606 ``.example``: never delivered to), e.g. ``503@no-email.zendesk.example``.

    Refusing the ticket would lose it (a channel does not retry a 4xx); its answers go back
    on the channel, never by e-mail, and the requester's id there is kept with it.
    """
    if email:
        return email
    local = user_id if user_id.isascii() and user_id.isalnum() else "unknown"
    return f"{local[:64]}@no-email.{channel.value}.example"
