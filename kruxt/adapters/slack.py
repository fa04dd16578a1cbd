"""Slack for the approval gate: the Block Kit request, its closing update, modals, signatures.

A founder reads these messages on a phone at 3 a.m.: the plain explanation comes first and
short; the technical details are compact (context blocks, a code block of the dry-run
preview); nothing ever exceeds Slack's limits (3000 characters a text, 50 blocks), long
texts are cut with "…". Text that came from a ticket is escaped, so a customer cannot
@-mention the channel or forge links through it.

The Web API client is slack_sdk's ``AsyncWebClient``, built by the caller with ``token=``
and ``base_url=`` (tests point it at a local fake). Requests from Slack are checked with
:func:`verify_slack_request` before anything reads them.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import aiohttp
import httpx
from pydantic import BaseModel, ConfigDict
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import Clock, SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from kruxt.models.approvals import ApprovalKind, ApprovalRequest, ApprovalStatus
from kruxt.models.enums import Category, Priority

__all__ = [
    "ACTION_APPROVE",
    "ACTION_OPEN_TICKET",
    "ACTION_REJECT",
    "ACTION_TRIAGE_WRONG",
    "CATEGORY_ACTION",
    "CATEGORY_BLOCK",
    "MAX_BLOCKS",
    "MAX_SKEW_S",
    "MAX_TEXT",
    "NOTE_ACTION",
    "NOTE_BLOCK",
    "REASON_ACTION",
    "REASON_BLOCK",
    "SEVERITY_ACTION",
    "SEVERITY_BLOCK",
    "VIEW_REJECT",
    "VIEW_TRIAGE_WRONG",
    "ModalKind",
    "SlackApprovals",
    "SlackError",
    "SlackMessageRef",
    "SlackRejected",
    "SlackSignatureError",
    "SlackUnavailable",
    "approval_blocks",
    "decided_blocks",
    "decided_line",
    "post_to_response_url",
    "reminder_text",
    "verify_slack_request",
]

log = logging.getLogger(__name__)

# Slack's limits (https://api.slack.com/reference/block-kit/blocks).
MAX_BLOCKS = 50
MAX_TEXT = 3000
MAX_HEADER = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_NOTIFICATION = 300  # the message's `text`: what a phone's lock screen shows
MAX_DRAFT = 1500
MAX_MODAL_TITLE = 24

# Requests from Slack older (or newer) than this are refused: a replay guard.
MAX_SKEW_S = 5 * 60

ACTION_APPROVE = "approval_approve"
ACTION_REJECT = "approval_reject"
ACTION_TRIAGE_WRONG = "approval_triage_wrong"
ACTION_OPEN_TICKET = "approval_open_ticket"
ACTIONS_BLOCK = "approval_actions"

VIEW_REJECT = "approval_reject_reason"
VIEW_TRIAGE_WRONG = "approval_triage_wrong"
REASON_BLOCK = "reason"
REASON_ACTION = "reason_input"
CATEGORY_BLOCK = "category"
CATEGORY_ACTION = "category_select"
SEVERITY_BLOCK = "severity"
SEVERITY_ACTION = "severity_select"
NOTE_BLOCK = "note"
NOTE_ACTION = "note_input"

ModalKind = Literal["reject", "triage_wrong"]

_RETRYABLE_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


# --- errors -------------------------------------------------------------------------------


class SlackError(Exception):
    """A Slack Web API call failed; ``error`` is Slack's error code."""

    def __init__(self, method: str, error: str, *, status: int | None = None) -> None:
        super().__init__(
            f"slack {method} failed: {error}" + (f" (HTTP {status})" if status else "")
        )
        self.method = method
        self.error = error
        self.status = status


