"""The remote codec endpoint: the Temporal Web UI (and ``temporal --codec-endpoint``) decrypts
workflow history through ``POST /codec/decode``.

The protocol is Temporal's (samples-python ``encryption/codec_server.py``): a JSON body
``{"payloads": [...]}`` of payloads in protobuf JSON form, answered in the same shape. The UI
calls from the browser, so the routes answer CORS preflights, for the configured UI origins
only.

Who may decrypt: a caller presenting ``Authorization: Bearer $KRUXT_CODEC_TOKEN`` (the
``temporal`` CLI's ``--codec-auth``, or a proxy in front of the UI that adds it for signed-in
operators); or, when ``KRUXT_CODEC_ALLOW_LOOPBACK`` is on (``kruxt dev`` only, and only with
the API bound to loopback), a caller on this machine, which could open the unauthenticated dev
Web UI and read the same history anyway. A browser request from any origin other than the UI's
is refused whatever it presents, so a web page open in the developer's browser cannot use the
loopback allowance.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import PayloadCodec

from kruxt.adapters.payload_codec import PayloadDecryptionError, PayloadKeyError

ALLOWED_HEADERS = "content-type, x-namespace, authorization"
_Transform = Callable[[Sequence[Payload]], Awaitable[list[Payload]]]


@dataclass(frozen=True)
class CodecContext:
    """What the codec routes need, built from settings by the entrypoint."""

    codec: PayloadCodec
    token: str | None
    allow_loopback: bool
    cors_origins: frozenset[str]


def parse_origins(text: str) -> frozenset[str]:
    """``KRUXT_CODEC_CORS_ORIGINS``: comma-separated origins, trailing slashes ignored."""
    return frozenset(o.strip().rstrip("/") for o in text.split(",") if o.strip())


def codec_router(get_ctx: Callable[[Request], CodecContext]) -> APIRouter:
    """``POST /codec/decode`` and ``/codec/encode``, with their CORS preflights."""
    router = APIRouter(prefix="/codec", tags=["ops"])

    @router.options("/{operation}", include_in_schema=False)
    async def preflight(request: Request, operation: str) -> Response:
        """Answer the browser's preflight for the UI's origins; refuse every other."""
        ctx = get_ctx(request)
        origin = request.headers.get("origin", "")
        if operation not in ("decode", "encode") or origin not in ctx.cors_origins:
            return Response(status_code=403)
        return Response(
            status_code=204,
            headers={
                **_cors_headers(origin),
                "Access-Control-Allow-Methods": "POST",
                "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                "Access-Control-Max-Age": "600",
            },
        )

    async def apply(request: Request, transform: Callable[[CodecContext], _Transform]) -> Response:
        ctx = get_ctx(request)
        origin = request.headers.get("origin")
        if origin is not None and origin not in ctx.cors_origins:
            return _error(403, "forbidden_origin", f"origin {origin} may not use the codec", None)
        cors = _cors_headers(origin) if origin else {}
        if not _authorized(request, ctx):
            return _error(
                401,
                "unauthorized",
                "a valid bearer token is required",
                {**cors, "WWW-Authenticate": "Bearer"},
            )
        try:
            parsed = json_format.Parse(await request.body(), Payloads())
        except (json_format.ParseError, UnicodeDecodeError) as exc:
            return _error(400, "invalid_request", f"not a payloads document: {exc}", cors)
        try:
            result = await transform(ctx)(parsed.payloads)
        except (PayloadKeyError, PayloadDecryptionError) as exc:
            return _error(422, "undecodable_payload", str(exc), cors)
        body = {"payloads": [json_format.MessageToDict(p) for p in result]}
        return Response(json.dumps(body), media_type="application/json", headers=cors)

    @router.post("/decode")
    async def decode(request: Request) -> Response:
        """Decrypt payloads for the Web UI or the CLI."""
        return await apply(request, lambda ctx: ctx.codec.decode)

    @router.post("/encode")
    async def encode(request: Request) -> Response:
        """Encrypt payloads (the CLI's ``--codec-endpoint`` uses it to send input)."""
        return await apply(request, lambda ctx: ctx.codec.encode)

    return router


def _authorized(request: Request, ctx: CodecContext) -> bool:
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if (
        ctx.token
        and scheme.lower() == "bearer"
        and hmac.compare_digest(presented.strip().encode(), ctx.token.encode())
    ):
        return True
    return ctx.allow_loopback and _is_loopback(request.client.host if request.client else "")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _cors_headers(origin: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }


def _error(status: int, error: str, detail: str, headers: dict[str, str] | None) -> Response:
    return JSONResponse(
        status_code=status, content={"error": error, "detail": detail}, headers=headers
    )
