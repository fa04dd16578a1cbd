"""The console's sign-in pages: the e-mailed link, OpenID Connect, and sign-out.

``POST /console/sign-in`` answers the same page whoever asks, and mails only people of the
approvers directory (after the answer, so its timing says nothing either). The link,
``/console/sign-in/{token}``, opens a page with a "Sign in" button: mail scanners and link
previews open every link in a mail, and only the button's ``POST`` uses it up.
"""

from __future__ import annotations

import logging
import secrets
import urllib.parse
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.background import BackgroundTask

from kruxt.adapters.email_tokens import TokenError
from kruxt.starter.console.auth import (
    CONSOLE_HOME,
    SESSION_COOKIE,
    SIGN_IN_PATH,
    Auth,
    ConsoleAction,
    ConsoleAuth,
    CsrfRefused,
    SignedIn,
    SignInRefused,
    client_of,
    safe_next,
)
from kruxt.starter.console.oidc import OidcError
from kruxt.starter.console.templating import render

__all__ = ["auth_router", "csrf_refused_page"]

log = logging.getLogger(__name__)

OIDC_STATE_COOKIE = "kruxt_console_oidc"
OIDC_PATH = "/console/oidc"
OIDC_ATTEMPT_VALID_FOR = timedelta(minutes=10)
MAX_EMAIL_CHARS = 320
# The link's token is in the URL: never sent on to another site.
_LINK_HEADERS = {"Referrer-Policy": "no-referrer"}


def _refused(request: Request, exc: SignInRefused) -> HTMLResponse:
    return render(
        request, "sign_in.html", status_code=exc.status, headers=_LINK_HEADERS, refused=exc.reason
    )


def _signed_in(auth: ConsoleAuth, cookie: str, signed: SignedIn, next_path: str) -> Response:
    response = RedirectResponse(safe_next(next_path), status_code=303)
    auth.set_cookie(response, cookie, signed.session)
    return response


