"""Slack and mail trouble as the ApplicationError the workflows' retry policies expect.

Shared by the activities that tell people things (incidents, SLA alerts): activities do not
import each other.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.exceptions import ApplicationError

from kruxt.adapters.email import MailRejected, MailUnavailable
from kruxt.adapters.slack import SlackError, SlackUnavailable


def notify_failure(exc: SlackError | MailUnavailable | MailRejected) -> ApplicationError:
    """Slack or mail trouble as the ApplicationError the workflows' NOTIFY_RETRY expects."""
    if isinstance(exc, SlackUnavailable | MailUnavailable):
        delay = exc.retry_after
        return ApplicationError(
            str(exc),
            type="NotifyUnavailable",
            next_retry_delay=timedelta(seconds=delay) if delay else None,
        )
    return ApplicationError(str(exc), type="NotifyRejected", non_retryable=True)
