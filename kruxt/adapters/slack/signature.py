"""Requests claiming to come from Slack: the signature and the replay guard, checked first."""

from __future__ import annotations

from collections.abc import Mapping

from slack_sdk.signature import Clock, SignatureVerifier

from kruxt.adapters.errors import ReasonedError

__all__ = ["MAX_SKEW_S", "SlackSignatureError", "verify_slack_request"]

# Requests from Slack older (or newer) than this are refused: a replay guard.
MAX_SKEW_S = 5 * 60


class SlackSignatureError(ReasonedError):
    """A request claiming to come from Slack failed verification; ``reason`` says why."""


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