def _from_this_site(request: Request, auth: ConsoleAuth) -> bool:
    """A form post the browser says came from elsewhere is not ours to act on (a login CSRF
    would sign the victim in as the attacker)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    public = urllib.parse.urlsplit(auth.public_url)
    return origin.rstrip("/") == f"{public.scheme}://{public.netloc}"


async def _mail_link(auth: ConsoleAuth, email: str, next_path: str) -> None:
    try:
        await auth.request_link(email, next_path=next_path)
    except Exception:  # after the answer: nobody to tell but the log
        log.exception("the console sign-in link could not be mailed")


async def csrf_refused_page(request: Request, exc: Exception) -> Response:
    """A refused console form post as a page (htmx and API calls get the JSON error)."""
    assert isinstance(exc, CsrfRefused)
    if request.headers.get("hx-request") or not request.url.path.startswith(CONSOLE_HOME):
        return JSONResponse(exc.detail, status_code=exc.status_code)
    back = request.headers.get("hx-current-url") or request.headers.get("referer") or ""
    return render(
        request,
        "sign_in.html",
        status_code=exc.status_code,
        forbidden="This form is out of date or did not come from the console: nothing was done. "
        "Reload the page and try again.",
        back=safe_next(urllib.parse.urlsplit(back).path),
    )


def auth_router() -> APIRouter:
    """The ``/console/sign-in``, ``/console/sign-out`` and ``/console/oidc`` routes; they find
    :class:`ConsoleAuth` on ``ApiDeps.console`` (404 while the console is off)."""
    router = APIRouter(tags=["console"], include_in_schema=False)

    @router.get(SIGN_IN_PATH, response_class=HTMLResponse)
    async def sign_in_page(request: Request, auth: Auth, next: str = CONSOLE_HOME) -> Response:
        """The sign-in form (or straight on, when already signed in)."""
        if await auth.signed_in(request) is not None:
            return RedirectResponse(safe_next(next), status_code=303)
        return render(
            request, "sign_in.html", next_path=safe_next(next), oidc=auth.oidc is not None
        )

    @router.post(SIGN_IN_PATH, response_class=HTMLResponse)
    async def ask_for_link(
        request: Request,
        auth: Auth,
        email: Annotated[str, Form()] = "",
        next: Annotated[str, Form()] = CONSOLE_HOME,
    ) -> Response:
        """Mail a sign-in link to a person of the directory; the same answer for anyone."""
        response = render(request, "sign_in_sent.html")
        address = email.strip()[:MAX_EMAIL_CHARS]
        if address:
            response.background = BackgroundTask(_mail_link, auth, address, safe_next(next))
        return response

    @router.get(SIGN_IN_PATH + "/{token}", response_class=HTMLResponse)
    async def show_link(request: Request, auth: Auth, token: str, next: str = "") -> Response:
        """The link's page: whose it is and a "Sign in" button. Uses nothing up."""
        try:
            claims = auth.check_link(token)
            if await auth.link_used(claims):
                raise SignInRefused(
                    "This sign-in link was used already: each link works once.", status=409
                )
        except SignInRefused as exc:
            return _refused(request, exc)
        return render(
            request,
            "sign_in.html",
            headers=_LINK_HEADERS,
            link_email=claims.email,
            next_path=safe_next(next) if next else "",
        )

    @router.post(SIGN_IN_PATH + "/{token}", response_class=HTMLResponse)
    async def use_link(
        request: Request,
        auth: Auth,
        token: str,
        next: Annotated[str, Form()] = CONSOLE_HOME,
    ) -> Response:
        """Use the link (once): a session, its cookie, and on to the console."""
        if not _from_this_site(request, auth):
            return _refused(request, SignInRefused("This form came from another site.", status=403))
        try:
            cookie, signed = await auth.sign_in_with_link(token, used_from=client_of(request))
        except SignInRefused as exc:
            return _refused(request, exc)
        return _signed_in(auth, cookie, signed, next)

    @router.post("/console/sign-out")
    async def sign_out(request: Request, auth: Auth, _: ConsoleAction) -> Response:
        """End this session (audited) and take the cookie back."""
        await auth.sign_out(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse(SIGN_IN_PATH, status_code=303)
        auth.clear_cookie(response)
        return response

    @router.get(OIDC_PATH + "/login")
    async def oidc_login(request: Request, auth: Auth, next: str = CONSOLE_HOME) -> Response:
        """Off to the identity provider, this attempt's state and nonce in a sealed cookie."""
        if auth.oidc is None:
            return _refused(request, SignInRefused("Single sign-on is not set up.", status=404))
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        try:
            url = await auth.oidc.authorization_url(
                state=state, nonce=nonce, code_verifier=verifier
            )
        except OidcError as exc:
            log.warning("OpenID Connect sign-in unavailable: %s", exc)
            return _refused(
                request, SignInRefused("The identity provider cannot be reached.", status=503)
            )
        now = auth.now()
        sealed = auth.tokens.seal_state(
            state=state,
            nonce=nonce,
            code_verifier=verifier,
            next_path=safe_next(next),
            expires_at=now + OIDC_ATTEMPT_VALID_FOR,
            issued_at=now,
        )
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(
            OIDC_STATE_COOKIE,
            sealed,
            max_age=int(OIDC_ATTEMPT_VALID_FOR.total_seconds()),
            path=OIDC_PATH,
            secure=auth.secure_cookies,
            httponly=True,
            samesite="lax",
        )
        return response

    @router.get(OIDC_PATH + "/callback")
    async def oidc_callback(
        request: Request, auth: Auth, code: str = "", state: str = ""
    ) -> Response:
        """Back from the identity provider: verify its id_token, then a session as for a link."""
        if auth.oidc is None:
            return _refused(request, SignInRefused("Single sign-on is not set up.", status=404))
        try:
            attempt = auth.tokens.open_state(
                request.cookies.get(OIDC_STATE_COOKIE, ""), now=auth.now()
            )
        except TokenError:
            attempt = None
        if attempt is None or not code or not secrets.compare_digest(state, attempt.state):
            # No credential was presented: logged, not audited.
            log.warning("OpenID Connect callback refused: no matching sign-in attempt")
            return _refused(
                request, SignInRefused("This sign-in attempt is unknown or too old: try again.")
            )
        used_from = client_of(request)
        try:
            email = await auth.oidc.verified_email(
                code=code, nonce=attempt.nonce, code_verifier=attempt.code_verifier, now=auth.now()
            )
            cookie, signed = await auth.start_session(email, via="oidc", used_from=used_from)
        except OidcError as exc:
            await auth.store.record_refused(
                "oidc", via="oidc", reason=str(exc), used_from=used_from
            )
            return _refused(
                request, SignInRefused("The identity provider's answer was refused.", status=403)
            )
        except SignInRefused as exc:
            return _refused(request, exc)
        response = _signed_in(auth, cookie, signed, attempt.next_path)
        response.delete_cookie(OIDC_STATE_COOKIE, path=OIDC_PATH)
        return response

    return router
