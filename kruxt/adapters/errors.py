"""What the adapters' errors share: a wait a service asked for, a reason a request was refused."""

from __future__ import annotations

__all__ = ["ReasonedError", "RetryLater"]


class RetryLater(Exception):
    """Retrying may work, after ``retry_after`` seconds when the service said how long."""

    def __init__(self, *args: object, retry_after: float | None = None) -> None:
        super().__init__(*args)
        self.retry_after = retry_after


class ReasonedError(Exception):
    """An error whose message is its ``reason``, kept for callers that tell the reasons apart."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
