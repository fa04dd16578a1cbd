"""A local fake of the Slack Web API, for slack_sdk's real ``AsyncWebClient``.

It answers ``chat.postMessage``, ``chat.update``, ``chat.postEphemeral``, ``views.open`` and
``users.info`` (the members given by ``add_member``, ``user_not_found`` for anyone else), as a
POST or, as Slack also takes them, a GET with the arguments in the query string, the way
Slack does (HTTP 200 with ``{"ok": true, ...}`` or ``{"ok": false, "error": ...}``)
and records every call. It refuses what Slack refuses, in Slack's order: no token
(``not_authed``) or a wrong one (``invalid_auth``), whether sent as ``Authorization: Bearer``
or as a form ``token``; an unknown method (``unknown_method``, HTTP 404); then the arguments:
no ``channel`` (``channel_not_found``), no ``text``/``blocks`` (``no_text``), Block Kit limits
(``invalid_blocks``, so a too-long text fails here as it would in Slack), and a
``chat.update`` whose ``ts`` is not a message this server posted in that channel
(``message_not_found``). Only a call that passed those checks takes the next scripted failure,
so a refused call never uses one up. ``/response/<id>`` is a sink for interaction
``response_url`` posts (no token: the URL is the credential).

    with FakeSlackServer(token="xoxb-test") as slack:
        slack.fail_next(ratelimited(retry_after=7))
        client = AsyncWebClient(token="xoxb-test", base_url=slack.api_url)
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from tests.fakes._base import FakeHandler, Script, ThreadedHTTPFake

__all__ = [
    "Failure",
    "FakeSlackServer",
    "SlackCall",
    "http_error",
    "ratelimited",
    "slack_error",
]

_METHODS = {"chat.postMessage", "chat.update", "chat.postEphemeral", "views.open", "users.info"}


@dataclass(frozen=True)
class Failure:
    """How the server fails one Web API call."""

    status: int = 200
    error: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    raw_body: str | None = None


def slack_error(error: str) -> Failure:
    """Slack's usual failure: HTTP 200 with ``{"ok": false, "error": error}``."""
    return Failure(error=error)


def ratelimited(retry_after: int = 1) -> Failure:
    """HTTP 429 with ``Retry-After``, as Slack rate-limits."""
    return Failure(status=429, error="ratelimited", headers={"Retry-After": str(retry_after)})


def http_error(status: int, body: str = "<html>upstream unavailable</html>") -> Failure:
    """A non-JSON error page (a 5xx from Slack's edge)."""
    return Failure(status=status, raw_body=body)


