"""GitHub issues through ``githubkit``: create, read, reopen, comment (and read comments), label.

The SDK's own retrying is off: a rate limit or a 5xx reaches the activity as
:class:`GitHubUnavailable` (with the wait GitHub asked for), so Temporal owns the wait; any
other 4xx is :class:`GitHubRefused`, which retrying cannot fix. Raised ``from None``: the
SDK's errors carry the request body (the issue text) into tracebacks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from githubkit import GitHub
from githubkit.exception import RateLimitExceeded, RequestError, RequestFailed

from kruxt.adapters.errors import RetryLater

__all__ = ["GitHubError", "GitHubIssues", "GitHubRefused", "GitHubUnavailable", "Issue"]

DEFAULT_API_URL = "https://api.github.com"
# Marker search among the autopilot's own issues: one page of the label's issues, newest first.
_RECOVERY_PAGE = 100
# Comment recovery reads the newest comments only: a lost one is among the last few pages.
_COMMENT_PAGES = 3


class GitHubError(Exception):
    """Base of the client's errors."""


class GitHubUnavailable(GitHubError, RetryLater):
    """Unreachable, 5xx or rate-limited: retrying later may help (after ``retry_after`` s)."""


class GitHubRefused(GitHubError):
    """A 4xx other than a rate limit (bad token, no such repository, issues disabled)."""


@dataclass(frozen=True)
class Issue:
    """What the autopilot keeps of an issue."""

    number: int
    url: str
    state: str
    body: str = ""
    comments: int = 0


class GitHubIssues:
    """The issues of one repository (``owner/name``)."""

    def __init__(self, repository: str, *, token: str, base_url: str | None = None) -> None:
        owner, _, name = repository.partition("/")
        if not owner or not name or "/" in name:
            raise ValueError(f"GITHUB_REPOSITORY must be owner/name, not {repository!r}")
        self._owner, self._repo = owner, name
        self._gh = GitHub(
            token,
            base_url=base_url or DEFAULT_API_URL,
            auto_retry=False,
            http_cache=False,
            timeout=30.0,
        )

    @property
    def repository(self) -> str:
        """``owner/name``."""
        return f"{self._owner}/{self._repo}"

    async def create(self, *, title: str, body: str, labels: list[str]) -> Issue:
        """Open an issue."""
        data = await self._call(
            "create an issue",
            self._gh.rest.issues.async_create(
                self._owner, self._repo, title=title, body=body, labels=labels
            ),
        )
        return _issue(data)

    async def get(self, number: int) -> Issue:
        """One issue as it stands."""
        data = await self._call(
            "read an issue", self._gh.rest.issues.async_get(self._owner, self._repo, number)
        )
        return _issue(data)

    async def reopen(self, number: int) -> Issue:
        """Set a closed issue open again."""
        data = await self._call(
            "reopen an issue",
            self._gh.rest.issues.async_update(self._owner, self._repo, number, state="open"),
        )
        return _issue(data)

    async def comment(self, number: int, body: str) -> None:
        """Add a comment."""
        await self._call(
            "comment on an issue",
            self._gh.rest.issues.async_create_comment(self._owner, self._repo, number, body=body),
        )

    async def recent_comments(self, issue: Issue) -> list[str]:
        """The texts of the issue's newest comments (the last few pages, by the count of
        ``issue``; one more page in case one was added since): finds a comment whose answer
        was lost."""
        last = issue.comments // _RECOVERY_PAGE + 1
        bodies: list[str] = []
        for page in range(last, max(0, last - _COMMENT_PAGES), -1):
            data = await self._call(
                "list comments",
                self._gh.rest.issues.async_list_comments(
                    self._owner, self._repo, issue.number, per_page=_RECOVERY_PAGE, page=page
                ),
            )
            items = data if isinstance(data, list) else []
            bodies += [str(c.get("body") or "") for c in items if isinstance(c, dict)]
        return bodies

    async def add_labels(self, number: int, labels: list[str]) -> None:
        """Add labels (those it has already are kept once)."""
        await self._call(
            "label an issue",
            self._gh.rest.issues.async_add_labels(self._owner, self._repo, number, labels=labels),
        )

    async def find_marked(self, label: str, marker: str) -> Issue | None:
        """The newest issue with ``label`` whose body holds ``marker``: recovers an issue
        created by an attempt that failed before its number was stored. Lists the label's
        issues (consistent at once), never the search API (its index lags)."""
        data = await self._call(
            "list issues",
            self._gh.rest.issues.async_list_for_repo(
                self._owner,
                self._repo,
                labels=label,
                state="all",
                sort="created",
                direction="desc",
                per_page=_RECOVERY_PAGE,
            ),
        )
        for item in data if isinstance(data, list) else []:
            if marker in (item.get("body") or ""):
                return _issue(item)
        return None

    async def _call(self, what: str, call: Any) -> Any:
        try:
            response = await call
        except RateLimitExceeded as exc:
            wait = exc.retry_after.total_seconds()
            raise GitHubUnavailable(f"github rate limit on {what}", retry_after=wait) from None
        except RequestFailed as exc:
            status = exc.response.status_code
            if status == 429 or status >= 500:
                raise GitHubUnavailable(f"github answered {status} to {what}") from None
            raise GitHubRefused(f"github answered {status} to {what}") from None
        except (RequestError, httpx.HTTPError) as exc:
            raise GitHubUnavailable(f"github unreachable on {what}: {type(exc).__name__}") from None
        return response.json()


def _issue(data: dict[str, Any]) -> Issue:
    return Issue(
        number=int(data["number"]),
        url=str(data.get("html_url") or ""),
        state=str(data.get("state") or "open"),
        body=str(data.get("body") or ""),
        comments=int(data.get("comments") or 0),
    )
