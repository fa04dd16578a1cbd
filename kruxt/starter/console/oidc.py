"""OpenID Connect sign-in to the staff console, when ``KRUXT_OIDC_*`` are set.

The authorization-code flow with PKCE against one identity provider, found by discovery
(``<issuer>/.well-known/openid-configuration``): authlib's OAuth 2.0 client builds the
authorization URL and exchanges the code; the ``id_token`` is verified with joserfc (authlib's
JOSE library) against the provider's published keys: signature, issuer, audience, expiry and
the nonce of this very attempt. Its ``email`` must be verified by the provider and belong to
the approvers directory; the directory, not the provider, says what the person may do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

__all__ = ["OidcError", "OidcSignIn"]

log = logging.getLogger(__name__)

SCOPE = "openid email profile"
HTTP_TIMEOUT_S = 10.0
# Clocks of the provider and ours may differ a little.
LEEWAY_S = 60
SIGNING_ALGORITHMS = ["RS256", "ES256", "PS256"]
DISCOVERY_PATH = "/.well-known/openid-configuration"


class OidcError(Exception):
    """The provider's answer signs nobody in; the message says why (for the audit log)."""


@dataclass
class OidcSignIn:
    """One identity provider, its metadata and keys fetched on first use and kept."""

    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str
    timeout_s: float = HTTP_TIMEOUT_S
    _metadata: dict[str, Any] | None = field(default=None, init=False, repr=False)
    _keys: KeySet | None = field(default=None, init=False, repr=False)

    def _client(self) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.client_id,
            client_secret=self.client_secret,
            scope=SCOPE,
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            timeout=self.timeout_s,
        )

    async def _get_json(self, url: str) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=self.timeout_s) as http:
            response = await http.get(url)
            response.raise_for_status()
            body = response.json()
        if not isinstance(body, dict):
            raise OidcError(f"{url} did not answer a JSON object")
        return body

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (fetched once)."""
        if self._metadata is None:
            try:
                found = await self._get_json(self.issuer.rstrip("/") + DISCOVERY_PATH)
            except (httpx.HTTPError, ValueError) as exc:
                raise OidcError(f"discovery failed: {type(exc).__name__}") from exc
            if found.get("issuer") != self.issuer:
                raise OidcError("the discovery document names another issuer")
            missing = [
                k
                for k in ("authorization_endpoint", "token_endpoint", "jwks_uri")
                if k not in found
            ]
            if missing:
                raise OidcError(f"the discovery document lacks {', '.join(missing)}")
            self._metadata = found
        return self._metadata

    async def _key_set(self, *, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            url = str((await self.metadata())["jwks_uri"])
            try:
                self._keys = KeySet.import_key_set(await self._get_json(url))  # type: ignore[arg-type]
            except (httpx.HTTPError, ValueError, JoseError) as exc:
                raise OidcError(f"the provider's keys could not be read: {exc}") from exc
        return self._keys

    async def authorization_url(self, *, state: str, nonce: str, code_verifier: str) -> str:
        """Where to send the browser to sign in at the provider."""
        endpoint = str((await self.metadata())["authorization_endpoint"])
        async with self._client() as client:
            url, _ = client.create_authorization_url(
                endpoint, state=state, nonce=nonce, code_verifier=code_verifier
            )
        return str(url)

    async def verified_email(
        self, *, code: str, nonce: str, code_verifier: str, now: datetime
    ) -> str:
        """Exchange ``code`` and return the verified e-mail of the ``id_token`` it yields.

        Raises:
            OidcError: the exchange failed, or the id_token is forged, expired, for another
                client, of another attempt (nonce), or carries no verified e-mail.
        """
        endpoint = str((await self.metadata())["token_endpoint"])
        try:
            async with self._client() as client:
                token = await client.fetch_token(
                    endpoint,
                    code=code,
                    code_verifier=code_verifier,
                    grant_type="authorization_code",
                )
        except (OAuthError, httpx.HTTPError, ValueError) as exc:
            raise OidcError(f"the code exchange failed: {type(exc).__name__}") from exc
        id_token = token.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise OidcError("the provider sent no id_token")
        claims = await self._verified_claims(id_token, nonce=nonce, now=now)
        email = claims.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise OidcError("the id_token carries no e-mail")
        if claims.get("email_verified") is not True:
            raise OidcError("the provider has not verified the e-mail")
        return email.strip().lower()

    async def _verified_claims(self, id_token: str, *, nonce: str, now: datetime) -> dict[str, Any]:
        try:
            decoded = jwt.decode(id_token, await self._key_set(), algorithms=SIGNING_ALGORITHMS)
        except (JoseError, ValueError):
            # The provider may have rotated its keys since we read them: read them once more.
            try:
                decoded = jwt.decode(
                    id_token, await self._key_set(refresh=True), algorithms=SIGNING_ALGORITHMS
                )
            except (JoseError, ValueError) as exc:
                raise OidcError(f"the id_token's signature does not verify: {exc}") from exc
        registry = jwt.JWTClaimsRegistry(
            now=int(now.timestamp()),
            leeway=LEEWAY_S,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.client_id},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(decoded.claims)
        except JoseError as exc:
            raise OidcError(f"the id_token was refused: {exc}") from exc
        return dict(decoded.claims)