@dataclass(frozen=True)
class SlackCall:
    """One request the server received: ``method`` is the API method or ``response``."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeSlackServer(ThreadedHTTPFake):
    """A ``ThreadingHTTPServer`` on 127.0.0.1 in a background thread; a context manager."""

    def __init__(self, *, token: str = "xoxb-test") -> None:
        self.token = token
        self.calls: list[SlackCall] = []
        self._failures: Script[Failure] = Script()
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._posted: set[tuple[str, str]] = set()  # (channel, ts) of chat.postMessage answers
        # users.info's directory: user id -> the "user" object Slack answers.
        self._members: dict[str, dict[str, Any]] = {}
        self._serve(_handler_for(self), name="fake-slack")

    def add_member(
        self, user_id: str, email: str | None, *, is_bot: bool = False, deleted: bool = False
    ) -> None:
        """A workspace member ``users.info`` answers for, shaped as Slack's documented example
        (``email`` None: a profile without one, as when the app lacks ``users:read.email``)."""
        profile: dict[str, Any] = {"real_name": user_id, "display_name": user_id.lower()}
        if email is not None:
            profile["email"] = email
        self._members[user_id] = {
            "id": user_id,
            "team_id": "T0FAKE",
            "name": user_id.lower(),
            "deleted": deleted,
            "real_name": user_id,
            "profile": profile,
            "is_admin": False,
            "is_bot": is_bot,
        }

    @property
    def api_url(self) -> str:
        """The ``base_url`` for ``AsyncWebClient``."""
        return f"{self.base}/api/"

    def response_url(self, name: str = "1") -> str:
        """A ``response_url`` whose posts this server records (method ``response``)."""
        return f"{self.base}/response/{name}"

    def fail_next(self, *failures: Failure) -> None:
        """The next Web API calls fail like this, in order."""
        self._failures.extend(failures)

    def calls_to(self, method: str) -> list[SlackCall]:
        """The recorded calls of one method."""
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def _record(self, call: SlackCall) -> None:
        with self._lock:
            self.calls.append(call)

    def _next_ts(self) -> str:
        with self._lock:
            return f"1700000000.{next(self._ts):06d}"

    def _remember(self, channel: str, ts: str) -> None:
        with self._lock:
            self._posted.add((channel, ts))

    def _was_posted(self, channel: str, ts: str) -> bool:
        with self._lock:
            return (channel, ts) in self._posted

    def _auth_error(self, headers: dict[str, str], body: dict[str, Any]) -> str | None:
        """Slack's auth check: the bearer header, else a form ``token`` (JSON bodies can't)."""
        auth = headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        if not token and "json" not in headers.get("content-type", ""):
            token = str(body.get("token", ""))
        if not token:
            return "not_authed"
        return None if token == self.token else "invalid_auth"

    def _argument_error(self, method: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """Slack's checks of one method's arguments; ``None`` when they are fine."""
        if method == "users.info":
            if str(body.get("user", "")) not in self._members:
                return {"ok": False, "error": "user_not_found"}
            return None
        if method == "views.open":
            if not body.get("trigger_id"):
                return {"ok": False, "error": "invalid_trigger_id"}
            problem = _check_view(body.get("view"))
            if problem:
                return {"ok": False, "error": "invalid_arguments", "detail": problem}
            return None
        channel = body.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if method == "chat.postEphemeral" and not body.get("user"):
            return {"ok": False, "error": "invalid_arguments", "detail": "user is required"}
        if not body.get("text") and not body.get("blocks") and not body.get("attachments"):
            return {"ok": False, "error": "no_text"}
        if "blocks" in body:
            problem = _check_blocks(body["blocks"], max_blocks=50)
            if problem:
                return {"ok": False, "error": "invalid_blocks", "detail": problem}
        if method == "chat.update" and not self._was_posted(channel, str(body.get("ts", ""))):
            return {"ok": False, "error": "message_not_found"}
        return None


def _parse(content_type: str, raw: bytes) -> dict[str, Any]:
    """A JSON body as it is; a form body with its JSON fields decoded (slack_sdk sends both)."""
    if not raw:
        return {}
    if "json" in content_type:
        data = json.loads(raw)
        return data if isinstance(data, dict) else {"_": data}
    form = {k: v[-1] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
    for key in ("blocks", "view", "attachments"):
        if key in form:
            form[key] = json.loads(form[key])
    return form


def _text_len(obj: Any) -> int:
    return len(obj.get("text", "")) if isinstance(obj, dict) else 0


def _check_blocks(blocks: Any, *, max_blocks: int) -> str | None:
    """Slack's Block Kit limits; ``None`` when the blocks are fine, else why not."""
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    if not isinstance(blocks, list):
        return "blocks must be a list"
    if len(blocks) > max_blocks:
        return f"more than {max_blocks} blocks"
    action_ids: set[str] = set()
    for block in blocks:
        kind = block.get("type")
        if len(block.get("block_id", "")) > 255:
            return "block_id longer than 255"
        if kind == "header" and _text_len(block.get("text")) > 150:
            return "header text longer than 150"
        if kind == "section":
            if _text_len(block.get("text")) > 3000:
                return "section text longer than 3000"
            if len(block.get("fields", [])) > 10:
                return "more than 10 fields"
        if kind == "context":
            elements = block.get("elements", [])
            if not elements or len(elements) > 10:
                return "context needs 1 to 10 elements"
            if any(_text_len(e) > 3000 for e in elements):
                return "context element longer than 3000"
        if kind == "actions":
            elements = block.get("elements", [])
            if not elements or len(elements) > 25:
                return "actions needs 1 to 25 elements"
            for element in elements:
                action_id = element.get("action_id", "")
                if action_id in action_ids:
                    return f"duplicate action_id {action_id}"
                action_ids.add(action_id)
                if _text_len(element.get("text")) > 75:
                    return "button text longer than 75"
                if len(element.get("value", "")) > 2000:
                    return "button value longer than 2000"
                if element.get("style") not in (None, "primary", "danger"):
                    return "bad button style"
        if kind == "input" and "element" not in block:
            return "input without element"
    return None


