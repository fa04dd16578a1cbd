"""A local server speaking the GitHub REST endpoints the autopilot uses for defect issues.

``POST /repos/{owner}/{repo}/issues`` (create), ``GET .../issues`` (list, by label and state),
``GET``/``PATCH .../issues/{n}`` (read, open or close), ``GET``/``POST .../issues/{n}/comments``
(list by ``page``/``per_page``, add) and ``POST .../issues/{n}/labels``. It refuses what
GitHub refuses, in its order: a missing or wrong token (401 ``Bad credentials``), an unknown
repository, path or issue (404 ``Not Found``), a body without what the endpoint needs (422
``Validation Failed``). Only a request that passed those checks takes the next scripted
failure: a primary rate limit (403 with ``x-ratelimit-remaining: 0`` and
``x-ratelimit-reset``), a secondary one (429 or 403 with ``retry-after``), a 5xx;
``after_apply`` failures change the issue first and then answer the error (a response lost on
the way back); ``on`` aims a failure at one kind of request (``"POST comments"``: method and
last path segment). Every request is recorded.

    with FakeGitHubServer(token="ghp-test", repository="kruxt/app") as github:
        github.rate_limit(primary=True, reset_in=2)
        github.fail(502, times=2)
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes._base import FakeHandler, RecordedRequest, Script, ThreadedHTTPFake, json_or_text

__all__ = ["FakeGitHubServer", "GitHubIssue"]

_ISSUES = re.compile(r"^/repos/([^/]+)/([^/]+)/issues$")
_ISSUE = re.compile(r"^/repos/([^/]+)/([^/]+)/issues/(\d+)$")
_SUB = re.compile(r"^/repos/([^/]+)/([^/]+)/issues/(\d+)/(comments|labels)$")
Answer = tuple[int, dict[str, str], Any]


@dataclass
class GitHubIssue:
    """An issue of the fake repository."""

    number: int
    title: str
    body: str
    labels: list[str]
    state: str = "open"
    comments: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Failure:
    status: int
    headers: dict[str, str]
    message: str
    after_apply: bool
    on: str | None = None


class FakeGitHubServer(ThreadedHTTPFake):
    """A ``ThreadingHTTPServer`` on 127.0.0.1 in a background thread; a context manager."""

    def __init__(self, *, token: str, repository: str) -> None:
        self.requests: list[RecordedRequest] = []
        self.issues: dict[int, GitHubIssue] = {}
        self._token = token
        self._owner, self._repo = repository.split("/")
        self._failures: Script[_Failure] = Script()
        self._aimed: list[_Failure] = []
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._serve(_handler_for(self), name="fake-github")

    @property
    def api_url(self) -> str:
        """What ``GITHUB_API_URL`` is set to."""
        return self.base

    def fail(
        self,
        status: int,
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
        after_apply: bool = False,
        message: str = "Server Error",
        on: str | None = None,
    ) -> None:
        """Answer the next ``times`` valid requests (those ``on`` names, when given: "POST
        comments") with this error (``after_apply``: once the request's change is made, as
        when the answer is lost)."""
        failure = _Failure(status, dict(headers or {}), message, after_apply, on)
        if on is None:
            self._failures.extend([failure] * times)
        else:
            with self._lock:
                self._aimed += [failure] * times

    def rate_limit(self, *, primary: bool, wait: int = 1, status: int = 403) -> None:
        """The next valid request is rate-limited: primary (``x-ratelimit-reset`` in ``wait``
        seconds) or secondary (``retry-after: wait``)."""
        if primary:
            headers = {
                "x-ratelimit-limit": "5000",
                "x-ratelimit-remaining": "0",
                "x-ratelimit-reset": str(int(time.time()) + wait),
            }
            self.fail(status, headers=headers, message="API rate limit exceeded")
        else:
            headers = {"retry-after": str(wait)}
            self.fail(status, headers=headers, message="You have exceeded a secondary rate limit")

    def close(self, number: int) -> None:
        """An engineer closes the issue."""
        with self._lock:
            self.issues[number].state = "closed"

    def created(self) -> list[GitHubIssue]:
        """The issues in the repository, in creation order."""
        with self._lock:
            return [self.issues[n] for n in sorted(self.issues)]

    def _take(self, method: str, target: str, headers: dict[str, str], body: Any) -> Answer:
        url = urlsplit(target)
        with self._lock:
            answer = self._refusal(method, url.path, headers, body)
            if answer is None:
                failure = self._aimed_at(method, url.path) or self._failures.take()
                if failure is not None and failure.after_apply:
                    self._apply(method, url.path, parse_qs(url.query), body)
                if failure is not None:
                    payload = {"message": failure.message, "documentation_url": _DOCS}
                    answer = failure.status, failure.headers, payload
                else:
                    answer = self._apply(method, url.path, parse_qs(url.query), body)
            self.requests.append(RecordedRequest(method, target, headers, body, answer[0]))
            return answer

    def _aimed_at(self, method: str, path: str) -> _Failure | None:
        """The first failure aimed at this kind of request, taken (the lock held)."""
        kind = f"{method} {path.rsplit('/', 1)[-1]}"
        for i, failure in enumerate(self._aimed):
            if failure.on == kind:
                return self._aimed.pop(i)
        return None

    def _refusal(self, method: str, path: str, headers: dict[str, str], body: Any) -> Answer | None:
        auth = headers.get("authorization", "")
        if auth not in (f"token {self._token}", f"Bearer {self._token}"):
            return 401, {}, {"message": "Bad credentials", "documentation_url": _DOCS}
        match = _ISSUES.match(path) or _ISSUE.match(path) or _SUB.match(path)
        if match is None or (match.group(1), match.group(2)) != (self._owner, self._repo):
            return 404, {}, _NOT_FOUND
        if _ISSUES.match(path):
            if method == "POST" and not (isinstance(body, dict) and body.get("title")):
                return 422, {}, _invalid("title")
            return None if method in ("GET", "POST") else (404, {}, _NOT_FOUND)
        if int(match.group(3)) not in self.issues:
            return 404, {}, _NOT_FOUND
        sub = _SUB.match(path)
        if sub is None:
            if method == "PATCH" and isinstance(body, dict):
                if body.get("state", "open") not in ("open", "closed"):
                    return 422, {}, _invalid("state")
                return None
            return None if method == "GET" else (404, {}, _NOT_FOUND)
        if method == "GET" and sub.group(4) == "comments":
            return None
        if method != "POST" or not isinstance(body, dict):
            return 404, {}, _NOT_FOUND
        wanted = "body" if sub.group(4) == "comments" else "labels"
        return None if body.get(wanted) else (422, {}, _invalid(wanted))

    def _apply(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Answer:
        if _ISSUES.match(path):
            if method == "GET":
                return 200, {}, self._list(query)
            issue = GitHubIssue(
                number=next(self._numbers),
                title=body["title"],
                body=body.get("body") or "",
                labels=list(body.get("labels") or []),
            )
            self.issues[issue.number] = issue
            return 201, {}, self._view(issue)
        sub = _SUB.match(path)
        if sub is None:
            match = _ISSUE.match(path)
            assert match is not None
            issue = self.issues[int(match.group(3))]
            if method == "PATCH":
                issue.state = body.get("state", issue.state)
            return 200, {}, self._view(issue)
        issue = self.issues[int(sub.group(3))]
        if method == "GET":
            return 200, {}, _page(issue.comments, query)
        if sub.group(4) == "comments":
            issue.comments.append(body["body"])
            return 201, {}, {"id": len(issue.comments), "body": body["body"]}
        issue.labels += [label for label in body["labels"] if label not in issue.labels]
        return 200, {}, [{"name": label} for label in issue.labels]

    def _list(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        state = (query.get("state") or ["open"])[0]
        wanted = set((query.get("labels") or [""])[0].split(",")) - {""}
        chosen = [
            i
            for i in sorted(self.issues.values(), key=lambda i: -i.number)
            if (state == "all" or i.state == state) and wanted <= set(i.labels)
        ]
        return [self._view(i) for i in chosen]

    def _view(self, issue: GitHubIssue) -> dict[str, Any]:
        url = f"https://github.com/{self._owner}/{self._repo}/issues/{issue.number}"
        return {
            "number": issue.number,
            "title": issue.title,
            "body": issue.body,
            "state": issue.state,
            "html_url": url,
            "labels": [{"name": label} for label in issue.labels],
            "comments": len(issue.comments),
        }


_DOCS = "https://docs.github.com/rest"
_NOT_FOUND = {"message": "Not Found", "documentation_url": _DOCS}


def _page(comments: list[str], query: dict[str, list[str]]) -> list[dict[str, Any]]:
    """One page of comments, oldest first, as GitHub pages them (30 a page by default)."""
    size = int((query.get("per_page") or ["30"])[0])
    page = int((query.get("page") or ["1"])[0])
    start = (page - 1) * size
    return [{"id": start + i + 1, "body": c} for i, c in enumerate(comments[start : start + size])]


def _invalid(field_name: str) -> dict[str, Any]:
    return {
        "message": "Validation Failed",
        "errors": [{"resource": "Issue", "field": field_name, "code": "missing_field"}],
        "documentation_url": _DOCS,
    }


def _handler_for(server: FakeGitHubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(FakeHandler):
        def _handle(self, method: str) -> None:
            body = json_or_text(self.read_body())
            status, headers, payload = server._take(method, self.path, self.header_map(), body)
            self.send_bytes(status, json.dumps(payload).encode(), "application/json", headers)

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PATCH(self) -> None:
            self._handle("PATCH")

    return Handler
