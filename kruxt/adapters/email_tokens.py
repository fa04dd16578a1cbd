"""Signed, expiring e-mail links: approval links, and incident acknowledgement links.

A token is ``base64url(claims JSON) "." base64url(HMAC-SHA256(key, first part))``: compact
enough for a URL, readable by nobody who matters (it holds no secret) and unforgeable
without the key. The signature binds the approval, the verdict and the approver together,
so a token for one of them cannot be bent into a token for another. Single use is not a
property of the token: the token store (``support_email_tokens``) consumes its ``jti``.

Incident acknowledgement links (``IncidentAckTokens``) have the same shape, signed with a
key derived for them alone, and bind one incident to one paged person. They are not single
use: the incident workflow refuses a second acknowledgement, naming who took it.

Confirm links (``ConfirmTokens``, ``ConfirmLinks``) close the loop with the customer: one
binds one ticket, and goes at the end of an answer that leaves the ticket waiting on them.
Used once: the ticket's workflow takes one confirmation and says so to the next.

Console sign-in links (``SignInTokens``) name one person of the approvers directory and are
single use through the console's store (``support_console_links`` consumes their ``jti``);
the same class seals the short-lived OpenID Connect state cookie, with a key of its own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kruxt.models.approvals import Verdict

__all__ = [
    "MIN_SECRET_BYTES",
    "ApprovalTokens",
    "ConfirmClaims",
    "ConfirmExpired",
    "ConfirmLinks",
    "ConfirmTokens",
    "ConsoleStateClaims",
    "GradeClaims",
    "GradeTokens",
    "IncidentAckClaims",
    "IncidentAckExpired",
    "IncidentAckTokens",
    "IssuedToken",
    "SignInClaims",
    "SignInExpired",
    "SignInTokens",
    "TokenClaims",
    "TokenError",
    "TokenExpired",
    "TokenInvalid",
]

MIN_SECRET_BYTES = 32
# Tokens live in URLs; anything much longer than a real one is not worth decoding.
MAX_TOKEN_CHARS = 1024
# The secret may be shared with other signers: derive a key that only signs approval links.
_KEY_CONTEXT = b"kruxt/approval-email-link/v1"
# ... and another that only signs incident acknowledgement links.
_INCIDENT_ACK_KEY_CONTEXT = b"kruxt/incident-ack-link/v1"
# ... and another that only signs customers' confirm links.
_CONFIRM_KEY_CONTEXT = b"kruxt/ticket-confirm-link/v1"
# ... and another that only signs the weekly review's grade links.
_GRADE_KEY_CONTEXT = b"kruxt/review-grade-link/v1"
_REPORT_KEY_CONTEXT = b"kruxt/review-report-link/v1"
# ... and the console's sign-in links, and its OpenID Connect state cookie.
_SIGN_IN_KEY_CONTEXT = b"kruxt/console-sign-in-link/v1"
_OIDC_STATE_KEY_CONTEXT = b"kruxt/console-oidc-state/v1"
_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


class _Stamped(BaseModel):
    """What every link's claims hold besides its own: when it was issued, until when it holds."""

    model_config = ConfigDict(frozen=True)

    issued_at: datetime
    expires_at: datetime


C = TypeVar("C", bound=_Stamped)


class TokenClaims(_Stamped):
    """What a verified token says: who may decide which approval, and how."""

    jti: str = Field(description="A random token id: the key of single use")
    approval_id: uuid.UUID
    verdict: Verdict
    approver_email: str


@dataclass(frozen=True)
class IssuedToken:
    """A new token and the claims it carries (for ``EmailTokenStore.record_issued``)."""

    token: str
    claims: TokenClaims


class TokenError(Exception):
    """A token that cannot be acted on."""