def _check_view(view: Any) -> str | None:
    if not isinstance(view, dict) or view.get("type") != "modal":
        return "view must be a modal"
    for key in ("title", "submit", "close"):
        if key in view and _text_len(view[key]) > 24:
            return f"{key} longer than 24"
    if len(view.get("private_metadata", "")) > 3000:
        return "private_metadata longer than 3000"
    return _check_blocks(view.get("blocks", []), max_blocks=100)


def _handler_for(server: FakeSlackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(FakeHandler):
        def do_GET(self) -> None:
            """Slack takes any method as a GET too, its arguments in the query string
            (slack_sdk's async client sends ``users.info`` so)."""
            path, _, query = self.path.partition("?")
            self._call(path, {k: v[0] for k, v in parse_qs(query).items()})

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0]
            try:
                body = _parse(self.header_map().get("content-type", ""), self.read_body())
            except (json.JSONDecodeError, UnicodeDecodeError):
                body = None
            if path.startswith("/response/"):
                server._record(SlackCall("response", path, self.header_map(), body or {}))
                self.send_json(200, {"ok": True})
                return
            self._call(path, body)

        def _call(self, path: str, body: dict[str, Any] | None) -> None:
            """One Web API call, in Slack's order: the token, the method, the arguments, then
            the next scripted failure, else the answer."""
            headers = self.header_map()
            method = path.removeprefix("/api/")
            server._record(SlackCall(method, path, headers, body or {}))
            auth_error = server._auth_error(headers, body or {})
            if auth_error is not None:
                self.send_json(200, {"ok": False, "error": auth_error})
                return
            if method not in _METHODS:
                self.send_json(404, {"ok": False, "error": "unknown_method", "req_method": method})
                return
            if body is None:
                self.send_json(200, {"ok": False, "error": "invalid_json"})
                return
            refused = server._argument_error(method, body)
            if refused is not None:
                self.send_json(200, refused)
                return
            failure = server._failures.take()
            if failure is None:
                self.send_json(200, self._answer(method, body))
            elif failure.raw_body is not None:
                self.send_bytes(failure.status, failure.raw_body.encode(), "text/html")
            else:
                error = {"ok": False, "error": failure.error}
                self.send_json(failure.status, error, failure.headers)

        def _answer(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
            """The success answer of a call whose token and arguments were checked."""
            if method == "views.open":
                return {"ok": True, "view": {"id": "V0FAKE", **body["view"]}}
            if method == "users.info":
                return {"ok": True, "user": server._members[str(body["user"])]}
            channel = body["channel"]
            if method == "chat.postEphemeral":
                return {"ok": True, "message_ts": server._next_ts()}
            if method == "chat.update":
                return {"ok": True, "channel": channel, "ts": body["ts"], "text": body.get("text")}
            ts = server._next_ts()
            server._remember(channel, ts)
            return {
                "ok": True,
                "channel": channel,
                "ts": ts,
                "message": {"text": body.get("text"), "blocks": body.get("blocks")},
            }

    return Handler
