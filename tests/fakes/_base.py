"""What the fake HTTP servers share: a ``ThreadingHTTPServer`` on 127.0.0.1 in a thread, a
request handler that reads and answers, and the queue of scripted answers."""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, Self, TypeVar

T = TypeVar("T")

# What a fake answers a request with: its status, extra headers, and a JSON payload (``None``:
# no body at all).
Answer = tuple[int, dict[str, str], Any]


@dataclass(frozen=True)
class RecordedRequest:
    """One request a fake received, and the status it answered (where the fake records it)."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    status: int | None = None


@dataclass(frozen=True)
class Failure:
    """One scripted error answer: its status, extra headers, and the message a fake puts in
    its service's error shape (where it has one)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    message: str | None = None


class ThreadedHTTPFake:
    """A ``ThreadingHTTPServer`` on 127.0.0.1 in a background thread; a context manager.

    A fake builds its request handler and calls ``_serve`` at the end of its ``__init__``.
    """

    _httpd: ThreadingHTTPServer
    _thread: threading.Thread

    def _serve(self, handler: type[BaseHTTPRequestHandler], *, name: str) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        # Handler threads may sit on a keep-alive connection or a delay: never wait for them.
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},  # shutdown() waits up to one poll: keep tests quick
            name=name,
            daemon=True,
        )

    @property
    def base(self) -> str:
        """``http://127.0.0.1:<port>``."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        """Start serving."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ScriptedFailures(ThreadedHTTPFake):
    """A fake whose valid requests take their failures from ``_failures`` (a ``None`` there:
    that request succeeds), scripted a whole outage at a time."""

    _failures: Script[Failure] | Script[Failure | None]

    def fail_with(self, failures: Iterable[Failure]) -> None:
        """Answer the next valid requests with these failures, in order (see ``outage``)."""
        self._failures.extend(failures)


class FakeHandler(BaseHTTPRequestHandler):
    """A fake's request handler: HTTP/1.1, the body read whole, answers written, no log lines."""

    protocol_version = "HTTP/1.1"

    def read_body(self) -> bytes:
        """The request's body (``content-length`` bytes)."""
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def header_map(self) -> dict[str, str]:
        """The request's headers, names lower-cased."""
        return {k.lower(): v for k, v in self.headers.items()}

    def send_json(
        self, code: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        """Answer ``payload`` as JSON."""
        self.send_bytes(code, json.dumps(payload).encode(), "application/json", headers)

    def send_bytes(
        self,
        code: int,
        data: bytes,
        content_type: str | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer ``data`` (no ``content-type`` when ``None``), with extra ``headers``."""
        try:
            self.send_response(code)
            if content_type is not None:
                self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean


def json_or_text(raw: bytes) -> Any:
    """A body parsed as JSON; its text when it is not JSON (the fake still records it)."""
    try:
        return json.loads(raw) if raw else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return raw.decode("utf-8", "replace")


def json_handler(
    take: Callable[[str, str, dict[str, str], Any], Answer], *methods: str
) -> type[BaseHTTPRequestHandler]:
    """A handler that answers each of ``methods`` (``"GET"``, ``"PUT"``, ...) with
    ``take(method, path, headers, body)``: the body as ``json_or_text`` parsed it, the headers
    lower-cased. Any other method gets the standard library's 501."""

    class Handler(FakeHandler):
        def answer(self) -> None:
            body = json_or_text(self.read_body())
            status, headers, payload = take(self.command, self.path, self.header_map(), body)
            if payload is None:  # e.g. a 202 without a body, so no content-type either
                self.send_bytes(status, b"", None, headers)
            else:
                self.send_json(status, payload, headers)

    for method in methods:
        setattr(Handler, f"do_{method}", Handler.answer)
    return Handler


def outage(failures: Sequence[T], requests: int) -> list[T]:
    """A service down for a while: its next ``requests`` answers, ``failures`` taking turns
    (a 503, then a 429 with its wait, ...). Hand them to a fake's scripted failures."""
    return list(itertools.islice(itertools.cycle(failures), requests))


class Script(Generic[T]):
    """Scripted answers, taken first in, first out, by the server's handler threads."""

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._lock = threading.Lock()

    def extend(self, items: Iterable[T]) -> None:
        """Queue these answers after the ones already scripted."""
        with self._lock:
            self._items.extend(items)

    def take(self) -> T | None:
        """The next scripted answer; ``None`` when nothing is scripted."""
        with self._lock:
            return self._items.popleft() if self._items else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