class SlackUnavailable(SlackError):
    """Worth retrying: rate limited (wait ``retry_after`` seconds), Slack 5xx, no connection."""

    def __init__(
        self,
        method: str,
        error: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(method, error, status=status)
        self.retry_after = retry_after


class SlackRejected(SlackError):
    """Retrying cannot help: invalid_auth, channel_not_found, invalid_blocks, expired trigger..."""


class SlackSignatureError(Exception):
    """A request claiming to come from Slack failed verification; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _map_error(method: str, exc: Exception) -> SlackError:
    """Slack's (or the network's) failure as a typed error."""
    if isinstance(exc, SlackApiError):
        response = exc.response
        status = getattr(response, "status_code", None)
        data = getattr(response, "data", None)
        error = str(data.get("error") or "") if isinstance(data, dict) else ""
        if status == 429 or error == "ratelimited":
            headers = getattr(response, "headers", None) or {}
            return SlackUnavailable(
                method,
                error or "ratelimited",
                status=status,
                retry_after=_retry_after(headers.get("Retry-After")),
            )
        if (status is not None and status >= 500) or error in _RETRYABLE_ERRORS:
            return SlackUnavailable(method, error or "server_error", status=status)
        return SlackRejected(method, error or "unknown_error", status=status)
    return SlackUnavailable(method, f"connection: {type(exc).__name__}: {exc}")


def _retry_after(value: object) -> float | None:
    try:
        return max(0.0, float(str(value))) if value is not None else None
    except ValueError:
        return None


# --- signatures ---------------------------------------------------------------------------


class _FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def verify_slack_request(
    *, signing_secret: str, headers: Mapping[str, str], body: bytes, now: float
) -> None:
    """Check ``X-Slack-Signature`` over the raw ``body``; raise :class:`SlackSignatureError`.

    Slack signs ``v0:{timestamp}:{body}`` with HMAC-SHA256 and the app's signing secret.
    Requests whose timestamp is more than five minutes from ``now`` (either way) are
    refused, so a captured request cannot be replayed later.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    timestamp = lowered.get("x-slack-request-timestamp", "").strip()
    signature = lowered.get("x-slack-signature", "").strip()
    if not timestamp:
        raise SlackSignatureError("missing X-Slack-Request-Timestamp header")
    if not signature:
        raise SlackSignatureError("missing X-Slack-Signature header")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise SlackSignatureError("X-Slack-Request-Timestamp is not a Unix time") from None
    if now - sent_at > MAX_SKEW_S:
        raise SlackSignatureError("request timestamp is older than 5 minutes")
    if sent_at - now > MAX_SKEW_S:
        raise SlackSignatureError("request timestamp is more than 5 minutes in the future")
    if not signing_secret.strip():
        raise SlackSignatureError("no Slack signing secret is configured")
    verifier = SignatureVerifier(signing_secret, clock=_FixedClock(now))
    try:
        valid = verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
    except UnicodeDecodeError:
        valid = False
    if not valid:
        raise SlackSignatureError("signature mismatch")


# --- text helpers -------------------------------------------------------------------------


def _escape(text: str) -> str:
    """Slack's three control characters, so ticket text cannot mention or link anything."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, cut with "…" (never inside an entity)."""
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - 1)]
    amp = cut.rfind("&", max(0, len(cut) - 5))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def _mrkdwn(text: str) -> dict[str, Any]:
    # verbatim: Slack does not auto-link URLs or channel names, nor expand "@here" typed as
    # plain words; the links and mentions we write ourselves (<url|label>, <@U…>) still work.
    return {"type": "mrkdwn", "text": _clip(text, MAX_TEXT), "verbatim": True}


