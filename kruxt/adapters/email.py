"""Outgoing mail: approval requests by SendGrid, or into a local outbox in development.

``render_approval_email`` turns an approval request into a message; a ``Mailer`` sends it.
``SendGridMailer`` talks to the SendGrid v3 API with the official client (blocking, so it
runs in a thread); ``OutboxMailer`` writes one RFC 5322 ``.eml`` file per mail and
announces the links, so the whole flow works in a browser with no mail service at all.
"""

from __future__ import annotations

import asyncio
import email.policy
import email.utils
import html
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

from kruxt.models.approvals import ApprovalKind, ApprovalRequest

__all__ = [
    "DEV_SENDER",
    "EmailMessage",
    "MailError",
    "MailRejected",
    "MailUnavailable",
    "Mailer",
    "OutboxMailer",
    "SendGridMailer",
    "action_title",
    "approval_link",
    "format_utc",
    "preview_lines",
    "render_approval_email",
]

DEV_SENDER = "autopilot@kruxt.localhost"
SENDER_NAME = "KRUXT Support Autopilot"
SENDGRID_HOST = "https://api.sendgrid.com"
SENDGRID_TIMEOUT_S = 15.0
APPROVAL_PATH = "/approvals/email/"


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


class Mailer(Protocol):
    """Sends a mail, or raises ``MailUnavailable`` (retry later) / ``MailRejected``."""

    async def send(self, message: EmailMessage) -> None:
        """Hand the message over for delivery."""
        ...


class MailError(Exception):
    """The mail was not accepted for delivery."""


class MailUnavailable(MailError):
    """The mail service is unreachable, overloaded or failing: retrying may work."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class MailRejected(MailError):
    """The mail service refused the request (bad key, bad sender, bad payload): do not retry."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


# --- rendering -----------------------------------------------------------------------------


def approval_link(public_base_url: str, token: str) -> str:
    """The URL of an approval link: ``<base>/approvals/email/<token>``."""
    return f"{public_base_url.rstrip('/')}{APPROVAL_PATH}{token}"


def format_utc(moment: datetime) -> str:
    """``2025-03-01 14:30 UTC``."""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def action_title(request: ApprovalRequest) -> str:
    """What is asked, in a few words: ``auth login`` or ``roll back auth login``."""
    playbook = request.playbook.replace("_", " ")
    return f"roll back {playbook}" if request.kind is ApprovalKind.ROLLBACK else playbook


def preview_lines(preview: list[dict[str, Any]]) -> list[str]:
    """The dry-run preview, one line per step: ``s1: before {...}; after {...}``."""
    lines = []
    for number, item in enumerate(preview, start=1):
        step = str(item.get("step", number))
        parts = [f"{key} {_compact(value)}" for key, value in item.items() if key != "step"]
        lines.append(f"{step}: {'; '.join(parts) or 'no change previewed'}")
    return lines


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def _one_line(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def render_approval_email(
    request: ApprovalRequest,
    *,
    approver_email: str,
    approver_name: str,
    approve_url: str,
    reject_url: str,
) -> EmailMessage:
    """The approval request as a mail with its two personal links.

    Everything taken from the request is escaped in the HTML part: summaries and drafts
    come from customers and models, not from us.
    """
    ticket = str(request.ticket_id)[:8]
    subject = _one_line(
        f"[{request.severity.value}] Approve: {action_title(request)} for ticket {ticket}"
        f" ({request.summary})",
        150,
    )
    deadline = format_utc(request.expires_at)
    preview = preview_lines(request.preview) or ["(no dry-run preview)"]
    facts = (
        f"Severity {request.severity.value} · triage confidence {request.confidence:.0%} · "
        f"playbook {request.playbook} · needs role {request.required_role.value}"
    )
    how = (
        "Each link opens a page that shows the request and asks you to confirm: nothing is "
        f"decided until you press the button there. The links are yours alone, work once and "
        f"expire {deadline}. Please do not forward this mail."
    )
    sections: list[tuple[str, str]] = [
        ("Technical explanation", request.technical_explanation),
        ("Dry-run preview", "\n".join(preview)),
        ("Rollback plan", request.rollback_plan),
    ]
    if request.draft_reply:
        sections.append(("Drafted reply to the customer", request.draft_reply))

    text_lines = [
        f"Hi {approver_name},",
        "",
        request.plain_explanation,
        "",
        f"Approve: {approve_url}",
        f"Reject:  {reject_url}",
        "",
        how,
        "",
        f"Ticket {request.ticket_id}: {request.summary}",
        facts,
        f"Decide by: {deadline} (after that the request expires and nothing is changed)",
    ]
    for title, body in sections:
        text_lines += ["", title, "-" * len(title), body]
    text = "\n".join(text_lines) + "\n"

    e = html.escape
    pre = "white-space:pre-wrap;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px"
    button = (
        "display:inline-block;padding:12px 22px;margin:4px 8px 4px 0;border-radius:6px;"
        "color:#fff;text-decoration:none;font-weight:bold;background:"
    )
    html_sections = "".join(
        f'<h3 style="margin:20px 0 6px">{e(title)}</h3><div style="{pre}">{e(body)}</div>'
        for title, body in sections
    )
    html_body = (
        "<!doctype html><html><body "
        'style="font-family:-apple-system,Segoe UI,Roboto,sans-serif;max-width:640px;'
        'margin:0 auto;padding:16px;color:#1a1a1a;line-height:1.45">'
        f"<p>Hi {e(approver_name)},</p>"
        f'<p style="font-size:16px;white-space:pre-wrap">{e(request.plain_explanation)}</p>'
        f'<p><a href="{e(approve_url)}" style="{button}#1a7f37">Approve…</a>'
        f'<a href="{e(reject_url)}" style="{button}#b42318">Reject…</a></p>'
        f'<p style="font-size:13px;color:#555">{e(how)}</p>'
        f'<h3 style="margin:20px 0 6px">Ticket {e(ticket)}: {e(request.summary)}</h3>'
        f"<p>{e(facts)}<br>Decide by: <strong>{e(deadline)}</strong></p>"
        f"{html_sections}"
        "</body></html>"
    )
    return EmailMessage(
        to=approver_email,
        to_name=approver_name,
        subject=subject,
        text=text,
        html=html_body,
        links={"approve": approve_url, "reject": reject_url},
    )


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
        mime["Subject"] = _one_line(message.subject, 200)
        mime["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
        mime["Message-ID"] = email.utils.make_msgid(domain="kruxt.localhost")
        mime.set_content(message.text)
        mime.add_alternative(message.html, subtype="html")
        return mime

    async def send(self, message: EmailMessage) -> None:
        """Write the mail; then print (announce) where it is and the links it carries."""
        path = await asyncio.to_thread(self._write, self.to_mime(message))
        if self._announce is not None:
            lines = [f"mail to {message.to}: {_one_line(message.subject, 200)}  [{path}]"]
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
