"""The HTTP API fuzzed from its own OpenAPI schema (schemathesis): no request earns a 5xx.

Cases are generated from the schema the app serves, a bounded number per operation, and sent
to the real app in this process (httpx's ASGI transport) on the real Temporal dev server and
PostgreSQL; every answer must be below 500. The link-token and Slack-signature parsers are
fuzzed with hypothesis: anything but a genuine input is refused with their own error.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.client import Client

from kruxt.adapters.email_tokens import ConfirmTokens, TokenError
from kruxt.adapters.slack.signature import SlackSignatureError, verify_slack_request
from kruxt.starter.api.app import create_app
from tests.support import API_TOKEN, api_deps, asgi_client, slack_signature

pytestmark = pytest.mark.e2e

# Examples per operation: enough to reach every parameter's edges, few enough to stay fast.
EXAMPLES = 12
BEARER = {"Authorization": f"Bearer {API_TOKEN}"}
QUICK = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _cases(schema: Any) -> list[Any]:
    """``EXAMPLES`` generated cases of every operation of ``schema``."""
    cases: list[Any] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @QUICK
        @given(case=operation.as_strategy())
        def collect(case: Any) -> None:
            cases.append(case)

        collect()
    return cases


async def test_no_generated_request_earns_a_5xx(
    dev_client: Client, pool: asyncpg.Pool[Any], task_queue: str
) -> None:
    app = create_app(api_deps(dev_client, pool, task_queue))
    schema = schemathesis.openapi.from_dict(app.openapi())
    cases = _cases(schema)
    assert len(cases) > EXAMPLES  # every operation, not one
    failures: list[str] = []
    async with asgi_client(app) as http:
        for case in cases:
            kwargs = case.as_transport_kwargs(base_url="http://api")
            response = await http.request(
                kwargs["method"],
                kwargs["url"],
                params=kwargs.get("params"),
                # The generated Authorization (any bearer) replaced by the real one: the fuzz
                # reaches the handlers, not only the token check.
                headers={**(kwargs.get("headers") or {}), **BEARER},
                json=kwargs.get("json"),
                content=kwargs.get("data") if isinstance(kwargs.get("data"), bytes) else None,
                data=kwargs.get("data") if isinstance(kwargs.get("data"), dict) else None,
            )
            if response.status_code >= 500:
                failures.append(
                    f"{kwargs['method']} {kwargs['url']} -> {response.status_code}: "
                    f"{response.text[:200]}"
                )
    assert not failures, "\n".join(failures)


# -- the parsers, fuzzed ----------------------------------------------------------------------

SECRET = "slack-signing-secret-for-fuzz"
text = st.text(max_size=300)


@settings(max_examples=200, deadline=None, database=None)
@given(token=text)
def test_confirm_link_tokens_refuse_anything_not_issued(token: str) -> None:
    tokens = ConfirmTokens(b"c" * 32)
    now = datetime.now(UTC)
    genuine = tokens.issue(ticket_id=uuid.uuid4(), expires_at=datetime(2099, 1, 1, tzinfo=UTC))
    assert tokens.verify(genuine, now=now)
    for candidate in (token, f"{token}.{token}", genuine + token[:1] if token else genuine + "x"):
        if candidate == genuine:
            continue
        with pytest.raises(TokenError):
            tokens.verify(candidate, now=now)


@settings(max_examples=300, deadline=None, database=None)
@given(
    timestamp=st.one_of(text, st.integers().map(str)),
    signature=text,
    # Slack posts form-encoded text; the verifier reads a body as UTF-8.
    body=text.map(str.encode),
    extra=st.dictionaries(text, text, max_size=3),
)
def test_slack_signature_headers_of_any_shape_are_refused_cleanly(
    timestamp: str, signature: str, body: bytes, extra: dict[str, str]
) -> None:
    now = time.time()
    headers = {**extra, "X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature}
    with pytest.raises(SlackSignatureError):
        verify_slack_request(signing_secret=SECRET, headers=headers, body=body, now=now)
    # The same body, signed for real, passes: the refusals above were about the headers.
    genuine = slack_signature(body, secret=SECRET, timestamp=int(now))
    verify_slack_request(signing_secret=SECRET, headers=genuine, body=body, now=now)