def _section(text: str, block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": _mrkdwn(text)}
    if block_id:
        block["block_id"] = block_id
    return block


def _context(*texts: str) -> dict[str, Any]:
    elements = [_mrkdwn(t) for t in texts if t][:MAX_CONTEXT_ELEMENTS]
    return {"type": "context", "elements": elements}


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": _clip(text, limit), "emoji": True}


def _hhmm(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M UTC")


def _slack_date(moment: datetime) -> str:
    """A date Slack shows in the reader's own time zone; UTC where it cannot."""
    utc = moment.astimezone(UTC)
    fallback = utc.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(utc.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def _compact(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def _preview_lines(preview: list[dict[str, Any]]) -> list[str]:
    lines = []
    for item in preview:
        step = str(item.get("step", "step"))
        rest = {k: v for k, v in item.items() if k != "step"}
        if "before" in rest and "after" in rest:
            lines.append(f"{step}: {_compact(rest['before'])} → {_compact(rest['after'])}")
        else:
            lines.append(f"{step}: {_compact(rest)}")
    return lines


def _code_block(title: str, lines: list[str]) -> str:
    """A mrkdwn code block that fits one section, with its content cut rather than its fence."""
    head = f"{title}\n```"
    tail = "```"
    body = _escape("\n".join(lines)).replace("```", "`\u200b``")
    return head + _clip(body, MAX_TEXT - len(head) - len(tail)) + tail


def _kind_label(request: ApprovalRequest) -> str:
    return "Rollback" if request.kind is ApprovalKind.ROLLBACK else "Plan"


# --- blocks -------------------------------------------------------------------------------


def _summary_blocks(request: ApprovalRequest, *, ticket_url: str | None) -> list[dict[str, Any]]:
    """What both the open and the closed message show."""
    ticket = _escape(request.summary)
    if ticket_url:
        ticket = f"<{ticket_url}|{ticket}>"
    blocks: list[dict[str, Any]] = [
        _section(_escape(request.plain_explanation.strip()), block_id="plain"),
        _context(
            f"*Ticket:* {ticket}",
            f"*{request.severity.value}* · confidence {request.confidence:.0%} · "
            f"`{_escape(request.playbook)}` · needs {request.required_role.value}",
        ),
    ]
    if request.preview:
        blocks.append(
            _section(_code_block("*Dry run: what would change*", _preview_lines(request.preview)))
        )
    if request.draft_reply.strip():
        quoted = "\n".join(
            f">{line}"
            for line in _clip(_escape(request.draft_reply.strip()), MAX_DRAFT).split("\n")
        )
        blocks.append(_section(f"*Reply to the customer (draft)*\n{quoted}", block_id="draft"))
    blocks.append(_context(f"*Rollback:* {_escape(request.rollback_plan.strip())}"))
    blocks.append(_context(f"*Technical:* {_escape(request.technical_explanation.strip())}"))
    return blocks


def _fit(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Never more blocks than Slack takes; the last ones (the buttons) are kept."""
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    return blocks[: MAX_BLOCKS - 1] + blocks[-1:]


def approval_blocks(
    request: ApprovalRequest, *, ticket_url: str | None = None
) -> list[dict[str, Any]]:
    """The approval request as Block Kit: plain words first, then details, then the buttons.

    Every button's ``value`` is the approval id. Approve asks for a confirmation (a tap in
    a pocket must not run a playbook); Reject and "Triage wrong" open a modal.
    """
    value = str(request.approval_id)
    header = f"{'↩️ Rollback' if request.kind is ApprovalKind.ROLLBACK else '🔐 Approval'} needed"
    elements: list[dict[str, Any]] = [
        {
            "type": "button",
            "action_id": ACTION_APPROVE,
            "text": _plain("Approve", 75),
            "style": "primary",
            "value": value,
            "confirm": {
                "title": _plain("Approve and run?", 100),
                "text": _plain(
                    f"The {request.playbook} steps run as soon as you confirm."
                    if request.kind is ApprovalKind.PLAN
                    else "The rollback runs as soon as you confirm.",
                    300,
                ),
                "confirm": _plain("Approve", 30),
                "deny": _plain("Cancel", 30),
            },
        },
        {
            "type": "button",
            "action_id": ACTION_REJECT,
            "text": _plain("Reject", 75),
            "style": "danger",
            "value": value,
        },
        {
            "type": "button",
            "action_id": ACTION_TRIAGE_WRONG,
            "text": _plain("Triage wrong", 75),
            "value": value,
        },
    ]
    if ticket_url:
        elements.append(
            {
                "type": "button",
                "action_id": ACTION_OPEN_TICKET,
                "text": _plain("Open ticket", 75),
                "url": ticket_url,
                "value": value,
            }
        )
    blocks = [
        {
            "type": "header",
            "text": _plain(f"{header} · {request.severity.value} · {request.playbook}", MAX_HEADER),
        },
        *_summary_blocks(request, ticket_url=ticket_url),
        _context(f"⏰ Decide by {_slack_date(request.expires_at)}"),
        {"type": "actions", "block_id": ACTIONS_BLOCK, "elements": elements},
    ]
    return _fit(blocks)


def decided_line(
    *, status: ApprovalStatus, decided_by: str, decided_at: datetime, reason: str = ""
) -> str:
    """One line saying who decided what and when (plain text; escape it for mrkdwn)."""
    if status is ApprovalStatus.APPROVED:
        return f"✅ Approved by {decided_by} at {_hhmm(decided_at)}"
    if status is ApprovalStatus.REJECTED:
        why = f": {reason.strip()}" if reason.strip() else ""
        return f"❌ Rejected by {decided_by}{why} ({_hhmm(decided_at)})"
    if status is ApprovalStatus.EXPIRED:
        return f"⌛ Expired without a decision ({_hhmm(decided_at)})"
    raise ValueError(f"an approval that is {status.value} is not decided")


def decided_blocks(
    request: ApprovalRequest,
    *,
    status: ApprovalStatus,
    decided_by: str,
    decided_at: datetime,
    reason: str,
    ticket_url: str | None = None,
) -> list[dict[str, Any]]:
    """The same request, closed: the outcome on top, the summary below, no buttons."""
    line = decided_line(status=status, decided_by=decided_by, decided_at=decided_at, reason=reason)
    blocks = [
        {
            "type": "header",
            "text": _plain(
                f"{_kind_label(request)} {status.value} · {request.severity.value} · "
                f"{request.playbook}",
                MAX_HEADER,
            ),
        },
        _section(f"*{_escape(line)}*", block_id="outcome"),
        *_summary_blocks(request, ticket_url=ticket_url),
    ]
    return _fit(blocks)


def reminder_text(request: ApprovalRequest, level: int) -> str:
    """The text of a reminder (level 1) or an escalation (level 2 and up), mrkdwn."""
    what = (
        f"*{request.severity.value}* `{_escape(request.playbook)}`: "
        f"{_escape(_clip(request.summary, 200))}"
    )
    deadline = f"It expires {_slack_date(request.expires_at)}."
    if level <= 1:
        return f"⏰ Still waiting for a decision on {what}. {deadline}"
    return f"🚨 Escalation (level {level}): nobody has decided {what} yet. {deadline}"


def _notification(request: ApprovalRequest) -> str:
    """What a phone's notification shows: severity, the ask, the deadline."""
    return _clip(
        f"{request.severity.value} {_kind_label(request).lower()} approval needed: "
        f"{_escape(request.summary)} (decide by {_hhmm(request.expires_at)})",
        MAX_NOTIFICATION,
    )


# --- modals -------------------------------------------------------------------------------


def _option(text: str, value: str) -> dict[str, Any]:
    return {"text": _plain(text, 75), "value": value}


def _reason_modal(approval_id: uuid.UUID) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": VIEW_REJECT,
        "private_metadata": str(approval_id),
        "title": _plain("Reject the plan", MAX_MODAL_TITLE),
        "submit": _plain("Reject", MAX_MODAL_TITLE),
        "close": _plain("Cancel", MAX_MODAL_TITLE),
        "blocks": [
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": _plain("Why? (kept in the audit trail)", 2000),
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_ACTION,
                    "multiline": True,
                    "max_length": 2000,
                    "placeholder": _plain("e.g. the customer already fixed it", 150),
                },
            }
        ],
    }


def _triage_modal(approval_id: uuid.UUID) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": VIEW_TRIAGE_WRONG,
        "private_metadata": str(approval_id),
        "title": _plain("Triage was wrong", MAX_MODAL_TITLE),
        "submit": _plain("Reject plan", MAX_MODAL_TITLE),
        "close": _plain("Cancel", MAX_MODAL_TITLE),
        "blocks": [
            {
                "type": "section",
                "text": _mrkdwn(
                    "The plan was built from this triage, so it is rejected; your correction "
                    "is recorded to improve triage."
                ),
            },
            {
                "type": "input",
                "block_id": CATEGORY_BLOCK,
                "optional": True,
                "label": _plain("Right category", 2000),
                "element": {
                    "type": "static_select",
                    "action_id": CATEGORY_ACTION,
                    "options": [_option(c.value.replace("_", " "), c.value) for c in Category],
                },
            },
            {
                "type": "input",
                "block_id": SEVERITY_BLOCK,
                "optional": True,
                "label": _plain("Right severity", 2000),
                "element": {
                    "type": "static_select",
                    "action_id": SEVERITY_ACTION,
                    "options": [_option(p.value, p.value) for p in Priority],
                },
            },
            {
                "type": "input",
                "block_id": NOTE_BLOCK,
                "optional": True,
                "label": _plain("What was wrong?", 2000),
                "element": {
                    "type": "plain_text_input",
                    "action_id": NOTE_ACTION,
                    "multiline": True,
                    "max_length": 2000,
                },
            },
        ],
    }


