"""Turning activity failures into one-line reasons for records and operators."""

from __future__ import annotations

from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError


def failure_reason(err: ActivityError) -> str:
    """E.g. ``LlmUnavailable: connection refused`` or ``timeout (schedule_to_close)``."""
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return f"{cause.type or 'error'}: {cause.message}"[:500]
    if isinstance(cause, TemporalTimeoutError):
        kind = cause.type.name.lower() if cause.type is not None else "unknown"
        return f"timeout ({kind})"
    return f"{type(cause).__name__ if cause else 'error'}: {err.message}"[:500]
