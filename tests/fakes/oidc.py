"""A local OpenID Connect provider: discovery, the authorization endpoint, the token endpoint
and its JWKS, with id_tokens signed RS256 (joserfc, authlib's JOSE library).

It speaks the authorization-code flow with PKCE as a real provider does: ``/authorize``
signs in whoever the test says (``sign_in_as``) and redirects back with a one-time code;
``/token`` wants the client's credentials (HTTP Basic), the code, the redirect URI and the
PKCE verifier of that code, and answers an id_token for the attempt's nonce. Tests can make
it misbehave the ways a hostile or broken provider would: sign with a key it does not
publish (``forge_signature``), put another nonce in (``nonce_override``), or leave the
e-mail unverified.

    with FakeOidcProvider(client_id="console", client_secret="s3cret") as idp:
        idp.sign_in_as("maya@kruxt.app")
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.fakes._base import FakeHandler, ThreadedHTTPFake

__all__ = ["FakeOidcProvider"]


@dataclass
class _Grant:
    email: str
    email_verified: bool
    nonce: str
    code_challenge: str
    redirect_uri: str


class FakeOidcProvider(ThreadedHTTPFake):
    """An identity provider on 127.0.0.1 for one client; a context manager."""

    def __init__(self, *, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.key = RSAKey.generate_key(2048, parameters={"kid": "fake-1", "use": "sig"})
        # Signs when ``forge_signature`` is set: same kid, a key nobody published.
        self._rogue = RSAKey.generate_key(2048, parameters={"kid": "fake-1", "use": "sig"})
        self.forge_signature = False
        self.nonce_override: str | None = None
        self._user: tuple[str, bool] | None = None
        self._grants: dict[str, _Grant] = {}
        self.token_requests = 0
        self._lock = threading.Lock()
        self._serve(_handler_for(self), name="fake-oidc")

    @property
    def issuer(self) -> str:
        """The issuer URL (the provider's base)."""
        return self.base

    def sign_in_as(self, email: str, *, verified: bool = True) -> None:
        """Who the next visit to ``/authorize`` signs in."""
        with self._lock:
            self._user = (email, verified)

    def discovery(self) -> dict[str, Any]:
        """The ``/.well-known/openid-configuration`` document."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.base}/authorize",
            "token_endpoint": f"{self.base}/token",
            "jwks_uri": f"{self.base}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        }

    def authorize(self, query: dict[str, str]) -> tuple[int, str]:
        """A redirect back to the client with a code (or an error page's status)."""
        with self._lock:
            user = self._user
        if user is None or query.get("client_id") != self.client_id:
            return 400, ""
        if query.get("response_type") != "code" or query.get("code_challenge_method") != "S256":
            return 400, ""
        code = secrets.token_urlsafe(16)
        with self._lock:
            self._grants[code] = _Grant(
                email=user[0],
                email_verified=user[1],
                nonce=query.get("nonce", ""),
                code_challenge=query.get("code_challenge", ""),
                redirect_uri=query.get("redirect_uri", ""),
            )
        back = urllib.parse.urlencode({"code": code, "state": query.get("state", "")})
        return 302, f"{query.get('redirect_uri', '')}?{back}"

    def token(self, headers: dict[str, str], form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The token endpoint's answer to a code exchange."""
        self.token_requests += 1
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if headers.get("authorization") != f"Basic {expected}":
            return 401, {"error": "invalid_client"}
        with self._lock:
            grant = self._grants.pop(form.get("code", ""), None)  # a code works once
        if grant is None or form.get("grant_type") != "authorization_code":
            return 400, {"error": "invalid_grant"}
        if form.get("redirect_uri") != grant.redirect_uri:
            return 400, {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "").encode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
        if challenge.decode() != grant.code_challenge:
            return 400, {"error": "invalid_grant", "error_description": "PKCE"}
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": hashlib.sha256(grant.email.encode()).hexdigest()[:16],
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": self.nonce_override if self.nonce_override is not None else grant.nonce,
            "email": grant.email,
            "email_verified": grant.email_verified,
        }
        key = self._rogue if self.forge_signature else self.key
        id_token = jwt.encode({"alg": "RS256", "kid": "fake-1"}, claims, key)
        return 200, {
            "access_token": secrets.token_urlsafe(16),
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": id_token,
        }


def _handler_for(idp: FakeOidcProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(FakeHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            if url.path == "/.well-known/openid-configuration":
                self.send_json(200, idp.discovery())
            elif url.path == "/jwks":
                self.send_json(200, {"keys": [idp.key.as_dict(private=False)]})
            elif url.path == "/authorize":
                status, location = idp.authorize(query)
                self.send_bytes(status, b"", None, {"location": location} if location else {})
            else:
                self.send_json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            if urllib.parse.urlsplit(self.path).path != "/token":
                self.send_json(404, {"error": "not_found"})
                return
            form = dict(urllib.parse.parse_qsl(self.read_body().decode()))
            status, payload = idp.token(self.header_map(), form)
            self.send_json(status, payload, {"cache-control": "no-store"})

    return Handler