# --- the client ---------------------------------------------------------------------------


class SlackMessageRef(BaseModel):
    """Where an approval request was posted: enough to thread under it and to update it."""

    model_config = ConfigDict(frozen=True)

    channel: str
    ts: str


class SlackApprovals:
    """Post approval requests to the approval channel, remind, close them, open modals."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        channel: str,
        ticket_url: Callable[[uuid.UUID], str] | None = None,
    ) -> None:
        self._client = client
        self._channel = channel
        self._ticket_url = ticket_url

    @property
    def channel(self) -> str:
        """The approval channel (an id such as ``C0123`` or a name)."""
        return self._channel

    def _url(self, request: ApprovalRequest) -> str | None:
        return self._ticket_url(request.ticket_id) if self._ticket_url else None

    async def post_request(self, request: ApprovalRequest) -> SlackMessageRef:
        """Post the request with its buttons; returns where it landed."""
        blocks = approval_blocks(request, ticket_url=self._url(request))
        try:
            response = await self._client.chat_postMessage(
                channel=self._channel,
                text=_notification(request),
                blocks=blocks,
                unfurl_links=False,
                unfurl_media=False,
            )
        except (SlackApiError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _map_error("chat.postMessage", exc) from exc
        return SlackMessageRef(channel=str(response["channel"]), ts=str(response["ts"]))

    async def post_reminder(
        self,
        ref: SlackMessageRef,
        request: ApprovalRequest,
        *,
        escalation_level: int,
        mention_user_ids: list[str],
    ) -> SlackMessageRef:
        """A threaded reply mentioning the approvers; escalations also show in the channel."""
        mentions = " ".join(f"<@{user_id}>" for user_id in mention_user_ids)
        text = f"{mentions} {reminder_text(request, escalation_level)}".strip()
        try:
            response = await self._client.chat_postMessage(
                channel=ref.channel,
                thread_ts=ref.ts,
                text=text,
                reply_broadcast=escalation_level > 1,
            )
        except (SlackApiError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _map_error("chat.postMessage", exc) from exc
        return SlackMessageRef(channel=str(response["channel"]), ts=str(response["ts"]))

    async def close(
        self,
        ref: SlackMessageRef,
        request: ApprovalRequest,
        *,
        status: ApprovalStatus,
        decided_by: str,
        decided_at: datetime,
        reason: str = "",
    ) -> None:
        """Replace the request with who decided what and when; the buttons are gone."""
        blocks = decided_blocks(
            request,
            status=status,
            decided_by=decided_by,
            decided_at=decided_at,
            reason=reason,
            ticket_url=self._url(request),
        )
        line = decided_line(
            status=status, decided_by=decided_by, decided_at=decided_at, reason=reason
        )
        text = _clip(f"{_escape(line)}: {_escape(request.summary)}", MAX_NOTIFICATION)
        try:
            await self._client.chat_update(channel=ref.channel, ts=ref.ts, text=text, blocks=blocks)
        except (SlackApiError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _map_error("chat.update", exc) from exc

    async def open_reason_modal(
        self, trigger_id: str, approval_id: uuid.UUID, *, kind: ModalKind
    ) -> None:
        """Open the "why reject?" or the "triage wrong" modal for the person who clicked."""
        view = _reason_modal(approval_id) if kind == "reject" else _triage_modal(approval_id)
        try:
            await self._client.views_open(trigger_id=trigger_id, view=view)
        except (SlackApiError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _map_error("views.open", exc) from exc

    async def notify_user(self, user_id: str, text: str) -> None:
        """An ephemeral message to one person in the approval channel."""
        try:
            await self._client.chat_postEphemeral(channel=self._channel, user=user_id, text=text)
        except (SlackApiError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _map_error("chat.postEphemeral", exc) from exc


async def post_to_response_url(url: str, text: str, *, timeout_s: float = 5.0) -> None:
    """An ephemeral reply through an interaction's ``response_url`` (only the clicker sees it)."""
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"not a response_url: {url!r}")
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        response = await client.post(
            url,
            json={"response_type": "ephemeral", "replace_original": False, "text": text},
        )
        response.raise_for_status()
