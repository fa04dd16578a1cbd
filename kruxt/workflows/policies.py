"""Timeouts and retry policies of the workflows' activities, in one place."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

from kruxt.models.text import BAD_DATA_ERROR
from kruxt.models.triage import LLM_NON_RETRYABLE


def _backoff(
    first: timedelta, longest: timedelta, non_retryable: list[str], attempts: int = 0
) -> RetryPolicy:
    """Waits doubling from ``first`` up to ``longest``; ``attempts`` 0 retries without limit."""
    return RetryPolicy(
        initial_interval=first,
        backoff_coefficient=2.0,
        maximum_interval=longest,
        maximum_attempts=attempts,
        non_retryable_error_types=non_retryable,
    )


# Errors that retrying cannot fix; activities raise ApplicationError with these types
# (BadTicketData: text or values the database refuses the same way on every attempt).
NON_RETRYABLE = ["TicketNotFoundError", BAD_DATA_ERROR]

# Database bookkeeping: quick, and retried without limit, because a ticket must never be
# dropped while Postgres is briefly away; the backoff keeps a long outage cheap.
DB_TIMEOUT = timedelta(seconds=30)
DB_RETRY = _backoff(timedelta(seconds=1), timedelta(minutes=1), NON_RETRYABLE)

ArgT = TypeVar("ArgT")
OutT = TypeVar("OutT")


async def db_activity(
    activity: Callable[[Any, ArgT], Awaitable[OutT]], arg: ArgT, summary: str
) -> OutT:
    """Run a database activity (one transaction, with its audit entry) on the terms above."""
    return await workflow.execute_activity_method(
        activity, arg, start_to_close_timeout=DB_TIMEOUT, retry_policy=DB_RETRY, summary=summary
    )


# Pure computations (rules triage, drafting from loaded articles): fast and local. A few
# attempts only: what fails here on every try (a ticket the code chokes on) must surface,
# not hold an activity slot, and a worker's thread, retry after retry.
LOCAL_TIMEOUT = timedelta(seconds=20)
LOCAL_RETRY = _backoff(timedelta(seconds=1), timedelta(seconds=30), NON_RETRYABLE, attempts=5)

# Drafting a reply: from the index, by the LLM when configured (which falls back to the
# article's template inside the activity, so only database errors are retried).
KNOWLEDGE_TIMEOUT = timedelta(seconds=90)

# The LLM triager: a few attempts within a bounded time, then the rules triager answers, so a
# ticket is never stuck on the model. Rate limits wait the server's Retry-After.
LLM_TIMEOUT = timedelta(seconds=60)
LLM_DEADLINE = timedelta(minutes=3)
LLM_RETRY = _backoff(timedelta(seconds=2), timedelta(seconds=30), LLM_NON_RETRYABLE, attempts=4)

# Playbook steps: transient failures retried a bounded number of times, then the saga undoes
# what ran; what retrying cannot fix stops the saga at once.
STEP_NON_RETRYABLE = [
    "AppRefused",
    "AppEntityNotFound",
    "AppNotConfigured",
    "UnknownAction",
    "UnknownCompensation",
]
STEP_TIMEOUT = timedelta(seconds=30)
STEP_RETRY = _backoff(timedelta(seconds=1), timedelta(seconds=30), STEP_NON_RETRYABLE, attempts=8)
# Compensations must finish: retried without limit unless the app refuses them outright.
COMPENSATION_RETRY = _backoff(timedelta(seconds=1), timedelta(minutes=1), STEP_NON_RETRYABLE)

# Telling approvers (Slack, e-mail): a few tries, then the workflow carries on without it;
# a decision can always be taken with the CLI.
NOTIFY_TIMEOUT = timedelta(seconds=30)
NOTIFY_RETRY = _backoff(timedelta(seconds=2), timedelta(seconds=30), ["NotifyRejected"], attempts=5)
