"""A local server speaking the OpenAI Chat Completions protocol, scripted answer by answer.

The real ``openai`` client talks to it over HTTP, so tests exercise the SDK's own request
building, response parsing and error mapping. It refuses what the API refuses, in the API's
order and error shape: a missing or wrong bearer key (401 ``invalid_api_key``), an unknown
path (404), a body that is not JSON with ``model`` and ``messages`` (400). Only a request that
passed those checks takes the next scripted behaviour from the queue, so a refused request
never uses up an answer. Every request is recorded (parsed JSON body and headers).

    with FakeOpenAIServer(api_key="sk-test") as server:
        server.script(status(429, headers={"retry-after": "1"}), valid({...}))
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes._base import (
    FakeHandler,
    RecordedRequest,
    Script,
    ThreadedHTTPFake,
    json_or_text,
)

__all__ = [
    "DEFAULT_API_KEY",
    "Behaviour",
    "FakeOpenAIServer",
    "RecordedRequest",
    "content_filter",
    "delay",
    "finish_length",
    "malformed_json",
    "refusal",
    "status",
    "valid",
]

DEFAULT_USAGE = (321, 54)
DEFAULT_API_KEY = "sk-test"
COMPLETIONS_PATH = "/v1/chat/completions"

_ERROR_SHAPES: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}


@dataclass(frozen=True)
class Behaviour:
    """How the server answers one request."""

    kind: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content: str | None = None
    refusal: str | None = None
    finish_reason: str = "stop"
    error: dict[str, Any] | None = None
    delay_s: float = 0.0
    then: Behaviour | None = None
    usage: tuple[int, int] = DEFAULT_USAGE


def valid(result: dict[str, Any], *, usage: tuple[int, int] = DEFAULT_USAGE) -> Behaviour:
    """A successful completion whose content is ``result`` as JSON."""
    return Behaviour("valid", content=json.dumps(result), usage=usage)


def status(
    code: int,
    *,
    headers: dict[str, str] | None = None,
    message: str | None = None,
    error_type: str | None = None,
    error_code: str | None = None,
) -> Behaviour:
    """An HTTP error with OpenAI's error body ``{"error": {message, type, param, code}}``."""
    default_type, default_code = _ERROR_SHAPES.get(code, ("invalid_request_error", None))
    return Behaviour(
        "status",
        status=code,
        headers=dict(headers or {}),
        error={
            "message": message or f"fake error {code}",
            "type": error_type or default_type,
            "param": None,
            "code": error_code or default_code,
        },
    )


def delay(seconds: float, then: Behaviour | None = None) -> Behaviour:
    """Wait before answering (to make the client time out), then answer like ``then``."""
    return Behaviour("delay", delay_s=seconds, then=then)


def malformed_json(content: str = '{"summary": "Login broken", "severity": ') -> Behaviour:
    """A completion whose content is not JSON of the schema."""
    return Behaviour("malformed_json", content=content)


def refusal(text: str = "I can't help with that") -> Behaviour:
    """The model refuses: ``message.refusal`` set, no content."""
    return Behaviour("refusal", refusal=text)


def finish_length() -> Behaviour:
    """The answer was cut at the token limit."""
    return Behaviour(
        "finish_length", content='{"summary": "The user cannot', finish_reason="length"
    )


def content_filter() -> Behaviour:
    """The content filter stopped the answer."""
    return Behaviour("content_filter", finish_reason="content_filter")


