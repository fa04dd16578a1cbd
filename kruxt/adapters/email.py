"""Outgoing mail: by SendGrid, or into a local outbox in development.

:mod:`kruxt.adapters.email_texts` writes every notification mail; a ``Mailer`` sends it.
``SendGridMailer`` talks to the SendGrid v3 API with the official client (blocking, so it
runs in a thread); ``OutboxMailer`` writes one RFC 5322 ``.eml`` file per mail and
announces the links, so the whole flow works in a browser with no mail service at all.
"""

from __future__ import annotations

import asyncio
import email.policy
import email.utils
import http.client
import json
import os
import secrets
import urllib.error
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage as MimeMessage
from pathlib import Path
from typing import Any, Protocol

import python_http_client.exceptions
import sendgrid
from pydantic import BaseModel, ConfigDict, Field

from kruxt.adapters.notifier import NotifyRejected, NotifyUnavailable

__all__ = [
    "ABOUT_HEADER",
    "DEV_SENDER",
    "LINK_HEADER",
    "EmailMessage",
    "MailError",
    "MailRejected",
    "MailUnavailable",
    "Mailer",
    "OutboxMailer",
    "SendGridMailer",
    "approval_link",
    "one_line",
]

DEV_SENDER = "autopilot@kruxt.localhost"
SENDER_NAME = "KRUXT Support Autopilot"
SENDGRID_HOST = "https://api.sendgrid.com"
SENDGRID_TIMEOUT_S = 15.0
APPROVAL_PATH = "/approvals/email/"
# Outbox mail only: what its links do (one "<label> <url>" header per link) and act on.
LINK_HEADER = "X-Kruxt-Link"
ABOUT_HEADER = "X-Kruxt-About"


class EmailMessage(BaseModel):
    """One mail to one person, with a plain-text and an HTML body."""

    model_config = ConfigDict(frozen=True)

    to: str
    to_name: str = ""
    subject: str
    text: str
    html: str
    links: dict[str, str] = Field(
        default_factory=dict,
        description="The actions the mail offers (label -> URL); announced by the outbox",
    )
    about: str = Field(
        default="",
        description="What the links act on, for whoever prints them ('auth login on ticket "
        "C8AC88BA'); never text from a ticket",
    )


class Mailer(Protocol):
    """Sends a mail, or raises ``MailUnavailable`` (retry later) / ``MailRejected``."""

    async def send(self, message: EmailMessage) -> None:
        """Hand the message over for delivery."""
        ...


class MailError(Exception):
    """The mail was not accepted for delivery."""


class MailUnavailable(MailError, NotifyUnavailable):
    """The mail service is unreachable, overloaded or failing: retrying may work."""


class MailRejected(MailError, NotifyRejected):
    """The mail service refused the request (bad key, bad sender, bad payload): do not retry."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


# --- links -------------------------------------------------------------------------------


def approval_link(public_base_url: str, token: str) -> str:
    """The URL of an approval link: ``<base>/approvals/email/<token>``."""
    return f"{public_base_url.rstrip('/')}{APPROVAL_PATH}{token}"


def one_line(text: str, limit: int) -> str:
    """``text`` on one line in at most ``limit`` characters, cut with "…"."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# --- SendGrid ------------------------------------------------------------------------------


