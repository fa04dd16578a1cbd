"""The FastAPI application: routes, error shapes and authentication."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from kruxt.adapters.channels import InAppChannel
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.adapters.temporal_client import TemporalUnavailableError
from kruxt.models.channels import ChannelRequest, ChannelUnauthorized
from kruxt.models.enums import Channel
from kruxt.models.text import UnstorableTextError
from kruxt.models.tickets import NewMessageRequest, NewTicketRequest, TicketAccepted, TicketView
from kruxt.starter.api.codec_routes import CodecContext, codec_router
from kruxt.starter.api.email_routes import EmailContext, email_router
from kruxt.starter.api.incident_routes import IncidentAckContext, incident_router
from kruxt.starter.api.limits import BodySizeLimit
from kruxt.starter.api.slack_routes import SlackContext, slack_router
from kruxt.starter.intake import IntakeService, TicketClosedError, UnknownTicketError

T = TypeVar("T")
HealthCheck = Callable[[], Awaitable[None]]
HEALTH_TIMEOUT_S = 3.0


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
    codec: CodecContext | None = None
    # The in-app channel verifies the bearer token (kruxt.adapters.channels.in_app).
    in_app: InAppChannel = field(init=False)

    def __post_init__(self) -> None:
        self.in_app = InAppChannel(self.tickets, intake_token=self.intake_token)


class MessageAccepted(BaseModel):
    """Answer of ``POST /v1/tickets/{ticket_id}/messages``."""

    ticket_id: uuid.UUID
    message_id: uuid.UUID


class ErrorBody(BaseModel):
    """Every error the API returns has this shape."""

    error: str
    detail: Any = None


_bearer = HTTPBearer(auto_error=False)


def get_deps(request: Request) -> ApiDeps:
    """The dependencies the app was built with, or connected at startup."""
    deps: ApiDeps = request.app.state.deps
    return deps


Deps = Annotated[ApiDeps, Depends(get_deps)]


def create_app(deps: ApiDeps | None = None, *, lifespan: Any = None) -> FastAPI:
    """Build the API; ``deps`` now, or set on ``app.state.deps`` by the lifespan."""
    app = FastAPI(
        title="KRUXT Support Autopilot",
        version="0.1.0",
        lifespan=lifespan,
        responses={401: {"model": ErrorBody}, 422: {"model": ErrorBody}, 413: {"model": ErrorBody}},
    )
    app.add_middleware(BodySizeLimit)
    if deps is not None:
        app.state.deps = deps

    @app.exception_handler(RequestValidationError)
    async def invalid_body(_: Request, exc: RequestValidationError) -> JSONResponse:
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

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        body = exc.detail if isinstance(exc.detail, dict) else {"error": str(exc.detail)}
        return JSONResponse(status_code=exc.status_code, content=body, headers=exc.headers)

    def require_token(
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

    @app.post(
        "/v1/tickets",
        status_code=status.HTTP_202_ACCEPTED,
        dependencies=authorized,
        tags=["tickets"],
    )
    async def open_ticket(deps: Deps, body: NewTicketRequest) -> TicketAccepted:
        """Accept an in-app ticket; triage happens in the background."""
        return await deps.intake.open_ticket(
            channel=Channel.IN_APP,
            external_id=body.external_id,
            requester=body.requester,
            account_id=body.account_id,
            subject=body.subject,
            body=body.body,
        )

    @app.get("/v1/tickets/{ticket_id}", dependencies=authorized, tags=["tickets"])
    async def get_ticket(deps: Deps, ticket_id: uuid.UUID) -> TicketView:
        """The ticket with its messages, triage, status and timestamps."""
        view = await deps.tickets.get(ticket_id)
        if view is None:
            raise HTTPException(
                status_code=404, detail={"error": "not_found", "detail": f"no ticket {ticket_id}"}
            )
        return await deps.intake.with_live_state(view)

    @app.post(
        "/v1/tickets/{ticket_id}/messages",
        status_code=status.HTTP_202_ACCEPTED,
        dependencies=authorized,
        tags=["tickets"],
    )
    async def add_message(
        deps: Deps, ticket_id: uuid.UUID, body: NewMessageRequest
    ) -> MessageAccepted:
        """A customer's follow-up, delivered to the ticket's workflow."""
        try:
            message_id = await deps.intake.add_message(
                ticket_id=ticket_id, external_id=body.external_id, body=body.body
            )
        except UnknownTicketError as exc:
            raise HTTPException(
                status_code=404, detail={"error": "not_found", "detail": f"no ticket {ticket_id}"}
            ) from exc
        except TicketClosedError as exc:
            raise HTTPException(
                status_code=409,
                detail={
                    "error": "ticket_closed",
                    "detail": f"ticket {ticket_id} is resolved; open a new ticket",
                },
            ) from exc
        return MessageAccepted(ticket_id=ticket_id, message_id=message_id)

    app.include_router(slack_router(_configured(lambda d: d.slack, "Slack is not configured")))
    app.include_router(email_router(_configured(lambda d: d.email, "e-mail approvals are off")))
    app.include_router(
        incident_router(_configured(lambda d: d.incident_ack, "incident ack links are off"))
    )
    app.include_router(codec_router(_configured(lambda d: d.codec, "the codec endpoint is off")))
    return app


def _configured(pick: Callable[[ApiDeps], T | None], off: str) -> Callable[[Request], T]:
    """A router's context getter: its part of the deps, or 404 when that part is off."""

    def get(request: Request) -> T:
        ctx = pick(get_deps(request))
        if ctx is None:
            raise HTTPException(status_code=404, detail={"error": "not_configured", "detail": off})
        return ctx

    return get
