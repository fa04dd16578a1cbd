"""The approval channel: post requests with their buttons, remind, close them, open modals."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from slack_sdk.web.async_client import AsyncWebClient

from kruxt.adapters.slack.client import SlackMessageRef, call
from kruxt.adapters.slack.ids import ModalKind
from kruxt.adapters.slack.texts import (
    approval_blocks,
    approval_notification,
    decided_blocks,
    decided_notification,
    modal_view,
    reminder_text,
)
from kruxt.models.approvals import ApprovalRequest, CloseApproval

__all__ = ["SlackApprovals"]


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
        response = await call(
            "chat.postMessage",
            self._client.chat_postMessage(
                channel=self._channel,
                text=approval_notification(request),
                blocks=approval_blocks(request, ticket_url=self._url(request)),
                unfurl_links=False,
                unfurl_media=False,
            ),
        )
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
        response = await call(
            "chat.postMessage",
            self._client.chat_postMessage(
                channel=ref.channel,
                thread_ts=ref.ts,
                text=text,
                reply_broadcast=escalation_level > 1,
            ),
        )
        return SlackMessageRef(channel=str(response["channel"]), ts=str(response["ts"]))

    async def close(self, ref: SlackMessageRef, decision: CloseApproval) -> None:
        """Replace the request with who decided what and when; the buttons are gone."""
        await call(
            "chat.update",
            self._client.chat_update(
                channel=ref.channel,
                ts=ref.ts,
                text=decided_notification(decision),
                blocks=decided_blocks(decision, ticket_url=self._url(decision.request)),
            ),
        )

    async def open_reason_modal(
        self, trigger_id: str, approval_id: uuid.UUID, *, kind: ModalKind
    ) -> None:
        """Open the "why reject?" or the "triage wrong" modal for the person who clicked."""
        await call(
            "views.open",
            self._client.views_open(trigger_id=trigger_id, view=modal_view(approval_id, kind)),
        )

    async def member_email(self, user_id: str) -> str | None:
        """The e-mail Slack has for a workspace member (``users.info``; the app needs the
        ``users:read`` and ``users:read.email`` scopes, or Slack leaves the e-mail out); None
        for a bot, a deactivated member or a profile without one."""
        answer = await call("users.info", self._client.users_info(user=user_id))
        user = answer.get("user")
        if not isinstance(user, dict) or user.get("deleted") or user.get("is_bot"):
            return None
        profile = user.get("profile")
        email = profile.get("email") if isinstance(profile, dict) else None
        return email.strip().lower() if isinstance(email, str) and email.strip() else None

    async def notify_user(self, user_id: str, text: str) -> None:
        """An ephemeral message to one person in the approval channel."""
        await call(
            "chat.postEphemeral",
            self._client.chat_postEphemeral(channel=self._channel, user=user_id, text=text),
        )
