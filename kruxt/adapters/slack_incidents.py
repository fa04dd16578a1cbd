"""Slack for incidents and SLA alerts: the incident message with its Acknowledge button,
pages threaded under it, the closing update, the timeline, and SLA warnings and breaches.

The client handling is the approval adapter's (:mod:`kruxt.adapters.slack`): slack_sdk's
``AsyncWebClient`` built by the caller, failures mapped to ``SlackUnavailable`` (retry) or
``SlackRejected`` (do not), ticket text escaped and clipped to Slack's limits.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

# The approval adapter's text helpers and error mapping: one set of Slack rules.
from kruxt.adapters.slack import (
    MAX_HEADER,
    MAX_NOTIFICATION,
    MAX_TEXT,
    SlackMessageRef,
    _clip,
    _context,
    _escape,
    _map_error,
    _plain,
    _section,
    _slack_date,
)
from kruxt.models.incidents import IncidentInput, IncidentStatus, TimelineEntry
from kruxt.models.sla import SlaEventKind, SlaNotice

__all__ = [
    "ACTION_INCIDENT_ACK",
    "SlackIncidents",
    "closed_incident_blocks",
    "incident_blocks",
    "page_text",
    "sla_text",
    "timeline_text",
]

ACTION_INCIDENT_ACK = "incident_ack"
INCIDENT_ACTIONS_BLOCK = "incident_actions"

_ERRORS = (SlackApiError, aiohttp.ClientError, TimeoutError, OSError)


def _mentions(user_ids: list[str]) -> str:
    return " ".join(f"<@{u}>" for u in user_ids if u)


def _hhmm(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M")


def _minutes(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest:02d} min" if rest else f"{hours} h"


def _summary(incident: IncidentInput, *, tickets: int) -> list[dict[str, Any]]:
    return [
        _section(f"*{_escape(incident.title)}*", block_id="title"),
        _context(
            f"*{incident.priority.value}* · {incident.category.value.replace('_', ' ')} · "
            f"{tickets} ticket{'s' if tickets != 1 else ''}",
            f"opened {_slack_date(incident.opened_at)}",
            f"`{_escape(str(incident.incident_id))}`",
        ),
    ]


def incident_blocks(
    incident: IncidentInput, *, tickets: int = 1, mention_user_ids: list[str] | None = None
) -> list[dict[str, Any]]:
    """The incident as Block Kit: what is broken, who is paged, and the Acknowledge button.

    The button's ``value`` is the incident id; acknowledging asks for a confirmation.
    """
    mentions = _mentions(mention_user_ids or [])
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": _plain(f"🚨 {incident.priority.value} incident · {incident.title}", MAX_HEADER),
        },
        *_summary(incident, tickets=tickets),
    ]
    if mentions:
        blocks.append(_section(f"Paging {mentions}", block_id="paging"))
    blocks.append(
        {
            "type": "actions",
            "block_id": INCIDENT_ACTIONS_BLOCK,
            "elements": [
                {
                    "type": "button",
                    "action_id": ACTION_INCIDENT_ACK,
                    "text": _plain("Acknowledge", 75),
                    "style": "primary",
                    "value": str(incident.incident_id),
                    "confirm": {
                        "title": _plain("Acknowledge?", 100),
                        "text": _plain(
                            "You take the incident: paging stops and the team sees your name.",
                            300,
                        ),
                        "confirm": _plain("Acknowledge", 30),
                        "deny": _plain("Cancel", 30),
                    },
                }
            ],
        }
    )
    return blocks


def closed_incident_blocks(
    incident: IncidentInput,
    *,
    status: IncidentStatus,
    by: str,
    at: datetime,
    note: str = "",
    tickets: int = 1,
) -> list[dict[str, Any]]:
    """The incident message after an acknowledgement or the resolution: no button any more."""
    if status is IncidentStatus.ACKNOWLEDGED:
        line = f"👀 Acknowledged by {by} at {_hhmm(at)} UTC"
    elif status is IncidentStatus.RESOLVED:
        line = f"✅ Resolved by {by} at {_hhmm(at)} UTC" + (f": {note.strip()}" if note else "")
    else:
        raise ValueError("an open incident is not closed")
    return [
        {
            "type": "header",
            "text": _plain(
                f"{incident.priority.value} incident {status.value} · {incident.title}",
                MAX_HEADER,
            ),
        },
        _section(f"*{_escape(line)}*", block_id="outcome"),
        *_summary(incident, tickets=tickets),
    ]


def page_text(
    incident: IncidentInput, *, level_name: str, loop: int, mention_user_ids: list[str]
) -> str:
    """A page threaded under the incident (mrkdwn); ``loop`` is 0-based."""
    again = f" (round {loop + 1})" if loop else ""
    who = _mentions(mention_user_ids)
    return _clip(
        f"{who} 📟 Paging *{_escape(level_name)}*{again}: {incident.priority.value} "
        f"{_escape(incident.title)} is not acknowledged yet. Press *Acknowledge* above, or "
        f"run `kruxt incident ack {incident.incident_id} --as YOUR_EMAIL`.".strip(),
        MAX_TEXT,
    )


def timeline_text(
    incident: IncidentInput, *, entries: list[TimelineEntry], resolved_by: str, note: str
) -> str:
    """The timeline posted when the incident is resolved (mrkdwn, a code block)."""
    head = f"✅ *Resolved by {_escape(resolved_by)}*" + (f": {_escape(note)}" if note else "")
    lines = [f"{e.at.astimezone(UTC):%Y-%m-%d %H:%M} {e.what}" for e in entries]
    body = _escape("\n".join(lines)).replace("```", "`\u200b``")
    fence = "\n*Timeline (UTC)*\n```"
    return head + fence + _clip(body, MAX_TEXT - len(head) - len(fence) - 3) + "```"


def sla_text(notice: SlaNotice, *, mention_user_ids: list[str] | None = None) -> str:
    """An SLA warning or breach (mrkdwn)."""
    clock = notice.clock.value.replace("_", " ")
    ticket = f"ticket `{str(notice.ticket_id)[:8]}`"
    what = f"*{notice.priority.value}* {ticket}: {_escape(_clip(notice.summary, 200))}"
    if notice.event is SlaEventKind.WARNING:
        return (
            f"⏳ SLA warning: the {clock} target ({_minutes(notice.target_seconds)}) of {what} "
            f"is due {_slack_date(notice.deadline)}."
        )
    who = _mentions(mention_user_ids or [])
    return (
        f"{who} 🚨 SLA breached: the {clock} target ({_minutes(notice.target_seconds)}) of "
        f"{what} passed {_slack_date(notice.deadline)}"
        + (f", {_minutes(notice.overdue_seconds)} ago" if notice.overdue_seconds >= 60 else "")
        + "."
    ).strip()


class SlackIncidents:
    """Post incidents and pages to the incident channel, and SLA alerts."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        incident_channel: str,
        warning_channel: str | None = None,
        ticket_url: Callable[[uuid.UUID], str] | None = None,
    ) -> None:
        self._client = client
        self._channel = incident_channel
        # SLA warnings go where people already look at tickets (the approval channel).
        self._warning_channel = warning_channel or incident_channel
        self._ticket_url = ticket_url

    @property
    def channel(self) -> str:
        """The incident channel."""
        return self._channel

    async def _post(self, method: str, **kwargs: Any) -> SlackMessageRef:
        try:
            if method == "chat.update":
                response = await self._client.chat_update(**kwargs)
            else:
                response = await self._client.chat_postMessage(
                    unfurl_links=False, unfurl_media=False, **kwargs
                )
        except _ERRORS as exc:
            raise _map_error(method, exc) from exc
        return SlackMessageRef(channel=str(response["channel"]), ts=str(response["ts"]))

    async def post_incident(
        self, incident: IncidentInput, *, tickets: int = 1, mention_user_ids: list[str]
    ) -> SlackMessageRef:
        """The incident with its Acknowledge button, mentioning the first people paged."""
        return await self._post(
            "chat.postMessage",
            channel=self._channel,
            text=_clip(
                f"{incident.priority.value} incident: {_escape(incident.title)} "
                "(acknowledge to stop paging)",
                MAX_NOTIFICATION,
            ),
            blocks=incident_blocks(incident, tickets=tickets, mention_user_ids=mention_user_ids),
        )

    async def post_page(
        self,
        ref: SlackMessageRef,
        incident: IncidentInput,
        *,
        level_name: str,
        loop: int,
        mention_user_ids: list[str],
    ) -> SlackMessageRef:
        """A page in the incident's thread, also shown in the channel."""
        return await self._post(
            "chat.postMessage",
            channel=ref.channel,
            thread_ts=ref.ts,
            reply_broadcast=True,
            text=page_text(
                incident, level_name=level_name, loop=loop, mention_user_ids=mention_user_ids
            ),
        )

    async def close(
        self,
        ref: SlackMessageRef,
        incident: IncidentInput,
        *,
        status: IncidentStatus,
        by: str,
        at: datetime,
        note: str = "",
        tickets: int = 1,
    ) -> None:
        """Replace the incident message: who acknowledged or resolved it; no button."""
        blocks = closed_incident_blocks(
            incident, status=status, by=by, at=at, note=note, tickets=tickets
        )
        await self._post(
            "chat.update",
            channel=ref.channel,
            ts=ref.ts,
            text=_clip(
                f"{incident.priority.value} incident {status.value} by {_escape(by)}: "
                f"{_escape(incident.title)}",
                MAX_NOTIFICATION,
            ),
            blocks=blocks,
        )

    async def post_timeline(
        self,
        ref: SlackMessageRef | None,
        incident: IncidentInput,
        *,
        entries: list[TimelineEntry],
        resolved_by: str,
        note: str = "",
    ) -> SlackMessageRef:
        """The resolved incident's timeline, in its thread (or the channel if never posted)."""
        thread: dict[str, Any] = (
            {"channel": ref.channel, "thread_ts": ref.ts, "reply_broadcast": True}
            if ref is not None
            else {"channel": self._channel}
        )
        return await self._post(
            "chat.postMessage",
            text=timeline_text(incident, entries=entries, resolved_by=resolved_by, note=note),
            **thread,
        )

    async def post_sla(
        self, notice: SlaNotice, *, mention_user_ids: list[str] | None = None
    ) -> SlackMessageRef:
        """A warning to the warning channel; a breach to the incident channel, mentioning."""
        breach = notice.event is SlaEventKind.BREACH
        text = sla_text(notice, mention_user_ids=mention_user_ids if breach else None)
        blocks: list[dict[str, Any]] = [_section(text)]
        if self._ticket_url is not None:
            blocks.append(_context(f"<{self._ticket_url(notice.ticket_id)}|Open the ticket>"))
        return await self._post(
            "chat.postMessage",
            channel=self._channel if breach else self._warning_channel,
            text=_clip(
                f"SLA {'breached' if breach else 'warning'}: {notice.priority.value} "
                f"{_escape(notice.summary)}",
                MAX_NOTIFICATION,
            ),
            blocks=blocks,
        )
