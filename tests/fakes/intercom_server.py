"""A local server speaking the two Intercom REST endpoints the autopilot calls.

``python-intercom``'s real ``AsyncIntercom`` talks to it over HTTP (``base_url=server.base``),
so tests exercise the library's request building and error raising. It refuses what Intercom
refuses, in Intercom's order and ``{"type": "error.list", "errors": [{code, message}]}`` shape:
no bearer or a wrong one (401 ``unauthorized``), an ``Intercom-Version`` it does not know
(400 ``intercom_version_invalid``), an unknown path or conversation (404 ``not_found``), a body
that is not an admin's comment, note or close by a known admin (400 ``parameter_invalid``).
Only a request that passed those checks takes the next scripted failure (429 with
``Retry-After``, a 5xx page); a refused one never uses one up. Every request is recorded.

    with FakeIntercomServer(token="tok", admin_ids={"991"}) as intercom:
        intercom.open_conversation("123")
        intercom.fail(429, headers={"Retry-After": "3"})
        client = AsyncIntercom(base_url=intercom.base, token="tok")
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakes._base import Failure, RecordedRequest, Script, ScriptedFailures, json_handler

__all__ = ["TEST_ADMIN_ID", "TEST_TOKEN", "FakeIntercomServer", "IntercomPart"]

# What the ``intercom`` fixture (tests/conftest.py) accepts: an access token, and the admin
# replies are posted as.
TEST_TOKEN = "ic-test-access-token"
TEST_ADMIN_ID = "991"

# Versions the REST API accepts in ``Intercom-Version`` (no header: the workspace default).
KNOWN_VERSIONS = frozenset({"2.9", "2.10", "2.11", "2.12", "2.13", "2.14", "Unstable"})
_PATH = re.compile(r"^/conversations/([0-9A-Za-z_-]{1,64})/(reply|parts)$")


@dataclass(frozen=True)
class IntercomPart:
    """A part an admin added to a conversation: a ``comment``, a ``note`` or a ``close``."""

    id: str
    part_type: str
    body: str | None
    admin_id: str


@dataclass
class _Conversation:
    id: str
    state: str = "open"
    parts: list[IntercomPart] = field(default_factory=list)


class FakeIntercomServer(ScriptedFailures):
    """A ``ThreadingHTTPServer`` on 127.0.0.1 in a background thread; a context manager."""

    def __init__(self, *, token: str, admin_ids: set[str]) -> None:
        self.token = token
        self.admin_ids = set(admin_ids)
        self.requests: list[RecordedRequest] = []
        self._conversations: dict[str, _Conversation] = {}
        self._failures: Script[Failure | None] = Script()  # None: that request succeeds
        self._ids = itertools.count(1000)
        self._lock = threading.Lock()
        self._serve(json_handler(self._take, "POST"), name="fake-intercom")

    def open_conversation(self, conversation_id: str) -> None:
        """A conversation the workspace has (the customer wrote it in the Messenger)."""
        with self._lock:
            self._conversations.setdefault(conversation_id, _Conversation(conversation_id))

    def parts(self, conversation_id: str) -> list[IntercomPart]:
        """The parts admins added to the conversation, oldest first."""
        with self._lock:
            return list(self._conversations[conversation_id].parts)

    def state(self, conversation_id: str) -> str:
        """``open`` or ``closed``."""
        with self._lock:
            return self._conversations[conversation_id].state

    def fail(self, status: int, *, headers: dict[str, str] | None = None, after: int = 0) -> None:
        """Answer the next valid request with this error (once ``after`` ones succeeded)."""
        self._failures.extend([*[None] * after, Failure(status, dict(headers or {}))])

    def _take(
        self, method: str, path: str, headers: dict[str, str], body: Any
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._lock:
            answer = self._refusal(path, headers, body)
            if answer is None:
                failure = self._failures.take()
                answer = (
                    (failure.status, failure.headers, _errors("server_error", "failed"))
                    if failure is not None
                    else self._apply(path, body)
                )
            self.requests.append(RecordedRequest(method, path, headers, body, answer[0]))
            return answer

    def _refusal(
        self, path: str, headers: dict[str, str], body: Any
    ) -> tuple[int, dict[str, str], dict[str, Any]] | None:
        """Why Intercom would refuse this request, checked in Intercom's order."""
        if headers.get("authorization", "") != f"Bearer {self.token}":
            return 401, {}, _errors("unauthorized", "Access Token Invalid")
        version = headers.get("intercom-version")
        if version is not None and version not in KNOWN_VERSIONS:
            return 400, {}, _errors("intercom_version_invalid", "Requested version is invalid")
        match = _PATH.match(path.split("?", 1)[0])
        if match is None or match.group(1) not in self._conversations:
            return 404, {}, _errors("not_found", "Resource Not Found")
        problem = _check(match.group(2), body, self.admin_ids)
        if problem is not None:
            return 400, {}, _errors("parameter_invalid", problem)
        return None

    def _apply(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        match = _PATH.match(path.split("?", 1)[0])
        assert match is not None  # checked by _refusal
        conversation = self._conversations[match.group(1)]
        part_type = body["message_type"]
        conversation.parts.append(
            IntercomPart(str(next(self._ids)), part_type, body.get("body"), str(body["admin_id"]))
        )
        if part_type == "close":
            conversation.state = "closed"
        return 200, {}, _conversation_json(conversation)


def _check(endpoint: str, body: Any, admin_ids: set[str]) -> str | None:
    """The body checks of ``/reply`` (an admin's comment or note) and ``/parts`` (close)."""
    if not isinstance(body, dict):
        return "Body must be JSON"
    allowed = {"comment", "note"} if endpoint == "reply" else {"close", "open", "snoozed"}
    if body.get("message_type") not in allowed:
        return "message_type is invalid"
    if body.get("type") != "admin":
        return "type must be admin"
    if str(body.get("admin_id", "")) not in admin_ids:
        return "admin_id not found"
    if endpoint == "reply" and not body.get("body"):
        return "body is required"
    return None


def _conversation_json(conversation: _Conversation) -> dict[str, Any]:
    now = int(time.time())
    return {
        "type": "conversation",
        "id": conversation.id,
        "created_at": now,
        "updated_at": now,
        "open": conversation.state == "open",
        "state": conversation.state,
        "conversation_parts": {
            "type": "conversation_part.list",
            "total_count": len(conversation.parts),
            "conversation_parts": [
                {
                    "type": "conversation_part",
                    "id": part.id,
                    "part_type": part.part_type,
                    "body": part.body,
                    "created_at": now,
                    "author": {"type": "admin", "id": part.admin_id},
                }
                for part in conversation.parts
            ],
        },
    }


def _errors(code: str, message: str) -> dict[str, Any]:
    return {"type": "error.list", "errors": [{"code": code, "message": message}]}
