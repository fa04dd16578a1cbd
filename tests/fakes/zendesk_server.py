"""A local server speaking the Zendesk Support API endpoints the autopilot uses.

``PUT /api/v2/tickets/{id}.json`` (a comment and/or a status in one update, answered with the
ticket and the update's audit, whose ``Comment`` event carries the new comment's id) and
``GET /api/v2/users/{id}.json`` (``me``: the API user). It refuses what Zendesk refuses, in
its order: basic auth that is not ``{email}/token:{api_token}`` (401), an unknown path or
ticket/user (404), a body that is not ``{"ticket": {...}}``, a comment without a body or an
unknown status (422).
Only a request that passed those checks takes the next scripted failure (429 with
``Retry-After``, 5xx); with none queued it succeeds. Every request is recorded.

    with FakeZendeskServer(email="bot@kruxt.dev", api_token="zd-token") as zendesk:
        zendesk.add_ticket("101", requester_id="501")
        zendesk.fail(429, headers={"Retry-After": "3"})
"""

from __future__ import annotations

import base64
import itertools
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from tests.fakes._base import Failure, RecordedRequest, Script, ScriptedFailures, json_handler

__all__ = ["FakeZendeskServer", "ZendeskComment", "ZendeskRequest"]

STATUSES = {"new", "open", "pending", "hold", "solved", "closed"}
_TICKET = re.compile(r"^/api/v2/tickets/(\d+)\.json$")
_USER = re.compile(r"^/api/v2/users/(\d+|me)\.json$")


# One request the server received, and the status it was answered with.
ZendeskRequest = RecordedRequest


@dataclass(frozen=True)
class ZendeskComment:
    """A comment on a fake ticket."""

    id: int
    body: str
    public: bool
    author_id: int


@dataclass
class _Ticket:
    id: int
    requester_id: int
    status: str = "new"
    comments: list[ZendeskComment] = field(default_factory=list)


class FakeZendeskServer(ScriptedFailures):
    """A ``ThreadingHTTPServer`` on 127.0.0.1 in a background thread; a context manager."""

    # The API user's id: the author of every comment posted through the API.
    agent_id = 900

    def __init__(self, *, email: str, api_token: str) -> None:
        self.requests: list[RecordedRequest] = []
        self.users: dict[int, dict[str, Any]] = {}
        self._tickets: dict[int, _Ticket] = {}
        self._credentials = base64.b64encode(f"{email}/token:{api_token}".encode()).decode()
        self._failures: Script[Failure] = Script()
        self._ids = itertools.count(7000)
        self._lock = threading.Lock()
        # The API user (``users/me``): the author of every comment posted through the API.
        self.users[self.agent_id] = {"id": self.agent_id, "email": email, "name": "Autopilot"}
        self._serve(json_handler(self._take, "PUT", "GET"), name="fake-zendesk")

    def add_ticket(self, ticket_id: str, *, requester_id: str) -> None:
        """A ticket the account holds (updates to any other are 404)."""
        with self._lock:
            self._tickets[int(ticket_id)] = _Ticket(int(ticket_id), int(requester_id))

    def add_user(self, user_id: str, *, email: str | None, name: str) -> None:
        """A user ``GET /api/v2/users/{id}.json`` finds (a messaging user has no e-mail:
        ``None``, as Zendesk answers ``"email": null``)."""
        with self._lock:
            self.users[int(user_id)] = {"id": int(user_id), "email": email, "name": name}

    def comments(self, ticket_id: str) -> list[ZendeskComment]:
        """The comments posted on a ticket, oldest first."""
        with self._lock:
            return list(self._tickets[int(ticket_id)].comments)

    def status(self, ticket_id: str) -> str:
        """A ticket's status now."""
        with self._lock:
            return self._tickets[int(ticket_id)].status

    def fail(self, status: int, *, headers: dict[str, str] | None = None, times: int = 1) -> None:
        """Answer the next ``times`` valid requests with this error."""
        self._failures.extend([Failure(status, dict(headers or {}))] * times)

    def _take(
        self, method: str, path: str, headers: dict[str, str], body: Any
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._lock:
            answer = self._refusal(method, path, headers, body)
            if answer is None:
                failure = self._failures.take()
                if failure is not None:
                    answer = failure.status, failure.headers, {"error": f"fake {failure.status}"}
                else:
                    answer = self._apply(method, path, body)
            self.requests.append(RecordedRequest(method, path, headers, body, answer[0]))
            return answer

    def _refusal(
        self, method: str, path: str, headers: dict[str, str], body: Any
    ) -> tuple[int, dict[str, str], dict[str, Any]] | None:
        if headers.get("authorization") != f"Basic {self._credentials}":
            return 401, {}, {"error": "Couldn't authenticate you"}
        ticket, user = _TICKET.match(path), _USER.match(path)
        if method == "GET" and user:
            if _user_id(self, user.group(1)) not in self.users:
                return 404, {}, {"error": "RecordNotFound", "description": "Not found"}
            return None
        if method != "PUT" or not ticket:
            return 404, {}, {"error": "InvalidEndpoint", "description": "Not found"}
        if int(ticket.group(1)) not in self._tickets:
            return 404, {}, {"error": "RecordNotFound", "description": "Not found"}
        update = body.get("ticket") if isinstance(body, dict) else None
        if not isinstance(update, dict):
            return 422, {}, _invalid("ticket", "is required")
        comment = update.get("comment")
        if comment is not None and not (isinstance(comment, dict) and comment.get("body")):
            return 422, {}, _invalid("comment", "body: cannot be blank")
        if "status" in update and update["status"] not in STATUSES:
            return 422, {}, _invalid("status", "is not a valid status")
        return None

    def _apply(self, method: str, path: str, body: Any) -> tuple[int, dict[str, str], Any]:
        user = _USER.match(path)
        if method == "GET" and user:
            return 200, {}, {"user": self.users[_user_id(self, user.group(1))]}
        match = _TICKET.match(path)
        assert match is not None
        ticket = self._tickets[int(match.group(1))]
        update = body["ticket"]
        events: list[dict[str, Any]] = []
        if "comment" in update:
            comment = ZendeskComment(
                id=next(self._ids),
                body=update["comment"]["body"],
                public=update["comment"].get("public", True) is not False,
                author_id=self.agent_id,
            )
            ticket.comments.append(comment)
            events.append(
                {
                    "id": comment.id,
                    "type": "Comment",
                    "body": comment.body,
                    "public": comment.public,
                    "author_id": comment.author_id,
                }
            )
        if "status" in update:
            events.append(
                {
                    "id": next(self._ids),
                    "type": "Change",
                    "field_name": "status",
                    "previous_value": ticket.status,
                    "value": update["status"],
                }
            )
            ticket.status = update["status"]
        audit = {"id": next(self._ids), "author_id": self.agent_id, "events": events}
        view = {"id": ticket.id, "status": ticket.status, "requester_id": ticket.requester_id}
        return 200, {}, {"ticket": view, "audit": audit}


def _user_id(server: FakeZendeskServer, key: str) -> int:
    return server.agent_id if key == "me" else int(key)


def _invalid(field_name: str, description: str) -> dict[str, Any]:
    return {
        "error": "RecordInvalid",
        "description": "Record validation errors",
        "details": {field_name: [{"description": f"{field_name} {description}"}]},
    }
