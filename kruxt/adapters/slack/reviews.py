"""The weekly review's Slack post: a summary with a link, in the approval channel."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from kruxt.adapters.slack.client import call

__all__ = ["SlackReviews"]


class SlackReviews:
    """Posts the weekly review's summary where the team already reads about tickets."""

    def __init__(self, client: AsyncWebClient, *, channel: str) -> None:
        self._client = client
        self._channel = channel

    @property
    def channel(self) -> str:
        """Where the summary goes."""
        return self._channel

    async def post_review(self, text: str) -> None:
        """Post the summary (mrkdwn, the report's link unfurled by nobody)."""
        await call(
            "chat.postMessage",
            self._client.chat_postMessage(
                channel=self._channel, text=text, unfurl_links=False, unfurl_media=False
            ),
        )
