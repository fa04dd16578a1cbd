"""The FastAPI application: routes, error shapes and authentication."""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from kruxt.adapters.channels import CustomerChannel, InAppChannel
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.adapters.telemetry import trace_app
from kruxt.adapters.temporal_client import TemporalUnavailableError
from kruxt.models.channels import (
    ChannelEvent,
    ChannelRequest,
    ChannelUnauthorized,
    FollowUp,
    NewTicket,
)
from kruxt.models.text import UnstorableTextError
from kruxt.models.tickets import NewMessageRequest, NewTicketRequest, TicketAccepted, TicketView
from kruxt.starter.api.channel_webhooks import ChannelWebhook, Refusals, WebhookChannel
from kruxt.starter.api.codec_routes import CodecContext, codec_router
from kruxt.starter.api.confirm_routes import ConfirmContext, confirm_router
from kruxt.starter.api.email_routes import EmailContext, email_router
from kruxt.starter.api.grade_routes import GradeContext, grade_router
from kruxt.starter.api.incident_routes import IncidentAckContext, incident_router
from kruxt.starter.api.intercom_routes import intercom_router
from kruxt.starter.api.limits import BodySizeLimit
from kruxt.starter.api.slack_routes import SlackContext, slack_router
from kruxt.starter.api.zendesk_routes import zendesk_router
from kruxt.starter.console.auth import CsrfRefused
from kruxt.starter.console.auth_routes import auth_router, csrf_refused_page
from kruxt.starter.console.context import ConsoleContext
from kruxt.starter.console.pages import console_router
from kruxt.starter.console.staff_api import staff_api_router
from kruxt.starter.console.templating import error_page, wants_page
from kruxt.starter.intake import IntakeService, TicketClosedError, UnknownTicketError
from kruxt.starter.waiting import until_found

T = TypeVar("T")
HealthCheck = Callable[[], Awaitable[None]]
HEALTH_TIMEOUT_S = 3.0
# How long a read of a ticket received but not stored yet waits for its row (normally a few
# tens of ms: the workflow's first activity writes it).
STORED_WAIT_S = 5.0


@dataclass
class ApiDeps:
    """What the API needs, built by the entrypoint (or by a test)."""

    intake: IntakeService
    tickets: TicketStore
    intake_token: str
    health_checks: dict[str, HealthCheck]
    slack: SlackContext | None = None
    email: EmailContext | None = None
    incident_ack: IncidentAckContext | None = None
    # Customers' confirm links (KRUXT_LINK_SECRET); None: the routes answer 404.
    confirm: ConfirmContext | None = None
    codec: CodecContext | None = None
    # The weekly review's grade links (KRUXT_LINK_SECRET); None: the routes answer 404.
    grade: GradeContext | None = None
    # Channels with webhooks (kruxt.adapters.channels); refused requests are counted here.
    zendesk: WebhookChannel | None = None
    intercom: WebhookChannel | None = None
    refusals: Refusals = field(default_factory=Refusals)
    # The staff console (/console pages, /v1/staff API); None: those routes answer 404.
    console: ConsoleContext | None = None
    # The in-app channel verifies the bearer token (kruxt.adapters.channels.in_app).
    in_app: InAppChannel = field(init=False)

    def __post_init__(self) -> None:
        self.in_app = InAppChannel(self.tickets, intake_token=self.intake_token)

    def webhook(self, channel: WebhookChannel | None) -> ChannelWebhook | None:
        """``channel``'s webhook endpoint; None (404) when it is off or has no signing secret."""
        if channel is None or not channel.signed:
            return None
        return ChannelWebhook(channel, self.intake, self.tickets, self.refusals)


class MessageAccepted(BaseModel):
    """Answer of ``POST /v1/tickets/{ticket_id}/messages``."""

    ticket_id: uuid.UUID = Field(description="The ticket the message went to")
    message_id: uuid.UUID
    follows_ticket_id: uuid.UUID | None = Field(
        default=None,
        description="Set when the ticket in the URL was closed (its reopen window ended): the "
        "message opened the new ticket ``ticket_id``, which follows this one",
    )


