"""A local server speaking the SendGrid v3 mail-send API, with scriptable failures.

The real ``sendgrid`` client talks to it over HTTP (``SendGridAPIClient(key, host=...)``),
so tests exercise the library's request building and error raising. Every request is
recorded (parsed JSON body and headers); each takes the next scripted failure from a queue,
and with none queued a well-authorised ``POST /v3/mail/send`` is answered 202.

    with FakeSendGridServer() as server:
        server.fail(429, headers={"Retry-After": "7"})
        client = sendgrid.SendGridAPIClient("SG.test", host=server.base_url)
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Failure", "FakeSendGridServer", "RecordedRequest"]

SEND_PATH = "/v3/mail/send"

_MESSAGES = {
    400: ("The from address does not match a verified Sender Identity.", "from"),
    401: ("The provided authorization grant is invalid, expired, or revoked", None),
    403: ("access forbidden", None),
    413: ("payload too large", None),
    429: ("too many requests", None),
    500: ("internal server error", None),
    503: ("service unavailable", None),
}


@dataclass(frozen=True)
class Failure:
    """One scripted error answer: SendGrid's ``{"errors": [{message, field, help}]}``."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    message: str | None = None


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received, and the status it was answered with."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    status: int


class FakeSendGridServer:
    """A ``ThreadingHTTPServer`` on 127.0.0.1 in a background thread; a context manager."""

    def __init__(self, *, api_key: str | None = None) -> None:
        self.requests: list[RecordedRequest] = []
        # With a key, any other bearer token is answered 401, as SendGrid does.
        self.api_key = api_key
        self._failures: deque[Failure | None] = deque()  # None: that request succeeds
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="fake-sendgrid",
            daemon=True,
        )

    @property
    def base_url(self) -> str:
        """The ``host`` to give the client: ``http://127.0.0.1:<port>``."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def sent(self) -> list[dict[str, Any]]:
        """Bodies of the mails that were accepted (answered 202)."""
        with self._lock:
            return [r.json for r in self.requests if r.status == 202]

    def fail(self, status: int, *, headers: dict[str, str] | None = None, after: int = 0) -> None:
        """Answer the next request with this error (once ``after`` requests succeeded)."""
        message, _ = _MESSAGES.get(status, ("fake error", None))
        with self._lock:
            self._failures.extend([None] * after)
            self._failures.append(Failure(status, dict(headers or {}), message))

    def start(self) -> FakeSendGridServer:
        """Start serving."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeSendGridServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _take(
        self, path: str, headers: dict[str, str], body: Any
    ) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
            answer = self._answer(path, headers, body, failure)
            self.requests.append(RecordedRequest("POST", path, headers, body, answer[0]))
            return answer

    def _answer(
        self, path: str, headers: dict[str, str], body: Any, failure: Failure | None
    ) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        if path != SEND_PATH:
            return 404, {}, _errors("not found", None)
        if failure is not None:
            return failure.status, failure.headers, _errors(failure.message or "", None)
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer ") or (
            self.api_key is not None and auth != f"Bearer {self.api_key}"
        ):
            return 401, {}, _errors(_MESSAGES[401][0], None)
        problem = _validate(body)
        if problem is not None:
            return 400, {}, _errors(*problem)
        return 202, {"X-Message-Id": uuid.uuid4().hex[:22]}, None


def _validate(body: Any) -> tuple[str, str] | None:
    """The checks SendGrid makes that a client could get wrong."""
    if not isinstance(body, dict):
        return "The request body must be JSON.", "body"
    people = body.get("personalizations")
    if not people or not all(p.get("to") for p in people):
        return "The personalizations field is required.", "personalizations"
    if not body.get("from", {}).get("email"):
        return "The from object must be provided for every email send.", "from"
    if not body.get("subject"):
        return "The subject is required.", "subject"
    content = body.get("content") or []
    if not content:
        return "Unless a valid template_id is provided, content is required.", "content"
    if content[0].get("type") != "text/plain" and any(
        c.get("type") == "text/plain" for c in content
    ):
        return "If present, text/plain content must be first.", "content"
    return None


def _errors(message: str, field_name: str | None) -> dict[str, Any]:
    return {"errors": [{"message": message, "field": field_name, "help": None}]}


def _handler_for(server: FakeSendGridServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: Any = json.loads(raw) if raw else None
            except json.JSONDecodeError:
                body = raw.decode("utf-8", "replace")
            status, headers, payload = server._take(
                self.path, {k.lower(): v for k, v in self.headers.items()}, body
            )
            data = json.dumps(payload).encode() if payload is not None else b""
            self.send_response(status)
            if data:
                self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep pytest output clean

    return Handler