class SendGridMailer:
    """Send through the SendGrid v3 API (``host`` points the client elsewhere, e.g. a fake)."""

    def __init__(
        self,
        api_key: str,
        sender: str,
        *,
        sender_name: str = SENDER_NAME,
        host: str | None = None,
        timeout_s: float = SENDGRID_TIMEOUT_S,
    ) -> None:
        if not api_key:
            # The client would silently fall back to $SENDGRID_API_KEY.
            raise ValueError("a SendGrid API key is required")
        self._api_key = api_key
        self._sender = sender
        self._sender_name = sender_name
        self._host = host or SENDGRID_HOST
        self._timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"SendGridMailer(sender={self._sender!r}, host={self._host!r})"

    def payload(self, message: EmailMessage) -> dict[str, Any]:
        """The ``/v3/mail/send`` request body."""
        to: dict[str, str] = {"email": message.to}
        if message.to_name:
            to["name"] = message.to_name
        return {
            "personalizations": [{"to": [to]}],
            "from": {"email": self._sender, "name": self._sender_name},
            "subject": message.subject,
            # text/plain must come first.
            "content": [
                {"type": "text/plain", "value": message.text},
                {"type": "text/html", "value": message.html},
            ],
            # Click tracking would route the personal links through SendGrid's redirector.
            "tracking_settings": {
                "click_tracking": {"enable": False, "enable_text": False},
                "open_tracking": {"enable": False},
            },
        }

    async def send(self, message: EmailMessage) -> None:
        """Send one mail; SendGrid answers 202 when it accepted it."""
        body = self.payload(message)
        try:
            await asyncio.to_thread(self._post, body)
        except python_http_client.exceptions.HTTPError as exc:
            raise _mail_error(exc) from exc
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            # URLError, timeouts, refused and reset connections: all worth a retry.
            raise MailUnavailable(f"SendGrid unreachable: {type(exc).__name__}: {exc}") from exc

    def _post(self, body: dict[str, Any]) -> None:
        # A client per call: the library's client mutates shared state while building URLs.
        client = sendgrid.SendGridAPIClient(api_key=self._api_key, host=self._host)
        client.client.timeout = self._timeout_s
        client.send(body)


def _mail_error(exc: Any) -> MailError:
    status = int(getattr(exc, "status_code", 0) or 0)
    detail = _sendgrid_errors(getattr(exc, "body", b""))
    message = f"SendGrid answered {status}: {detail}"
    if status in (408, 429) or status >= 500:
        headers = getattr(exc, "headers", None)
        retry_after = headers.get("Retry-After") if headers is not None else None
        return MailUnavailable(message, retry_after=_seconds(retry_after))
    return MailRejected(message, status=status)


def _sendgrid_errors(body: Any) -> str:
    """``{"errors": [{"message", "field"}]}`` as one line (or the raw start of the body)."""
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    try:
        errors = json.loads(raw)["errors"]
        return "; ".join(
            f"{e.get('field') + ': ' if e.get('field') else ''}{e.get('message', '')}"
            for e in errors
        )[:500]
    except (ValueError, KeyError, TypeError, AttributeError):
        return raw[:200] or "no details"


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


# --- the development outbox ----------------------------------------------------------------


class OutboxMailer:
    """Write each mail to ``directory`` as ``<UTC time>-<random>.eml`` and announce its links."""

    def __init__(
        self,
        directory: Path,
        *,
        sender: str = DEV_SENDER,
        sender_name: str = SENDER_NAME,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        self.directory = directory
        self._sender = sender
        self._sender_name = sender_name
        self._announce = announce

    def to_mime(self, message: EmailMessage) -> MimeMessage:
        """The message as RFC 5322 (multipart/alternative: text, then HTML)."""
        mime = MimeMessage(policy=email.policy.SMTP)
        mime["From"] = email.utils.formataddr((self._sender_name, self._sender))
        mime["To"] = email.utils.formataddr((message.to_name, message.to))
        mime["Subject"] = one_line(message.subject, 200)
        mime["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
        mime["Message-ID"] = email.utils.make_msgid(domain="kruxt.localhost")
        # For `kruxt dev`, which prints each link with what it does, for whom, on what.
        if message.about:
            mime[ABOUT_HEADER] = one_line(message.about, 200)
        for label, url in message.links.items():
            mime[LINK_HEADER] = f"{one_line(label, 40)} {url}"
        mime.set_content(message.text)
        mime.add_alternative(message.html, subtype="html")
        return mime

    async def send(self, message: EmailMessage) -> None:
        """Write the mail; then print (announce) where it is and the links it carries."""
        path = await asyncio.to_thread(self._write, self.to_mime(message))
        if self._announce is not None:
            lines = [f"mail to {message.to}: {one_line(message.subject, 200)}  [{path}]"]
            lines += [f"  {label}: {url}" for label, url in message.links.items()]
            self._announce("\n".join(lines))

    def _write(self, mime: MimeMessage) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(4)}.eml"
        final = self.directory / name
        partial = self.directory / f".{name}.part"
        partial.write_bytes(mime.as_bytes())
        os.replace(partial, final)  # readers never see half a mail
        return final
