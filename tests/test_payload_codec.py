"""Temporal payloads are encrypted (AES-256-GCM) and readable only through the codec endpoint."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from google.protobuf import json_format
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import PayloadCodec

from kruxt.adapters.payload_codec import (
    EncryptionCodec,
    PayloadDecryptionError,
    PayloadKeyError,
    generate_key,
    key_id_of,
    parse_key,
)
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.adapters.settings import ConfigurationError, Settings
from kruxt.adapters.temporal_dev_server import TemporalDevServer, temporal_cli
from kruxt.bootstrap import payload_codec_from
from kruxt.models.tickets import RoutingPolicy
from kruxt.starter.api.app import ApiDeps, create_app
from kruxt.starter.api.codec_routes import CodecContext
from kruxt.starter.api.main import codec_context_from
from kruxt.starter.intake import IntakeService
from kruxt.workers.composition import build_worker
from tests.conftest import run_payload_codec
from tests.support import bound_socket, eventually

INTAKE_TOKEN = "test-intake-token"
CODEC_TOKEN = "test-codec-token"
UI = "http://localhost:8233"


def plain(data: bytes) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=data)


def as_json(payloads: list[Payload]) -> dict[str, Any]:
    return {"payloads": [json_format.MessageToDict(p) for p in payloads]}


def datas(answer: dict[str, Any]) -> list[bytes]:
    return [base64.b64decode(p.get("data", "")) for p in answer["payloads"]]


def payload_datas(document: Any) -> list[bytes]:
    """The data of every payload in a JSON document (protobuf JSON: base64 ``data``)."""
    if isinstance(document, list):
        return [d for item in document for d in payload_datas(item)]
    if not isinstance(document, dict):
        return []
    if isinstance(document.get("metadata"), dict) and isinstance(document.get("data"), str):
        return [base64.b64decode(document["data"])]
    return [d for value in document.values() for d in payload_datas(value)]


# The header Temporal's OpenTelemetry interceptor carries the trace context in.
TRACE_HEADER = TracingInterceptor().header_key


def payloads_in(message: Message) -> list[Payload]:
    """Every Payload inside a protobuf message but search attributes (plain by design: the
    server indexes them; ours hold statuses and categories, never ticket text) and the trace
    context header (plain by design: Temporal's tracing interceptor writes a W3C traceparent
    there, ids only, once a tracer provider is set, as every process of ours sets one; in this
    test process only when a tracing test ran before in it)."""
    if isinstance(message, Payload):
        return [message]
    found: list[Payload] = []
    for field, value in message.ListFields():
        if field.message_type is None or field.name == "search_attributes":
            continue
        if field.message_type.GetOptions().map_entry:
            header = message.DESCRIPTOR.name == "Header"
            items = [
                v
                for k, v in value.items()
                if isinstance(v, Message) and not (header and k == TRACE_HEADER)
            ]
        else:  # a message, or a repeated container of them
            items = [value] if isinstance(value, Message) else list(value)
        for item in items:
            found += payloads_in(item)
    return found


# ---- the codec -----------------------------------------------------------------------------


async def test_encode_hides_the_data_and_names_the_key() -> None:
    codec = EncryptionCodec(parse_key(generate_key()))
    [encoded] = await codec.encode([plain(b'{"email": "ana@example.com"}')])
    assert encoded.metadata["encoding"] == b"binary/encrypted"
    assert encoded.metadata["encryption-key-id"] == codec.key_id.encode()
    assert b"ana@example.com" not in encoded.SerializeToString()
    [decoded] = await codec.decode([encoded])
    assert decoded == plain(b'{"email": "ana@example.com"}')
    # A fresh nonce each time: the same payload never encrypts to the same bytes.
    [again] = await codec.encode([plain(b'{"email": "ana@example.com"}')])
    assert again.data != encoded.data


async def test_rotated_keys_still_decode_history_written_before() -> None:
    old, new = parse_key(generate_key()), parse_key(generate_key())
    [written_before] = await EncryptionCodec(old).encode([plain(b"before rotation")])
    rotated = EncryptionCodec(new, old_keys=[old])
    assert rotated.key_id == key_id_of(new)
    assert await rotated.decode([written_before]) == [plain(b"before rotation")]
    [written_after] = await rotated.encode([plain(b"after")])
    assert written_after.metadata["encryption-key-id"] == key_id_of(new).encode()

    forgot_the_old_key = EncryptionCodec(new)
    with pytest.raises(PayloadKeyError, match=key_id_of(old)):
        await forgot_the_old_key.decode([written_before])


async def test_tampered_ciphertext_is_refused() -> None:
    codec = EncryptionCodec(parse_key(generate_key()))
    [encoded] = await codec.encode([plain(b'{"verdict": "approve"}')])
    flipped = bytearray(encoded.data)
    flipped[20] ^= 0x01
    tampered = Payload(metadata=dict(encoded.metadata), data=bytes(flipped))
    with pytest.raises(PayloadDecryptionError, match="failed authentication"):
        await codec.decode([tampered])


async def test_unencrypted_history_from_before_still_reads() -> None:
    codec = EncryptionCodec(parse_key(generate_key()))
    assert await codec.decode([plain(b"old")]) == [plain(b"old")]


def test_keys_parse_from_hex_and_base64_and_nothing_shorter() -> None:
    raw = bytes(range(32))
    assert parse_key(raw.hex()) == raw
    assert parse_key(base64.urlsafe_b64encode(raw).decode().rstrip("=")) == raw
    assert parse_key(base64.b64encode(raw).decode()) == raw
    for bad in ("", "too-short", raw.hex()[:-2], base64.b64encode(raw[:16]).decode()):
        with pytest.raises(PayloadKeyError, match="32 random bytes"):
            parse_key(bad)


def test_no_key_no_start() -> None:
    with pytest.raises(ConfigurationError, match="KRUXT_PAYLOAD_KEY is not set"):
        payload_codec_from(Settings(KRUXT_PAYLOAD_KEY=""))
    with pytest.raises(ConfigurationError, match="KRUXT_PAYLOAD_OLD_KEYS"):
        payload_codec_from(Settings(KRUXT_PAYLOAD_KEY=generate_key(), KRUXT_PAYLOAD_OLD_KEYS="x"))


# ---- the codec endpoint ----------------------------------------------------------------------


def codec_app(codec: PayloadCodec, **settings: str) -> Any:
    ctx = codec_context_from(Settings(**settings), codec)  # type: ignore[arg-type]
    deps = ApiDeps(
        intake=None,  # type: ignore[arg-type]
        tickets=None,  # type: ignore[arg-type]
        intake_token=INTAKE_TOKEN,
        health_checks={},
        codec=ctx,
    )
    return create_app(deps)


def http_from(app: Any, client_host: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(client_host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://api")


async def test_decode_needs_the_bearer_token() -> None:
    codec = run_payload_codec()
    encoded = await codec.encode([plain(b"secret body")])
    app = codec_app(codec, KRUXT_CODEC_TOKEN=CODEC_TOKEN)
    async with http_from(app) as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": CODEC_TOKEN}):
            r = await http.post("/codec/decode", json=as_json(encoded), headers=headers)
            assert r.status_code == 401, headers
            assert b"secret body" not in r.content
        r = await http.post(
            "/codec/decode",
            json=as_json(encoded),
            headers={"Authorization": f"Bearer {CODEC_TOKEN}", "X-Namespace": "default"},
        )
        assert r.status_code == 200
        assert datas(r.json()) == [b"secret body"]
        # /encode round-trips through /decode (the CLI sends input through it).
        r = await http.post(
            "/codec/encode",
            json=as_json([plain(b"typed by an operator")]),
            headers={"Authorization": f"Bearer {CODEC_TOKEN}"},
        )
        [sealed] = r.json()["payloads"]
        assert base64.b64decode(sealed["metadata"]["encoding"]) == b"binary/encrypted"
        parsed = json_format.ParseDict(sealed, Payload())
        assert await codec.decode([parsed]) == [plain(b"typed by an operator")]


async def test_undecodable_payloads_are_a_clear_error() -> None:
    other = EncryptionCodec(parse_key(generate_key()))
    foreign = await other.encode([plain(b"x")])
    app = codec_app(run_payload_codec(), KRUXT_CODEC_TOKEN=CODEC_TOKEN)
    async with http_from(app) as http:
        auth = {"Authorization": f"Bearer {CODEC_TOKEN}"}
        r = await http.post("/codec/decode", json=as_json(foreign), headers=auth)
        assert r.status_code == 422
        assert r.json()["error"] == "undecodable_payload"
        assert other.key_id in r.json()["detail"]
        r = await http.post("/codec/decode", content=b"not json", headers=auth)
        assert r.status_code == 400


async def test_cors_preflight_only_for_the_ui_origin() -> None:
    app = codec_app(run_payload_codec(), KRUXT_CODEC_TOKEN=CODEC_TOKEN, KRUXT_CODEC_CORS_ORIGINS=UI)
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace,authorization",
    }
    async with http_from(app) as http:
        r = await http.options("/codec/decode", headers={"Origin": UI, **preflight})
        assert r.status_code == 204
        assert r.headers["access-control-allow-origin"] == UI
        assert r.headers["access-control-allow-credentials"] == "true"
        allowed = {h.strip() for h in r.headers["access-control-allow-headers"].split(",")}
        assert {"content-type", "x-namespace", "authorization"} <= allowed
        assert "POST" in r.headers["access-control-allow-methods"]

        evil = "http://evil.example"
        r = await http.options("/codec/decode", headers={"Origin": evil, **preflight})
        assert r.status_code == 403
        assert "access-control-allow-origin" not in r.headers

        # The real request: the UI's origin gets the CORS headers, another origin nothing.
        encoded = await run_payload_codec().encode([plain(b"x")])
        auth = {"Authorization": f"Bearer {CODEC_TOKEN}"}
        r = await http.post("/codec/decode", json=as_json(encoded), headers={"Origin": UI, **auth})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == UI
        r = await http.post(
            "/codec/decode", json=as_json(encoded), headers={"Origin": evil, **auth}
        )
        assert r.status_code == 403
        assert "access-control-allow-origin" not in r.headers


async def test_dev_loopback_allowance_is_loopback_only() -> None:
    codec = run_payload_codec()
    encoded = await codec.encode([plain(b"dev ticket")])
    app = codec_app(codec, KRUXT_CODEC_ALLOW_LOOPBACK="true", KRUXT_CODEC_CORS_ORIGINS=UI)
    async with http_from(app, "127.0.0.1") as http:
        r = await http.post("/codec/decode", json=as_json(encoded), headers={"Origin": UI})
        assert r.status_code == 200
        assert datas(r.json()) == [b"dev ticket"]
        # A page on another site open in the developer's browser gets nothing.
        r = await http.post(
            "/codec/decode", json=as_json(encoded), headers={"Origin": "http://evil.example"}
        )
        assert r.status_code == 403
    async with http_from(app, "10.1.2.3") as http:
        r = await http.post("/codec/decode", json=as_json(encoded))
        assert r.status_code == 401

    with pytest.raises(ConfigurationError, match="KRUXT_CODEC_ALLOW_LOOPBACK"):
        codec_app(codec, KRUXT_CODEC_ALLOW_LOOPBACK="true", KRUXT_API_HOST="0.0.0.0")  # noqa: S104


async def test_codec_endpoint_is_off_without_a_token_or_the_dev_allowance() -> None:
    app = codec_app(run_payload_codec())
    async with http_from(app) as http:
        r = await http.post("/codec/decode", json={"payloads": []})
        assert r.status_code == 404


# ---- end to end: raw history on the dev server ------------------------------------------------


@dataclass
class Stack:
    http: httpx.AsyncClient
    client: Client
    base_url: str


@pytest.fixture
async def stack(
    dev_client: Client, pool: asyncpg.Pool[Any], task_queue: str
) -> AsyncIterator[Stack]:
    app = create_app(
        ApiDeps(
            intake=IntakeService(dev_client, task_queue=task_queue, policy=RoutingPolicy()),
            tickets=TicketStore(pool),
            intake_token=INTAKE_TOKEN,
            health_checks={},
            codec=CodecContext(
                codec=run_payload_codec(),
                token=CODEC_TOKEN,
                allow_loopback=False,
                cors_origins=frozenset({UI}),
            ),
        )
    )
    sock = bound_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    base_url = f"http://127.0.0.1:{port}"
    try:
        while not server.started:
            await asyncio.sleep(0.05)
        async with (
            build_worker(dev_client, task_queue=task_queue, pool=pool),
            httpx.AsyncClient(base_url=base_url) as http,
        ):
            yield Stack(http=http, client=dev_client, base_url=base_url)
    finally:
        server.should_exit = True
        await serving


@pytest.mark.e2e
async def test_history_holds_no_ticket_text_and_the_endpoint_reads_it(
    stack: Stack, dev_server: TemporalDevServer
) -> None:
    marker = f"zebra-{uuid.uuid4().hex}"
    email = f"{marker}@example.com"
    body = {
        "external_id": f"app-{uuid.uuid4().hex[:10]}",
        "requester": {"id": "u-42", "email": email, "name": "Ana Lima"},
        "subject": f"Where is my data export? {marker}",
        "body": f"I requested a data export last week, what is the status? {marker}",
    }
    auth = {"Authorization": f"Bearer {INTAKE_TOKEN}"}
    accepted = (await stack.http.post("/v1/tickets", json=body, headers=auth)).json()

    async def answered() -> bool:
        r = await stack.http.get(f"/v1/tickets/{accepted['ticket_id']}", headers=auth)
        return r.status_code == 200 and r.json()["status"] == "awaiting_customer"

    await eventually(answered)

    # What anyone with access to the Temporal server sees: no codec, no key.
    raw_client = await Client.connect(dev_server.address, data_converter=pydantic_data_converter)
    history = await raw_client.get_workflow_handle(accepted["workflow_id"]).fetch_history()
    raw = b"".join(event.SerializeToString() for event in history.events)
    assert marker.encode() not in raw
    assert b"Ana Lima" not in raw
    # Patch markers (`workflow.patched`) are written by the SDK's core, plain: only an id.
    events = [
        e for e in history.events if e.marker_recorded_event_attributes.marker_name != "core_patch"
    ]
    payloads = [(event, p) for event in events for p in payloads_in(event)]
    assert len(payloads) > 5  # input, summary, activity inputs and results
    key_id = run_payload_codec().key_id.encode()
    plain = [
        (EventType.Name(event.event_type), dict(p.metadata))
        for event, p in payloads
        if p.metadata.get("encryption-key-id") != key_id
    ]
    assert plain == [], "payloads the codec never saw, by event"

    # What an operator sees through the codec endpoint (the Web UI's path).
    r = await stack.http.post(
        "/codec/decode",
        json=as_json([p for _, p in payloads]),
        headers={"Authorization": f"Bearer {CODEC_TOKEN}", "X-Namespace": "default"},
    )
    assert r.status_code == 200
    decoded = b"".join(datas(r.json()))
    assert email.encode() in decoded
    assert marker.encode() in decoded
    assert b"Ana Lima" in decoded

    # Temporal's own codec client (the `temporal` CLI's --codec-endpoint) speaks to it too.
    show = [
        temporal_cli(),
        "workflow",
        "show",
        "--address",
        dev_server.address,
        "--workflow-id",
        accepted["workflow_id"],
        "--output",
        "json",
        "--codec-endpoint",
        f"{stack.base_url}/codec",
    ]
    shown = await asyncio.to_thread(
        subprocess.run,
        [*show, "--codec-auth", f"Bearer {CODEC_TOKEN}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert marker.encode() in b"".join(payload_datas(json.loads(shown.stdout)))
    refused = await asyncio.to_thread(
        subprocess.run, show, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode != 0  # our 401: no token, no history
    assert marker not in refused.stdout + refused.stderr
