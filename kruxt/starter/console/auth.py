"""Who is signed in to the staff console, and the FastAPI dependencies that say so.

People sign in with a single-use link e-mailed to an address of the approvers directory, or
with OpenID Connect (:mod:`kruxt.starter.console.oidc`) when it is configured. A sign-in is a
server-side session (``support_console_sessions``) behind an HttpOnly, SameSite=Lax cookie
holding a random token the database keeps only as a hash. Each session has a CSRF secret every
form (field ``csrf_token``) and every unsafe cookie-authenticated API call (header
``X-CSRF-Token``) carries back. Scripts use personal tokens (``Authorization: Bearer``).

What a person may see and do is decided at every request from the approvers directory, never
from the session: someone taken off the directory is out at their next request.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict

from kruxt.adapters.approvers import Approver, ApproverDirectory
from kruxt.adapters.email import Mailer
from kruxt.adapters.email_texts import render_sign_in_email
from kruxt.adapters.email_tokens import SignInClaims, SignInExpired, SignInTokens, TokenInvalid
from kruxt.adapters.postgres.console_sessions import (
    ConsoleSessionStore,
    PersonalToken,
    SessionRecord,
)
from kruxt.adapters.settings import ConfigurationError, Settings, is_loopback_host
from kruxt.models.playbooks import ROLE_RANK, ApproverRole, strongest

if TYPE_CHECKING:
    from kruxt.starter.console.oidc import OidcSignIn

__all__ = [
    "CONSOLE_HOME",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "SIGN_IN_PATH",
    "Auth",
    "ConsoleAction",
    "ConsoleAuth",
    "ConsoleUser",
    "CsrfRefused",
    "SignInRefused",
    "SignedIn",
    "StaffApiUser",
    "StaffMember",
    "client_of",
    "console_action",
    "console_auth",
    "console_auth_from",
    "console_user",
    "csrf_token_for",
    "new_personal_token",
    "safe_next",
    "staff_api_user",
]

log = logging.getLogger(__name__)

SESSION_COOKIE = "kruxt_console"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SIGN_IN_PATH = "/console/sign-in"
CONSOLE_HOME = "/console"
LINK_VALID_FOR = timedelta(minutes=15)
# Links mailed to one person within LINK_VALID_FOR, at most.
MAX_LINKS_PER_WINDOW = 3
# Personal tokens say what they are, so a leaked one is recognised (secret scanners, logs).
TOKEN_PREFIX = "kxp_"  # noqa: S105 (a label, not a secret)
# Longer than any token we issue: nothing longer is hashed or looked up.
MAX_CREDENTIAL_CHARS = 200
MAX_NEXT_CHARS = 500
MAX_TOKEN_NAME_CHARS = 100
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SIGNED_IN = "console_signed_in"  # request.state: the session found for this request


def _utcnow() -> datetime:
    return datetime.now(UTC)


class StaffMember(BaseModel):
    """A person of the approvers directory, signed in; rebuilt from the directory at each
    request, so the roles are always the directory's."""

    model_config = ConfigDict(frozen=True)

    email: str
    name: str
    roles: list[ApproverRole]

    @classmethod
    def of(cls, approver: Approver) -> StaffMember:
        """The directory's entry as a console user."""
        return cls(email=str(approver.email).lower(), name=approver.name, roles=approver.roles)

    def may_approve(self, role: ApproverRole) -> bool:
        """True when one of this person's roles covers ``role`` (the directory's rule)."""
        return any(ROLE_RANK[r] >= ROLE_RANK[role] for r in self.roles)

    @property
    def strongest_role(self) -> ApproverRole:
        """The role that covers all the others."""
        return strongest(self.roles)

    @property
    def is_staff(self) -> bool:
        """Holds the ``staff`` role, which covers every approval."""
        return self.may_approve(ApproverRole.STAFF)


@dataclass(frozen=True)
class SignedIn:
    """The person a request is signed in as, and the session it came with."""

    member: StaffMember
    session: SessionRecord


