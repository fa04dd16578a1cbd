"""Notification trouble as the ApplicationError the workflows' retry policies expect.

The one mapping for every channel (Slack, mail, and those to come): a channel raises
``NotifyUnavailable`` or ``NotifyRejected`` (:mod:`kruxt.adapters.notifier`), and the
activities that tell people things raise what this module makes of it. Activities do not
import each other, so they share it from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from temporalio.exceptions import ApplicationError

from kruxt.adapters.notifier import NotifyError, NotifyUnavailable

__all__ = ["most_hopeful", "notify_failure"]


def notify_failure(exc: NotifyError) -> ApplicationError:
    """``NotifyUnavailable`` (retried, after the channel's ``retry_after`` if it gave one) or
    ``NotifyRejected`` (non-retryable): the types NOTIFY_RETRY expects."""
    if isinstance(exc, NotifyUnavailable):
        delay = exc.retry_after
        return ApplicationError(
            str(exc),
            type="NotifyUnavailable",
            next_retry_delay=timedelta(seconds=delay) if delay else None,
        )
    return ApplicationError(str(exc), type="NotifyRejected", non_retryable=True)


def most_hopeful(errors: Sequence[NotifyError]) -> NotifyError:
    """Of several channels' failures, the first that retrying may cure (else the first)."""
    return next((e for e in errors if isinstance(e, NotifyUnavailable)), errors[0])