class ErrorBody(BaseModel):
    """Every error the API returns has this shape."""

    error: str
    detail: Any = None


_bearer = HTTPBearer(auto_error=False)


def get_deps(request: Request) -> ApiDeps:
    """The dependencies the app was built with, or connected at startup."""
    deps: ApiDeps = request.app.state.deps
    return deps


async def _deps(request: Request) -> ApiDeps:
    # Async on purpose, as is require_token: FastAPI runs a plain ``def`` dependency in its
    # thread pool, a thread hop on every request for an attribute read (py-spy, intake bench).
    return get_deps(request)


Deps = Annotated[ApiDeps, Depends(_deps)]


def create_app(deps: ApiDeps | None = None, *, lifespan: Any = None) -> FastAPI:
    """Build the API; ``deps`` now, or set on ``app.state.deps`` by the lifespan."""
    # Swagger UI and ReDoc from the package's files, not a CDN: the docs work offline.
    app = FastAPIOffline(
        title="KRUXT Support Autopilot",
        version="0.1.0",
        lifespan=lifespan,
        responses={401: {"model": ErrorBody}, 422: {"model": ErrorBody}, 413: {"model": ErrorBody}},
        # FastAPI's own OpenTelemetry is on whenever a tracer provider is installed (the worker
        # and API always install one): spans per request, dependency and serialization that
        # nothing exports unless OTLP is set, and then trace_app's instrumentation makes the
        # request's span. One instrumentation, the OpenTelemetry project's, as for the rest.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.add_middleware(BodySizeLimit)
    trace_app(app)
    if deps is not None:
        app.state.deps = deps

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        not_json = next((e for e in exc.errors() if e.get("type") == "json_invalid"), None)
        if not_json is not None:
            where = json_error_position(not_json, await request.body())
            return JSONResponse(
                status_code=422,
                content={"error": "invalid_json", "detail": f"body is not valid JSON: {where}"},
            )
        fields = [
            {
                "field": ".".join(str(p) for p in err["loc"] if p != "body") or "body",
                "message": err["msg"],
            }
            for err in exc.errors()
        ]
        names = ", ".join(f["field"] for f in fields)
        return JSONResponse(
            status_code=422,
            content={"error": "invalid_request", "detail": f"invalid: {names}", "fields": fields},
        )

    @app.exception_handler(UnstorableTextError)
    async def unstorable_text(_: Request, exc: UnstorableTextError) -> JSONResponse:
        # Channels that hand the intake plain strings get the same 422 as a request body.
        return JSONResponse(
            status_code=422,
            content={
                "error": "invalid_request",
                "detail": f"invalid: {exc.field}",
                "fields": [{"field": exc.field, "message": exc.reason}],
            },
        )

    @app.exception_handler(TemporalUnavailableError)
    async def temporal_down(_: Request, exc: TemporalUnavailableError) -> JSONResponse:
        # Nothing was accepted: the client retries, and the same ids come back.
        return JSONResponse(
            status_code=503,
            content={"error": "temporal_unavailable", "detail": str(exc)},
            headers={"Retry-After": "5"},
        )

    # Starlette's own exception: the router's 404 (no such route) and 405 (wrong method) too.
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        body = exc.detail if isinstance(exc.detail, dict) else _routing_error(request, exc)
        if wants_page(request) and exc.status_code not in (401, 303):
            return error_page(request, exc.status_code, body)
        return JSONResponse(status_code=exc.status_code, content=body, headers=exc.headers)

    async def require_token(
        deps: Deps,
        request: Request,
        # Declared for the OpenAPI security scheme; the in-app channel does the check.
        _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        authorization = request.headers.get("authorization", "")
        try:
            deps.in_app.verify(ChannelRequest(headers={"authorization": authorization}))
        except ChannelUnauthorized as exc:
            raise HTTPException(
                status_code=status.HTTP_401_UNAUTHORIZED,
                detail={"error": "unauthorized", "detail": "a valid bearer token is required"},
                headers={"WWW-Authenticate": "Bearer"},
            ) from exc

    authorized = [Depends(require_token)]

    @app.get("/metrics", dependencies=authorized, include_in_schema=False)
    async def metrics() -> Response:
        """The API process's Prometheus metrics (the webhooks' refusals), for a scraper
        holding the intake token."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", tags=["ops"])
    async def healthz(deps: Deps) -> JSONResponse:
        """200 when Temporal and Postgres answer; 503 naming the one that did not."""
        results: dict[str, str] = {}
        for name, check in deps.health_checks.items():
            try:
                await asyncio.wait_for(check(), HEALTH_TIMEOUT_S)
                results[name] = "ok"
            except Exception:  # a health check reports every failure
                # The exception text can carry DSNs and host names: it goes to the log only.
                logging.getLogger(__name__).warning("health check %s failed", name, exc_info=True)
                results[name] = "failed"
        failing = [name for name, result in results.items() if result != "ok"]
        return JSONResponse(
            status_code=503 if failing else 200,
            content={
                "status": "unavailable" if failing else "ok",
                "checks": results,
                "failing": failing,
            },
        )

    # The intake endpoints: bearer-checked, answered 202 once the workflow has the request.
    intake_route = functools.partial(
        app.post, status_code=status.HTTP_202_ACCEPTED, dependencies=authorized, tags=["tickets"]
    )

    @intake_route("/v1/tickets", openapi_extra=json_body(NewTicketRequest))
    async def open_ticket(deps: Deps, request: Request) -> TicketAccepted:
        """Accept an in-app ticket; triage happens in the background."""
        parsed = await parse_request(deps.in_app, request)
        assert isinstance(parsed, NewTicket)  # no ticket in the URL: the channel opens one
        return await deps.intake.open_parsed(parsed)

    @app.get("/v1/tickets/{ticket_id}", dependencies=authorized, tags=["tickets"])
    async def get_ticket(deps: Deps, ticket_id: uuid.UUID) -> TicketView:
        """The ticket with its messages, triage, status and timestamps."""
        view = await deps.tickets.get(ticket_id) or await _once_stored(deps, ticket_id)
        return await deps.intake.with_live_state(view)

    @intake_route("/v1/tickets/{ticket_id}/messages", openapi_extra=json_body(NewMessageRequest))
    async def add_message(deps: Deps, ticket_id: uuid.UUID, request: Request) -> MessageAccepted:
        """A customer's follow-up, delivered to the ticket's workflow."""
        parsed = await parse_request(deps.in_app, request, ticket_id=ticket_id)
        assert isinstance(parsed, FollowUp)  # a ticket in the URL: the channel adds to it
        try:
            taken = await deps.intake.follow_up(parsed)
        except UnknownTicketError as exc:
            raise _no_ticket(ticket_id) from exc
        except TicketClosedError as exc:
            raise HTTPException(
                status_code=409,
                detail={
                    "error": "ticket_closed",
                    "detail": f"ticket {ticket_id} is resolved; open a new ticket",
                },
            ) from exc
        return MessageAccepted(
            ticket_id=taken.ticket_id, message_id=taken.message_id, follows_ticket_id=taken.follows
        )

    app.include_router(slack_router(_configured(lambda d: d.slack, "Slack is not configured")))
    app.include_router(email_router(_configured(lambda d: d.email, "e-mail approvals are off")))
    app.include_router(
        incident_router(_configured(lambda d: d.incident_ack, "incident ack links are off"))
    )
    app.include_router(confirm_router(_configured(lambda d: d.confirm, "confirm links are off")))
    app.include_router(grade_router(_configured(lambda d: d.grade, "grade links are off")))
    app.include_router(codec_router(_configured(lambda d: d.codec, "the codec endpoint is off")))
    app.include_router(
        zendesk_router(_configured(lambda d: d.webhook(d.zendesk), "Zendesk is not configured"))
    )
    app.include_router(
        intercom_router(_configured(lambda d: d.webhook(d.intercom), "Intercom is not configured"))
    )
    console = _configured(lambda d: d.console, "the staff console is off")
    app.include_router(auth_router())
    app.add_exception_handler(CsrfRefused, csrf_refused_page)
    app.include_router(console_router(console))
    app.include_router(
        staff_api_router(console),
        responses={code: {"model": ErrorBody} for code in (403, 404, 409)},
    )
    return app


def _routing_error(request: Request, exc: StarletteHTTPException) -> dict[str, str]:
    """An error raised with a plain message, mostly the router's, in the API's shape."""
    if exc.status_code == 404:
        return {"error": "not_found", "detail": f"no route {request.url.path}"}
    if exc.status_code == 405:
        allowed = {k.lower(): v for k, v in (exc.headers or {}).items()}.get("allow", "")
        return {
            "error": "method_not_allowed",
            "detail": f"{request.method} is not allowed on {request.url.path}; use {allowed}",
        }
    return {"error": str(exc.detail).lower().replace(" ", "_"), "detail": str(exc.detail)}


def json_error_position(error: Any, body: bytes) -> str:
    """Where a body stopped being JSON: the parser's reason at line and column."""
    reason = str((error.get("ctx") or {}).get("error", "not JSON"))
    loc = error.get("loc", ())
    if not (loc and isinstance(loc[-1], int)):
        # A channel's parser passes the json module's own words: "...: line 2 column 14 (char 34)".
        return reason.partition(" (char ")[0].replace(": line ", " at line ")
    before = body[: loc[-1]].decode("utf-8", "replace")
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    return f"{reason} at line {line} column {column}"


async def _once_stored(deps: ApiDeps, ticket_id: uuid.UUID) -> TicketView:
    """A ticket not stored yet: if its workflow has it (the intake answered 202, and the
    workflow's first activity writes the row a moment later), wait up to STORED_WAIT_S for the
    row rather than answer "no ticket" to a client that reads right after it wrote."""
    if not await deps.intake.received(ticket_id):
        raise _no_ticket(ticket_id)
    view = await until_found(lambda: deps.tickets.get(ticket_id), within=STORED_WAIT_S)
    if view is not None:
        return view
    raise HTTPException(
        status_code=404,
        detail={
            "error": "not_stored_yet",
            "detail": f"ticket {ticket_id} was received and is being stored; ask again shortly",
        },
        headers={"Retry-After": "1"},
    )


def _no_ticket(ticket_id: uuid.UUID) -> HTTPException:
    return HTTPException(
        status_code=404, detail={"error": "not_found", "detail": f"no ticket {ticket_id}"}
    )


async def parse_request(
    channel: CustomerChannel, request: Request, *, ticket_id: uuid.UUID | None = None
) -> ChannelEvent:
    """The body as ``channel`` parses it (after its ``verify``); one it refuses is the API's
    usual 422 naming the fields, as a body FastAPI validated would be."""
    raw = ChannelRequest(
        headers=dict(request.headers), body=await request.body(), ticket_id=ticket_id
    )
    try:
        return channel.parse(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of a route that hands its raw body to a channel's parser."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        # Nested models are written in place: "#/$defs/..." would not resolve in the document.
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inline(schema)}},
        }
    }


def _configured(pick: Callable[[ApiDeps], T | None], off: str) -> Callable[[Request], T]:
    """A router's context getter: its part of the deps, or 404 when that part is off."""

    def get(request: Request) -> T:
        ctx = pick(get_deps(request))
        if ctx is None:
            raise HTTPException(status_code=404, detail={"error": "not_configured", "detail": off})
        return ctx

    return get
