"""A local server speaking the SendGrid v3 mail-send API, with scriptable failures.

The real ``sendgrid`` client talks to it over HTTP (``SendGridAPIClient(key, host=...)``),
so tests exercise the library's request building and error raising. It refuses what SendGrid
refuses, in SendGrid's order and ``{"errors": [{message, field, help}]}`` shape: a bearer that
is not the configured key (401), an unknown path (404), a body that is not JSON (415/400), a
mail without personalizations, from, subject or content (400). Only a request that passed
those checks takes the next scripted failure from the queue; with none queued it is answered
202. Every request is recorded (parsed JSON body, headers and the status it got).

    with FakeSendGridServer(api_key="SG.test") as server:
        server.fail(429, headers={"Retry-After": "7"})
        client = sendgrid.SendGridAPIClient("SG.test", host=server.base_url)
"""

from __future__ import annotations

import threading
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes._base import (
    Failure,
    FakeHandler,
    RecordedRequest,
    Script,
    ScriptedFailures,
    json_or_text,
)

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


class FakeSendGridServer(ScriptedFailures):
    """A ``ThreadingHTTPServer`` on 127.0.0.1 in a background thread; a context manager."""

    def __init__(self, *, api_key: str) -> None:
        self.requests: list[RecordedRequest] = []
        # Any other bearer token is answered 401, as SendGrid does: there is no "any key".
        self.api_key = api_key
        self._failures: Script[Failure | None] = Script()  # None: that request succeeds
        self._lock = threading.Lock()
        self._serve(_handler_for(self), name="fake-sendgrid")

    @property
    def base_url(self) -> str:
        """The ``host`` to give the client: ``http://127.0.0.1:<port>``."""
        return self.base

    @property
    def sent(self) -> list[dict[str, Any]]:
        """Bodies of the mails that were accepted (answered 202)."""
        with self._lock:
            return [r.json for r in self.requests if r.status == 202]

    def fail(self, status: int, *, headers: dict[str, str] | None = None, after: int = 0) -> None:
        """Answer the next request with this error (once ``after`` requests succeeded)."""
        message, _ = _MESSAGES.get(status, ("fake error", None))
        with self._lock:
            self._failures.extend([*[None] * after, Failure(status, dict(headers or {}), message)])

    def _take(
        self, path: str, headers: dict[str, str], body: Any
    ) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        with self._lock:
            answer = self._refusal(path, headers, body)
            if answer is None:
                answer = self._answer(self._failures.take())
            self.requests.append(RecordedRequest("POST", path, headers, body, answer[0]))
            return answer

    def _refusal(
        self, path: str, headers: dict[str, str], body: Any
    ) -> tuple[int, dict[str, str], dict[str, Any] | None] | None:
        """Why SendGrid would refuse this request, checked in SendGrid's order."""
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return 401, {}, _errors("authorization required", None)
        if auth != f"Bearer {self.api_key}":
            return 401, {}, _errors(_MESSAGES[401][0], None)
        if path.split("?", 1)[0] != SEND_PATH:
            return 404, {}, _errors("resource not found", None)
        if headers.get("content-type", "").split(";", 1)[0].strip().lower() != "application/json":
            return 415, {}, _errors("Content-Type should be application/json.", None)
        problem = _validate(body)
        if problem is not None:
            return 400, {}, _errors(*problem)
        return None

    def _answer(self, failure: Failure | None) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        if failure is not None:
            return failure.status, failure.headers, _errors(failure.message or "", None)
        return 202, {"X-Message-Id": uuid.uuid4().hex[:22]}, None


def _validate(body: Any) -> tuple[str, str | None] | None:
    """The checks SendGrid makes that a client could get wrong."""
    if not isinstance(body, dict):
        return "Bad Request", None
    people = body.get("personalizations")
    if not isinstance(people, list) or not people:
        return (
            "The personalizations field is required and must have at least one personalization.",
            "personalizations",
        )
    if not all(isinstance(p, dict) and p.get("to") for p in people):
        return (
            "The to array is required for all personalization objects, and must have at least"
            " one email object with a valid email address.",
            "personalizations.0.to",
        )
    sender = body.get("from")
    if not isinstance(sender, dict) or not sender.get("email"):
        return "The from object must be provided for every email send.", "from"
    if not body.get("subject"):
        return "The subject is required.", "subject"
    content = body.get("content") or []
    if not isinstance(content, list) or not all(
        isinstance(c, dict) and c.get("type") and c.get("value") for c in content
    ):
        return (
            "The content value must be a string at least one character in length.",
            "content.0.value",
        )
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
    class Handler(FakeHandler):
        def do_POST(self) -> None:
            body = json_or_text(self.read_body())
            status, headers, payload = server._take(self.path, self.header_map(), body)
            if payload is None:  # a 202 has no body, so no content-type
                self.send_bytes(status, b"", None, headers)
            else:
                self.send_json(status, payload, headers)

    return Handler