class TokenInvalid(TokenError):
    """Not a token this server signed: ``reason`` is ``"forged"`` or ``"malformed"``."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid approval link ({reason})")
        self.reason = reason


class _LinkExpired(TokenError, Generic[C]):
    """A genuine link past its expiry; ``claims`` says whose it was. ``link`` names the kind."""

    link = "link"

    def __init__(self, claims: C) -> None:
        super().__init__(f"{self.link} expired at {claims.expires_at.isoformat()}")
        self.claims = claims


class TokenExpired(_LinkExpired[TokenClaims]):
    """A genuine approval link past its expiry; ``claims`` says whose it was."""

    link = "approval link"


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _is_b64url(text: str) -> bool:
    """Non-empty and only base64url characters (no padding, no trailing newline)."""
    return bool(text) and _B64URL.issuperset(text)


def _b64decode(text: str) -> bytes:
    if not _is_b64url(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive_key(secret: bytes, context: bytes) -> bytes:
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the approval link secret needs at least {MIN_SECRET_BYTES} bytes")
    return hmac.new(secret, context, hashlib.sha256).digest()


def _sign(key: bytes, payload: str) -> str:
    return _b64encode(hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest())


def _seal(key: bytes, body: Mapping[str, object]) -> str:
    payload = _b64encode(json.dumps(body, separators=(",", ":")).encode())
    return f"{payload}.{_sign(key, payload)}"


def _unseal(key: bytes, token: str) -> str:
    """The payload of a token signed with ``key`` (still encoded).

    Raises:
        TokenInvalid: ``malformed`` or ``forged``.
    """
    if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise TokenInvalid("malformed")
    payload, signature = token.split(".")
    if not _is_b64url(payload) or not _is_b64url(signature):
        raise TokenInvalid("malformed")
    # Nothing of the payload is parsed before the signature is checked.
    if not hmac.compare_digest(_sign(key, payload), signature):
        raise TokenInvalid("forged")
    return payload


def _body(payload: str) -> dict[str, object]:
    body = json.loads(_b64decode(payload))
    if not isinstance(body, dict):
        raise TypeError("claims are not an object")
    return body


def _stamped(
    body: Mapping[str, object], *, expires_at: datetime, issued_at: datetime | None
) -> dict[str, object]:
    """``body`` with its issue and expiry times in whole seconds (``i``, ``x``)."""
    if expires_at.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    issued = issued_at or datetime.now(UTC)
    return {**body, "i": int(issued.timestamp()), "x": int(expires_at.timestamp())}


def _times(body: Mapping[str, object]) -> dict[str, datetime]:
    """The issue and expiry times of a stamped body."""
    return {
        "issued_at": datetime.fromtimestamp(_int(body["i"]), UTC),
        "expires_at": datetime.fromtimestamp(_int(body["x"]), UTC),
    }


def _verified(
    key: bytes,
    token: str,
    *,
    now: datetime,
    read: Callable[[Mapping[str, object]], C],
    expired: Callable[[C], TokenError],
) -> C:
    """The claims ``read`` finds in a genuine token, unless ``now`` is past their expiry.

    Raises:
        TokenInvalid: not signed with ``key`` (``forged``) or not a token at all
            (``malformed``).
        TokenError: what ``expired`` makes of the claims of a genuine, expired token.
    """
    payload = _unseal(key, token)
    try:
        claims = read(_body(payload))
    except (ValueError, TypeError, KeyError, binascii.Error, ValidationError) as exc:
        # Signed by us yet unreadable: only a change of format could do that.
        raise TokenInvalid("malformed") from exc
    if now >= claims.expires_at:
        raise expired(claims)
    return claims


class _LinkTokens(Generic[C]):
    """Issue and verify one kind of link, with a key derived from the secret for it alone.

    A kind names its key's ``context``, how it reads its claims (``_claims``) and the error
    of an expired link (``expired``).
    """

    context: ClassVar[bytes]
    expired: ClassVar[type[_LinkExpired[Any]]]

    def __init__(self, secret: bytes) -> None:
        self._key = _derive_key(secret, self.context)

    def verify(self, token: str, *, now: datetime) -> C:
        """The claims of a genuine, unexpired link.

        Raises:
            TokenInvalid: not signed with this secret for this kind of link (``forged``), or
                not a token at all (``malformed``).
            TokenError: genuine, but ``now`` is past its expiry (the kind's ``expired``).
        """
        return _verified(self._key, token, now=now, read=self._claims, expired=self.expired)

    @staticmethod
    def _claims(body: Mapping[str, object]) -> C:
        raise NotImplementedError


class ApprovalTokens(_LinkTokens[TokenClaims]):
    """Issue and verify approval-link tokens with one secret."""

    context = _KEY_CONTEXT
    expired = TokenExpired

    def issue(
        self,
        *,
        approval_id: uuid.UUID,
        verdict: Verdict,
        approver_email: str,
        expires_at: datetime,
        issued_at: datetime | None = None,
    ) -> IssuedToken:
        """A token letting ``approver_email`` give ``verdict`` on one approval until expiry."""
        claims = {
            "j": secrets.token_urlsafe(12),
            "a": str(approval_id),
            "v": verdict.value,
            "e": approver_email.strip().lower(),
        }
        body = _stamped(claims, expires_at=expires_at, issued_at=issued_at)
        return IssuedToken(token=_seal(self._key, body), claims=self._claims(body))

    @staticmethod
    def _claims(body: Mapping[str, object]) -> TokenClaims:
        return TokenClaims.model_validate(
            {
                "jti": body["j"],
                "approval_id": body["a"],
                "verdict": body["v"],
                "approver_email": body["e"],
                **_times(body),
            }
        )


class IncidentAckClaims(_Stamped):
    """What a verified acknowledgement link says: who may take which incident, until when."""

    incident_id: uuid.UUID
    person_email: str


class IncidentAckExpired(_LinkExpired[IncidentAckClaims]):
    """A genuine acknowledgement link past its expiry; ``claims`` says whose it was."""

    link = "acknowledgement link"


class IncidentAckTokens(_LinkTokens[IncidentAckClaims]):
    """Issue and verify incident acknowledgement links (``/incidents/ack/<token>``)."""

    context = _INCIDENT_ACK_KEY_CONTEXT
    expired = IncidentAckExpired

    def issue(
        self,
        *,
        incident_id: uuid.UUID,
        person_email: str,
        expires_at: datetime,
        issued_at: datetime | None = None,
    ) -> str:
        """A token letting ``person_email`` acknowledge one incident until ``expires_at``."""
        claims = {"n": str(incident_id), "e": person_email.strip().lower()}
        return _seal(self._key, _stamped(claims, expires_at=expires_at, issued_at=issued_at))

    @staticmethod
    def _claims(body: Mapping[str, object]) -> IncidentAckClaims:
        return IncidentAckClaims.model_validate(
            {"incident_id": body["n"], "person_email": body["e"], **_times(body)}
        )


class ConfirmClaims(_Stamped):
    """What a verified confirm link says: the customer of which ticket, until when."""

    ticket_id: uuid.UUID


class ConfirmExpired(_LinkExpired[ConfirmClaims]):
    """A genuine confirm link past its expiry."""

    link = "confirm link"


class ConfirmTokens(_LinkTokens[ConfirmClaims]):
    """Issue and verify customers' confirm links (``/v1/tickets/{id}/confirm/<token>``)."""

    context = _CONFIRM_KEY_CONTEXT
    expired = ConfirmExpired

    def issue(
        self, *, ticket_id: uuid.UUID, expires_at: datetime, issued_at: datetime | None = None
    ) -> str:
        """A token confirming that one ticket's answer worked, until ``expires_at``."""
        claims = {"t": str(ticket_id)}
        return _seal(self._key, _stamped(claims, expires_at=expires_at, issued_at=issued_at))

    @staticmethod
    def _claims(body: Mapping[str, object]) -> ConfirmClaims:
        return ConfirmClaims.model_validate({"ticket_id": body["t"], **_times(body)})


@dataclass(frozen=True)
class ConfirmLinks:
    """The confirm link appended to an answer that leaves a ticket waiting on the customer.

    ``valid_for``: the auto-solve wait plus the reopen window, so a late click still finds
    the ticket and is told it was solved, instead of an expired link.
    """

    tokens: ConfirmTokens
    public_url: str
    valid_for: timedelta

    def url(self, ticket_id: uuid.UUID, *, now: datetime | None = None) -> str:
        """A fresh link for ``ticket_id``."""
        issued = now or datetime.now(UTC)
        token = self.tokens.issue(
            ticket_id=ticket_id, expires_at=issued + self.valid_for, issued_at=issued
        )
        return f"{self.public_url.rstrip('/')}/v1/tickets/{ticket_id}/confirm/{token}"


class GradeClaims(_Stamped):
    """What a verified grade link says: which reviewer grades which sample, how."""

    sample_id: uuid.UUID
    reviewer_email: str
    grade: str


class GradeTokens:
    """Issue and verify the weekly review's links: grade links (``/reviews/grade/<token>``)
    and read-only report links (``/reviews/report/<token>``), each kind with its own key.

    Single use is the sample's: it takes one grade, whichever of its links is posted.
    """

    def __init__(self, secret: bytes) -> None:
        self._key = _derive_key(secret, _GRADE_KEY_CONTEXT)
        self._report_key = _derive_key(secret, _REPORT_KEY_CONTEXT)

    def issue_report(
        self, *, week: str, expires_at: datetime, issued_at: datetime | None = None
    ) -> str:
        """A token to read one week's stored report until ``expires_at``."""
        return _seal(
            self._report_key, _stamped({"w": week}, expires_at=expires_at, issued_at=issued_at)
        )

    def verify_report(self, token: str, *, now: datetime) -> str:
        """The week a genuine, unexpired report link opens.

        Raises:
            TokenInvalid: not a report link signed with this secret.
            TokenError: genuine, but ``now`` is past its expiry.
        """
        claims = _verified(
            self._report_key, token, now=now, read=_ReportClaims.read, expired=_report_expired
        )
        return claims.week

    def issue(
        self,
        *,
        sample_id: uuid.UUID,
        reviewer_email: str,
        grade: str,
        expires_at: datetime,
        issued_at: datetime | None = None,
    ) -> str:
        """A token letting ``reviewer_email`` give ``grade`` to one sample until expiry."""
        claims = {"s": str(sample_id), "e": reviewer_email.strip().lower(), "g": grade}
        return _seal(self._key, _stamped(claims, expires_at=expires_at, issued_at=issued_at))

    def verify(self, token: str, *, now: datetime) -> GradeClaims:
        """The claims of a genuine, unexpired grade link.

        Raises:
            TokenInvalid: not signed with this secret for grade links, or not a token at all.
            TokenExpired: genuine, but ``now`` is past its expiry.
        """
        return _verified(self._key, token, now=now, read=self._claims, expired=_grade_expired)

    @staticmethod
    def _claims(body: Mapping[str, object]) -> GradeClaims:
        return GradeClaims.model_validate(
            {
                "sample_id": body["s"],
                "reviewer_email": body["e"],
                "grade": body["g"],
                **_times(body),
            }
        )


class _ReportClaims(_Stamped):
    week: str

    @classmethod
    def read(cls, body: Mapping[str, object]) -> _ReportClaims:
        return cls.model_validate({"week": body["w"], **_times(body)})


def _report_expired(claims: _ReportClaims) -> TokenError:
    return TokenError(f"report link expired at {claims.expires_at.isoformat()}")


def _grade_expired(claims: GradeClaims) -> TokenError:
    return TokenError(f"grade link expired at {claims.expires_at.isoformat()}")


class SignInClaims(_Stamped):
    """What a verified console sign-in link says: who may sign in, once, until when."""

    jti: str = Field(description="A random token id: the key of single use")
    email: str


class SignInExpired(_LinkExpired[SignInClaims]):
    """A genuine sign-in link past its expiry; ``claims`` says whose it was."""

    link = "sign-in link"


class ConsoleStateClaims(_Stamped):
    """The OpenID Connect round trip's state, kept in a sealed cookie until the callback."""

    state: str
    nonce: str
    code_verifier: str
    next_path: str


class SignInTokens(_LinkTokens[SignInClaims]):
    """Issue and verify the console's sign-in links (``/console/sign-in/<token>``), and seal
    its OpenID Connect state cookie; each with a key derived for it alone."""

    context = _SIGN_IN_KEY_CONTEXT
    expired = SignInExpired

    def __init__(self, secret: bytes) -> None:
        super().__init__(secret)
        self._state_key = _derive_key(secret, _OIDC_STATE_KEY_CONTEXT)

    def issue(
        self, *, email: str, expires_at: datetime, issued_at: datetime | None = None
    ) -> tuple[str, SignInClaims]:
        """A link token letting ``email`` sign in once until ``expires_at``, and its claims."""
        claims = {"j": secrets.token_urlsafe(12), "e": email.strip().lower()}
        body = _stamped(claims, expires_at=expires_at, issued_at=issued_at)
        return _seal(self._key, body), self._claims(body)

    def seal_state(
        self,
        *,
        state: str,
        nonce: str,
        code_verifier: str,
        next_path: str,
        expires_at: datetime,
        issued_at: datetime | None = None,
    ) -> str:
        """The OpenID Connect state cookie's value."""
        body = {"s": state, "n": nonce, "v": code_verifier, "p": next_path}
        return _seal(self._state_key, _stamped(body, expires_at=expires_at, issued_at=issued_at))

    def open_state(self, sealed: str, *, now: datetime) -> ConsoleStateClaims:
        """What a genuine, unexpired state cookie holds.

        Raises:
            TokenError: not sealed by this secret, malformed, or expired.
        """
        return _verified(
            self._state_key, sealed, now=now, read=_state_claims, expired=_state_expired
        )

    @staticmethod
    def _claims(body: Mapping[str, object]) -> SignInClaims:
        return SignInClaims.model_validate({"jti": body["j"], "email": body["e"], **_times(body)})


def _state_claims(body: Mapping[str, object]) -> ConsoleStateClaims:
    return ConsoleStateClaims.model_validate(
        {
            "state": body["s"],
            "nonce": body["n"],
            "code_verifier": body["v"],
            "next_path": body["p"],
            **_times(body),
        }
    )


def _state_expired(claims: ConsoleStateClaims) -> TokenError:
    return TokenError(f"sign-in attempt expired at {claims.expires_at.isoformat()}")


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("timestamps are integers")
    return value
