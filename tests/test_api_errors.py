"""Every error of the HTTP API in its documented shape, `{error, detail}`: unknown routes,
wrong methods and bodies that are not JSON included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.client import Client

from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.models.tickets import RoutingPolicy
from kruxt.starter.api.app import ApiDeps, create_app
from kruxt.starter.intake import IntakeService
from tests.support import asgi_client

TOKEN = "t0ken"


@pytest.fixture
async def http(
    dev_client: Client, pool: asyncpg.Pool[Any], task_queue: str
) -> AsyncIterator[httpx.AsyncClient]:
    deps = ApiDeps(
        intake=IntakeService(dev_client, task_queue=task_queue, policy=RoutingPolicy()),
        tickets=TicketStore(pool),
        intake_token=TOKEN,
        health_checks={},
    )
    async with asgi_client(create_app(deps), headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c


def _shape(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "detail"}, body
    return body


async def test_an_unknown_route_is_404_in_the_error_shape(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/nope")
    assert response.status_code == 404
    assert _shape(response) == {"error": "not_found", "detail": "no route /v1/nope"}


async def test_a_wrong_method_is_405_naming_the_allowed_one(http: httpx.AsyncClient) -> None:
    response = await http.delete("/v1/tickets")
    assert response.status_code == 405
    body = _shape(response)
    assert body["error"] == "method_not_allowed"
    assert body["detail"] == "DELETE is not allowed on /v1/tickets; use POST"


async def test_a_body_nested_too_deeply_for_the_json_reader_is_422(
    http: httpx.AsyncClient,
) -> None:
    """Python's reader gives up past about a thousand levels with RecursionError: a body of
    brackets is refused like any other bad JSON, not answered with a 500."""
    for raw in (b"[" * 10_000, b'{"subject": ' + b"[" * 10_000):
        response = await http.post(
            "/v1/tickets", content=raw, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 422
        body = _shape(response)
        assert body["error"] == "invalid_json"
        assert body["detail"] == "body is not valid JSON: JSON nested too deeply"


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (b'{"external_id": "a",\n  "subject": }', "line 2 column 14"),
        (b"not json", "line 1 column 1"),
    ],
)
async def test_a_body_that_is_not_json_says_so_with_the_position(
    http: httpx.AsyncClient, raw: bytes, where: str
) -> None:
    headers = {"Content-Type": "application/json"}
    response = await http.post("/v1/tickets", content=raw, headers=headers)
    assert response.status_code == 422
    body = _shape(response)
    assert body["error"] == "invalid_json"
    assert body["detail"].startswith("body is not valid JSON: ")
    assert body["detail"].endswith(where)