class FakeOpenAIServer(ThreadedHTTPFake):
    """A ``ThreadingHTTPServer`` on 127.0.0.1 in a background thread; use as a context manager."""

    def __init__(self, *, api_key: str = DEFAULT_API_KEY) -> None:
        # Only ``Authorization: Bearer <api_key>`` is let in, as the API checks its keys.
        self.api_key = api_key
        self.requests: list[RecordedRequest] = []
        self._script: Script[Behaviour] = Script()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._serve(_handler_for(self), name="fake-openai")

    @property
    def base_url(self) -> str:
        """The URL to give the client: ``http://127.0.0.1:<port>/v1``."""
        return f"{self.base}/v1"

    def script(self, *behaviours: Behaviour) -> None:
        """Queue how the next requests are answered, in order."""
        self._script.extend(behaviours)

    @property
    def pending(self) -> int:
        """Scripted behaviours not used yet."""
        return len(self._script)

    def stop(self) -> None:
        """Stop serving; delayed answers are cut short."""
        self._closing.set()
        super().stop()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _refusal(self, request: RecordedRequest) -> tuple[int, dict[str, Any]] | None:
        """Why the API would refuse this request (status, body), checked in the API's order."""
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth.removeprefix("Bearer ").strip():
            return 401, _error_body(_NO_KEY, "invalid_request_error", code="invalid_api_key")
        if auth != f"Bearer {self.api_key}":
            return 401, _error_body(
                "Incorrect API key provided. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                code="invalid_api_key",
            )
        if request.path.split("?", 1)[0].rstrip("/") != COMPLETIONS_PATH:
            message = f"Invalid URL ({request.method} {request.path})"
            return 404, _error_body(message, "invalid_request_error")
        content_type = request.headers.get("content-type", "")
        if content_type.split(";", 1)[0].strip().lower() != "application/json":
            message = f"Invalid Content-Type header ({content_type}), expected application/json."
            return 400, _error_body(message, "invalid_request_error")
        body = request.json
        if not isinstance(body, dict):
            return 400, _error_body(_NOT_JSON, "invalid_request_error")
        if not isinstance(body.get("model"), str) or not body["model"]:
            return 400, _error_body("you must provide a model parameter", "invalid_request_error")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return 400, _error_body(
                "Missing required parameter: 'messages'.",
                "invalid_request_error",
                param="messages",
                code="missing_required_parameter",
            )
        return None


def _handler_for(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(FakeHandler):
        def do_POST(self) -> None:
            body = json_or_text(self.read_body())
            request = RecordedRequest(
                method="POST", path=self.path, headers=self.header_map(), json=body
            )
            server._record(request)
            refused = server._refusal(request)
            if refused is not None:
                self._send_json(*refused)
                return
            behaviour = server._script.take()
            if behaviour is None:
                # Loud: a test forgot to script this request.
                self._send_json(418, _error_body("fake server: nothing scripted", "fake_error"))
                return
            if behaviour.kind == "delay":
                if server._closing.wait(behaviour.delay_s):
                    return
                behaviour = behaviour.then or valid(_DEFAULT_RESULT)
            model = body.get("model", "fake-model") if isinstance(body, dict) else "fake-model"
            if behaviour.error is not None:
                self._send_json(behaviour.status, {"error": behaviour.error}, behaviour.headers)
            else:
                self._send_json(200, _completion(behaviour, model), behaviour.headers)

        def _send_json(
            self, code: int, payload: dict[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            # Every answer of the API carries a request id, errors too.
            request_id = {"x-request-id": f"req_{uuid.uuid4().hex[:16]}"}
            self.send_json(code, payload, request_id | (headers or {}))

    return Handler


_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)
_NOT_JSON = (
    "We could not parse the JSON body of your request. The OpenAI API expects a JSON payload."
)


def _error_body(
    message: str, error_type: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """OpenAI's error object: ``{"error": {message, type, param, code}}``."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def _completion(behaviour: Behaviour, model: str) -> dict[str, Any]:
    """A chat.completion object as the API documents it."""
    prompt_tokens, completion_tokens = behaviour.usage
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": behaviour.content,
                    "refusal": behaviour.refusal,
                },
                "logprobs": None,
                "finish_reason": behaviour.finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "system_fingerprint": "fp_fake",
    }


_DEFAULT_RESULT: dict[str, Any] = {
    "summary": "The member cannot log in after several wrong passwords.",
    "severity": "P2",
    "category": "auth_login",
    "playbook": "auth_login",
    "probable_root_cause": "The account was locked after repeated failed logins.",
    "recommended_action": "Check the lock state and propose unlocking the account.",
    "suspected_injection": False,
    "confidence": 0.9,
}
