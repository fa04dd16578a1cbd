"""Tokens of signed links (approval and incident-ack e-mails) never reach a log line."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn

from kruxt.adapters.email_tokens import ApprovalTokens
from kruxt.adapters.settings import Settings
from kruxt.adapters.telemetry import REDACTED, configure_logging, redact_tokens
from kruxt.models.approvals import Verdict
from kruxt.starter.api.app import ApiDeps, create_app
from kruxt.starter.api.main import uvicorn_config
from tests.support import bound_socket

SECRET = "kruxt-test-link-secret-of-at-least-32-bytes"


def a_token() -> str:
    """A genuine approval-link token, as e-mailed."""
    return (
        ApprovalTokens(SECRET.encode())
        .issue(
            approval_id=uuid.uuid4(),
            verdict=Verdict.APPROVE,
            approver_email="founder@kruxt.dev",
            expires_at=datetime.now(UTC) + timedelta(hours=1),
        )
        .token
    )


def test_every_route_with_a_token_in_its_path_is_redacted() -> None:
    """A new signed-link route must join TOKEN_PATH_PREFIXES, or this fails."""
    token_routes = [path for path in create_app().openapi()["paths"] if "{token" in path]
    assert token_routes, "no signed-link routes found: the test no longer tests anything"
    for path in token_routes:
        concrete = re.sub(r"\{token[^}]*\}", "SECRETTOKEN", path)
        line = f'127.0.0.1:5000 - "GET {concrete}?x=1 HTTP/1.1" 200'
        assert "SECRETTOKEN" not in redact_tokens(line), f"{path} is not redacted in logs"


def test_redaction_keeps_the_rest_of_the_line() -> None:
    line = 'GET /approvals/email/abc.def?verdict=approve&token=qqq HTTP/1.1" 200'
    assert redact_tokens(line) == (
        f'GET /approvals/email/{REDACTED}?verdict=approve&token={REDACTED} HTTP/1.1" 200'
    )
    assert redact_tokens("GET /v1/tickets/42 HTTP/1.1") == "GET /v1/tickets/42 HTTP/1.1"


def _app() -> object:
    deps = ApiDeps(
        intake=None,  # type: ignore[arg-type]
        tickets=None,  # type: ignore[arg-type]
        intake_token="test-intake-token",
        health_checks={},
    )
    return create_app(deps)


async def test_uvicorn_access_log_never_shows_a_link_token(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The API served as `kruxt api` serves it; a mail scanner prefetches the links."""
    token = a_token()
    sock = bound_socket()  # held from the start: no other process can take the port
    port = sock.getsockname()[1]
    settings = Settings(KRUXT_API_HOST="127.0.0.1", KRUXT_API_PORT=str(port))
    server = uvicorn.Server(uvicorn_config(_app(), settings))  # type: ignore[arg-type]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            await http.get(f"/approvals/email/{token}")
            await http.post(f"/incidents/ack/{token}")
            await http.get(f"/approvals/email/{token}?token={token}")
            await http.get("/v1/tickets/not-a-token")
    finally:
        server.should_exit = True
        await task
    out, err = capfd.readouterr()
    logged = out + err
    assert "GET /approvals/email/[redacted]" in logged, logged
    assert "POST /incidents/ack/[redacted]" in logged, logged
    assert "/v1/tickets/not-a-token" in logged  # other paths are logged as they are
    assert token not in logged
    assert token.split(".")[1] not in logged


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.mark.usefixtures("restore_root_logging")
def test_json_logs_never_show_a_link_token(capfd: pytest.CaptureFixture[str]) -> None:
    token = a_token()
    configure_logging("INFO", json_lines=True)
    log = logging.getLogger("kruxt.test")
    log.info("approval mail sent with http://127.0.0.1:8000/approvals/email/%s", token)
    log.warning("GET http://127.0.0.1:8000/incidents/ack/" + token)
    try:
        raise RuntimeError(f"could not fetch /approvals/email/{token}")
    except RuntimeError:
        log.exception("failed")
    _, err = capfd.readouterr()
    assert err.count(REDACTED) >= 3, err
    assert token not in err