class SignInRefused(Exception):
    """A sign-in that did not happen; ``reason`` is said to the person, ``status`` is HTTP's."""

    def __init__(self, reason: str, *, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def hash_credential(value: str) -> str:
    """The SHA-256 a session cookie or personal token is stored and looked up by."""
    return hashlib.sha256(value.encode()).hexdigest()


def safe_next(path: str | None) -> str:
    """Where to go after signing in: a path of the console, never another site."""
    if not path or len(path) > MAX_NEXT_CHARS or "\\" in path or path.startswith("//"):
        return CONSOLE_HOME
    parts = urllib.parse.urlsplit(path)
    if (
        parts.scheme
        or parts.netloc
        or not (parts.path == CONSOLE_HOME or parts.path.startswith(CONSOLE_HOME + "/"))
    ):
        return CONSOLE_HOME
    if parts.path.startswith(SIGN_IN_PATH):
        return CONSOLE_HOME
    return path


def client_of(request: Request) -> str:
    """Where a request came from, for the audit log: address and user agent."""
    host = request.client.host if request.client else "unknown"
    return f"{host} {request.headers.get('user-agent', '')}".strip()


@dataclass
class ConsoleAuth:
    """Sign-in links, sessions, CSRF secrets and personal tokens of the staff console.

    ``directory`` decides who may sign in and with which roles; ``tokens`` signs the links
    (KRUXT_LINK_SECRET, a key of their own); ``mailer`` sends them (the outbox in dev);
    ``public_url`` is where the links point, and whether cookies may go over plain HTTP
    (only to a loopback address: dev and tests).
    """

    store: ConsoleSessionStore
    directory: ApproverDirectory
    tokens: SignInTokens
    mailer: Mailer
    public_url: str
    session_hours: int = 12
    oidc: OidcSignIn | None = None
    now: Callable[[], datetime] = field(default=_utcnow)

    @property
    def secure_cookies(self) -> bool:
        """Cookies are ``Secure`` unless the console is served over HTTP on loopback."""
        parts = urllib.parse.urlsplit(self.public_url)
        return not (parts.scheme == "http" and is_loopback_host(parts.hostname or ""))

    def member(self, email: str) -> StaffMember | None:
        """The directory's person of this e-mail, as a console user; None for a stranger."""
        approver = self.directory.by_email(email)
        return StaffMember.of(approver) if approver is not None else None

    # --- e-mailed links -------------------------------------------------------------------

    def link_url(self, token: str, next_path: str = CONSOLE_HOME) -> str:
        """The sign-in link of ``token`` (going on to ``next_path`` once signed in)."""
        url = f"{self.public_url.rstrip('/')}{SIGN_IN_PATH}/{token}"
        target = safe_next(next_path)
        return (
            url if target == CONSOLE_HOME else f"{url}?{urllib.parse.urlencode({'next': target})}"
        )

    async def issue_link(self, member: StaffMember, *, next_path: str = CONSOLE_HOME) -> str:
        """A new single-use sign-in link for ``member``, recorded (not mailed)."""
        now = self.now()
        token, claims = self.tokens.issue(
            email=member.email, expires_at=now + LINK_VALID_FOR, issued_at=now
        )
        await self.store.record_link(claims)
        return self.link_url(token, next_path)

    async def request_link(self, email: str, *, next_path: str = CONSOLE_HOME) -> bool:
        """Mail a sign-in link when ``email`` is in the directory; True when one was sent.

        The caller answers the same whatever this returns: whether someone is on the staff
        list is not for a stranger to learn.
        """
        member = self.member(email)
        if member is None:
            # Logged, not audited: anyone can post any address, and must not fill the log.
            log.warning("console sign-in link refused: not on the staff list")
            return False
        recent = await self.store.links_issued_since(member.email, self.now() - LINK_VALID_FOR)
        if recent >= MAX_LINKS_PER_WINDOW:
            # Whoever keeps asking must not fill a colleague's mailbox (or the audit log).
            log.warning("console sign-in link not sent: %d sent in the last 15 min", recent)
            return False
        url = await self.issue_link(member, next_path=next_path)
        await self.mailer.send(
            render_sign_in_email(
                to=member.email,
                name=member.name,
                url=url,
                expires_at=self.now() + LINK_VALID_FOR,
            )
        )
        return True

    def check_link(self, token: str) -> SignInClaims:
        """The claims of a genuine, unexpired link (shown before it is used; not consumed).

        Raises:
            SignInRefused: forged, malformed or expired.
        """
        try:
            return self.tokens.verify(token, now=self.now())
        except TokenInvalid as exc:
            raise SignInRefused(
                "This sign-in link is not valid: it is incomplete or was changed."
            ) from exc
        except SignInExpired as exc:
            raise SignInRefused(
                "This sign-in link has expired: ask for a new one.", status=410
            ) from exc

    async def link_used(self, claims: SignInClaims) -> bool:
        """Whether the link of ``claims`` was used already."""
        return await self.store.link_used(claims.jti)

    async def sign_in_with_link(self, token: str, *, used_from: str) -> tuple[str, SignedIn]:
        """Use a link (once) and open a session: the cookie value and who signed in.

        Raises:
            SignInRefused: invalid, expired, used before, or its person left the directory.
        """
        try:
            claims = self.tokens.verify(token, now=self.now())
        except SignInExpired as exc:
            await self.store.record_refused(
                exc.claims.email, via="link", reason="expired", used_from=used_from
            )
            raise SignInRefused(
                "This sign-in link has expired: ask for a new one.", status=410
            ) from exc
        except TokenInvalid as exc:
            # Not ours: logged, never audited (junk must not fill the audit log).
            log.warning("console sign-in refused: %s link", exc.reason)
            raise SignInRefused(
                "This sign-in link is not valid: it is incomplete or was changed."
            ) from exc
        if not await self.store.consume_link(claims, used_from=used_from):
            raise SignInRefused(
                "This sign-in link was used already: each link works once. Ask for a new one.",
                status=409,
            )
        return await self.start_session(claims.email, via="link", used_from=used_from)

    # --- sessions -------------------------------------------------------------------------

    async def start_session(self, email: str, *, via: str, used_from: str) -> tuple[str, SignedIn]:
        """A new session for the directory's ``email``: the cookie value and who it is.

        Raises:
            SignInRefused: ``email`` is not (or no longer) in the directory (audited).
        """
        member = self.member(email)
        if member is None:
            await self.store.record_refused(
                email, via=via, reason="not on the staff list", used_from=used_from
            )
            raise SignInRefused("You are not on the staff list of this console.", status=403)
        cookie = secrets.token_urlsafe(32)
        session = await self.store.create_session(
            email=member.email,
            token_hash=hash_credential(cookie),
            csrf_token=secrets.token_urlsafe(32),
            via=via,
            expires_at=self.now() + timedelta(hours=self.session_hours),
            created_from=used_from,
        )
        return cookie, SignedIn(member=member, session=session)

    async def session_of(self, cookie: str | None) -> SignedIn | None:
        """Who a session cookie signs in: None when unknown, ended, expired, or its person is
        no longer in the directory."""
        if not cookie or len(cookie) > MAX_CREDENTIAL_CHARS:
            return None
        session = await self.store.session(hash_credential(cookie))
        if session is None or session.revoked_at is not None or self.now() >= session.expires_at:
            return None
        member = self.member(session.email)
        return SignedIn(member=member, session=session) if member is not None else None

    async def signed_in(self, request: Request) -> SignedIn | None:
        """Who ``request`` is signed in as (looked up once per request)."""
        if not hasattr(request.state, _SIGNED_IN):
            found = await self.session_of(request.cookies.get(SESSION_COOKIE))
            setattr(request.state, _SIGNED_IN, found)
        signed: SignedIn | None = getattr(request.state, _SIGNED_IN)
        return signed

    async def sign_out(self, cookie: str | None) -> bool:
        """End the session of ``cookie`` (audited); False when there was none to end."""
        if not cookie or len(cookie) > MAX_CREDENTIAL_CHARS:
            return False
        return await self.store.revoke_session(hash_credential(cookie))

    def set_cookie(self, response: Response, cookie: str, session: SessionRecord) -> None:
        """Give the browser its session cookie, expiring with the session."""
        response.set_cookie(
            SESSION_COOKIE,
            cookie,
            max_age=max(0, int((session.expires_at - self.now()).total_seconds())),
            path="/",
            secure=self.secure_cookies,
            httponly=True,
            samesite="lax",
        )

    def clear_cookie(self, response: Response) -> None:
        """Take the session cookie back."""
        response.delete_cookie(
            SESSION_COOKIE, path="/", secure=self.secure_cookies, httponly=True, samesite="lax"
        )

    # --- personal tokens ------------------------------------------------------------------

    async def create_token(self, email: str, *, name: str = "") -> tuple[PersonalToken, str]:
        """A personal API token for the directory's ``email``: the record and the token,
        which is shown once and stored only as a hash.

        Raises:
            SignInRefused: ``email`` is not in the directory.
        """
        return await new_personal_token(self.store, self.directory, email, name=name)

    async def token_member(self, token: str) -> StaffMember | None:
        """Who a personal token acts for: None when unknown, revoked, or its person left the
        directory."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_CREDENTIAL_CHARS:
            return None
        record = await self.store.use_token(hash_credential(token))
        return self.member(record.email) if record is not None else None


async def new_personal_token(
    store: ConsoleSessionStore, directory: ApproverDirectory, email: str, *, name: str = ""
) -> tuple[PersonalToken, str]:
    """A personal API token for the directory's ``email`` (``kruxt console token create``):
    the record, and the token, shown once and stored only as a hash.

    Raises:
        SignInRefused: ``email`` is not in the directory.
    """
    approver = directory.by_email(email)
    if approver is None:
        raise SignInRefused(f"{email!r} is not in the approvers directory", status=403)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = await store.create_token(
        email=str(approver.email).lower(),
        name=name[:MAX_TOKEN_NAME_CHARS],
        token_hash=hash_credential(token),
    )
    return record, token


def console_auth_from(
    settings: Settings, store: ConsoleSessionStore, directory: ApproverDirectory, mailer: Mailer
) -> ConsoleAuth | None:
    """The console's sign-in as configured; None (the console is off) without
    KRUXT_LINK_SECRET, which signs its links and its OpenID Connect state.

    Raises:
        ConfigurationError: OpenID Connect is half configured.
    """
    if settings.link_secret is None:
        log.info("KRUXT_LINK_SECRET unset: the staff console is off")
        return None
    oidc_settings = (settings.oidc_issuer, settings.oidc_client_id, settings.oidc_client_secret)
    oidc: OidcSignIn | None = None
    if any(oidc_settings):
        if not all(oidc_settings) or settings.oidc_client_secret is None:
            raise ConfigurationError(
                "OpenID Connect needs KRUXT_OIDC_ISSUER, KRUXT_OIDC_CLIENT_ID and "
                "KRUXT_OIDC_CLIENT_SECRET together"
            )
        from kruxt.starter.console.oidc import OidcSignIn

        oidc = OidcSignIn(
            issuer=str(settings.oidc_issuer),
            client_id=str(settings.oidc_client_id),
            client_secret=settings.oidc_client_secret.get_secret_value(),
            redirect_uri=f"{settings.public_url.rstrip('/')}/console/oidc/callback",
        )
    return ConsoleAuth(
        store=store,
        directory=directory,
        tokens=SignInTokens(settings.link_secret.get_secret_value().encode()),
        mailer=mailer,
        public_url=settings.public_url,
        session_hours=settings.console_session_hours,
        oidc=oidc,
    )


# --- FastAPI dependencies --------------------------------------------------------------------


def console_auth(request: Request) -> ConsoleAuth:
    """The app's console sign-in (``ApiDeps.console.auth``); 404 when the console is off."""
    console = getattr(request.app.state.deps, "console", None)
    if console is None:
        raise HTTPException(
            status_code=404,
            detail={"error": "not_configured", "detail": "the staff console is off"},
        )
    auth: ConsoleAuth = console.auth
    return auth


Auth = Annotated[ConsoleAuth, Depends(console_auth)]


def _sign_in_first(request: Request) -> HTTPException:
    """To the sign-in page, and back here after (htmx swaps cannot follow a redirect to a
    whole page: they are told to load it instead)."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method not in SAFE_METHODS:
        target = request.headers.get("hx-current-url") or CONSOLE_HOME
        target = urllib.parse.urlsplit(target).path or CONSOLE_HOME
    location = f"{SIGN_IN_PATH}?{urllib.parse.urlencode({'next': safe_next(target)})}"
    if request.headers.get("hx-request"):
        return HTTPException(
            status_code=401,
            detail={"error": "unauthorized", "detail": "sign in to the console first"},
            headers={"HX-Redirect": location},
        )
    return HTTPException(
        status_code=303,
        detail={"error": "sign_in_required", "detail": "sign in to the console first"},
        headers={"Location": location},
    )


class CsrfRefused(HTTPException):
    """A console post without its session's CSRF token: 403, as a page for a browser's form
    (``auth_routes.csrf_refused_page``), in the API's error shape for everything else."""

    def __init__(self) -> None:
        super().__init__(
            status_code=403,
            detail={
                "error": "csrf_refused",
                "detail": "the form is stale or did not come from the console: reload the page",
            },
        )


def _csrf_matches(signed: SignedIn, presented: object) -> bool:
    return isinstance(presented, str) and hmac.compare_digest(
        presented.encode(), signed.session.csrf_token.encode()
    )


async def console_user(request: Request, auth: Auth) -> StaffMember:
    """The signed-in person, for an HTML page; otherwise a redirect to the sign-in page."""
    signed = await auth.signed_in(request)
    if signed is None:
        raise _sign_in_first(request)
    return signed.member


async def console_action(request: Request, auth: Auth) -> StaffMember:
    """The signed-in person, for a console form post carrying the session's CSRF token
    (field ``csrf_token`` or header ``X-CSRF-Token``); else the sign-in page, or 403."""
    signed = await auth.signed_in(request)
    if signed is None:
        raise _sign_in_first(request)
    presented: object = request.headers.get(CSRF_HEADER)
    if presented is None:
        form = await request.form()
        presented = form.get(CSRF_FIELD)
    if not _csrf_matches(signed, presented):
        raise CsrfRefused()
    return signed.member


_bearer = HTTPBearer(auto_error=False, description="a personal token: `kruxt console token create`")


async def staff_api_user(
    request: Request,
    auth: Auth,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> StaffMember:
    """The person a ``/v1/staff`` call acts for: a personal token (``Authorization: Bearer``),
    or the console's session cookie with, on unsafe methods, the ``X-CSRF-Token`` header."""
    unauthorized = HTTPException(
        status_code=401,
        detail={
            "error": "unauthorized",
            "detail": "a console session or personal token is required",
        },
        headers={"WWW-Authenticate": "Bearer"},
    )
    if request.headers.get("authorization"):
        member = await auth.token_member(credentials.credentials) if credentials else None
        if member is None:
            raise unauthorized
        return member
    signed = await auth.signed_in(request)
    if signed is None:
        raise unauthorized
    if request.method not in SAFE_METHODS and not _csrf_matches(
        signed, request.headers.get(CSRF_HEADER)
    ):
        raise CsrfRefused()
    return signed.member


ConsoleUser = Annotated[StaffMember, Depends(console_user)]
ConsoleAction = Annotated[StaffMember, Depends(console_action)]
StaffApiUser = Annotated[StaffMember, Depends(staff_api_user)]


def csrf_token_for(request: Request) -> str:
    """The CSRF token of the request's session, for templates ("" before anyone signed in)."""
    signed: SignedIn | None = getattr(request.state, _SIGNED_IN, None)
    return signed.session.csrf_token if signed is not None else ""
