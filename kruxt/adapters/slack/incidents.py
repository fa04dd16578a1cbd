"""The incident channel: the incident with its Acknowledge button, pages threaded under it,
the closing update, the timeline, and SLA warnings and breaches."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from kruxt.adapters.slack.client import SlackMessageRef, call
from kruxt.adapters.slack.texts import (
    closed_incident_blocks,
    incident_blocks,
    incident_closed_notification,
    incident_notification,
    page_text,
    sla_blocks,
    sla_notification,
    timeline_text,
)
from kruxt.models.incidents import (
    IncidentInput,
    IncidentStatusChange,
    TimelineEntry,
)
from kruxt.models.sla import SlaEventKind, SlaNotice

__all__ = ["SlackIncidents"]


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
        if method == "chat.update":
            response = await call(method, self._client.chat_update(**kwargs))
        else:
            response = await call(
                method,
                self._client.chat_postMessage(unfurl_links=False, unfurl_media=False, **kwargs),
            )
        return SlackMessageRef(channel=str(response["channel"]), ts=str(response["ts"]))

    async def post_incident(
        self, incident: IncidentInput, *, tickets: int = 1, mention_user_ids: list[str]
    ) -> SlackMessageRef:
        """The incident with its Acknowledge button, mentioning the first people paged."""
        return await self._post(
            "chat.postMessage",
            channel=self._channel,
            text=incident_notification(incident),
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

    async def close(self, ref: SlackMessageRef, change: IncidentStatusChange) -> None:
        """Replace the incident message: who acknowledged or resolved it; no button."""
        await self._post(
            "chat.update",
            channel=ref.channel,
            ts=ref.ts,
            text=incident_closed_notification(
                change.incident, status=change.status, by=change.actor
            ),
            blocks=closed_incident_blocks(change),
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
        url = self._ticket_url(notice.ticket_id) if self._ticket_url is not None else None
        blocks = sla_blocks(
            notice, mention_user_ids=mention_user_ids if breach else None, ticket_url=url
        )
        return await self._post(
            "chat.postMessage",
            channel=self._channel if breach else self._warning_channel,
            text=sla_notification(notice),
            blocks=blocks,
        )
