"""The console's pages under ``/console``: the queue, a ticket, incidents, the KPIs, and the
form posts that act through :class:`~kruxt.starter.console.actions.ConsoleActions`.

Pages are server-rendered (``templating``); htmx refreshes the queue and a ticket's live part
in place and posts the forms, whose answer is the part to swap in. Without scripts every form
still posts and the page answers whole (redirected after a success, so a reload resends
nothing). Every page needs a session (``ConsoleUser``), every post its CSRF token too
(``ConsoleAction``).
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' annotations, which name
# the router factory's local ``Ctx``.

import asyncio
import functools
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from pydantic import ValidationError

from kruxt.models.approvals import Verdict
from kruxt.models.console import ConsoleTicket, QueueBucket, QueueFilter
from kruxt.models.enums import Channel, Priority, TicketStatus
from kruxt.models.playbooks import RunStatus
from kruxt.starter.console.actions import ConsoleActions
from kruxt.starter.console.auth import ConsoleAction, ConsoleUser, StaffMember, csrf_token_for
from kruxt.starter.console.context import ConsoleContext
from kruxt.starter.console.refusals import REFUSED, BadInputError, refusal_of
from kruxt.starter.console.templating import (
    CHART_CSP,
    PAGE_HEADERS,
    REVIEW_CSP,
    STATIC_DIR,
    render,
)

__all__ = ["QUEUE_TABS", "console_router"]

QUEUE_TABS: tuple[tuple[QueueBucket, str], ...] = (
    (QueueBucket.AWAITING_APPROVAL, "Awaiting approval"),
    (QueueBucket.AWAITING_HUMAN, "Awaiting a person"),
    (QueueBucket.SLA_RISK, "SLA at risk"),
    (QueueBucket.REOPENED, "Reopened"),
    (QueueBucket.ALL, "All"),
)
# The ticket page polls its live part this often (seconds): faster while a run or a decision
# is moving, so an approver sees the playbook's outcome without reloading.
POLL_BUSY_S, POLL_IDLE_S = 3, 10
JUST_DECIDED = timedelta(minutes=2)
MAX_REASON_CHARS = 2000
MAX_EMAIL_CHARS = 320
KPI_PERIODS = (1, 7, 30)
# The files under /console/static, by name: nothing else is ever read from disk.
_STATIC = {
    "console.css": "text/css; charset=utf-8",
    "htmx.min.js": "text/javascript; charset=utf-8",
    "htmx.LICENSE": "text/plain; charset=utf-8",
}
# What a form post did, shown on the page it redirects to (keys, never text from the URL).
_DONE = {
    "approved": "Approved: the playbook runs now.",
    "rejected": "Rejected: the ticket goes to a person.",
    "rollback": "Rollback requested: someone else approves it.",
    "reply": "Reply sent to the customer.",
    "note": "Internal note added.",
    "resolved": "Resolve sent: the ticket closes once its workflow has taken it.",
    "reassigned": "Reassigned.",
    "priority": "Priority changed: the SLA deadlines follow.",
    "acknowledged": "Acknowledged: escalation stopped.",
    "incident_resolved": "Incident resolved: its tickets are told.",
}


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


async def _form(request: Request) -> dict[str, str]:
    """A form post's text fields (read once; A's CSRF check may have read it already)."""
    form = await request.form()
    return {k: v.strip() for k, v in form.items() if isinstance(v, str)}


def _queue_filter(request: Request) -> QueueFilter:
    """The queue's filter from the query string; a value it does not know is left out."""
    params = request.query_params
    fields: dict[str, Any] = {
        "bucket": params.get("bucket") or QueueBucket.ALL,
        "search": params.get("q", "")[:200],
        "priority": params.get("priority") or None,
        "channel": params.get("channel") or None,
    }
    for name in ("priority", "channel", "bucket"):
        try:
            return QueueFilter(**fields)
        except ValidationError:
            fields.pop(name)
    return QueueFilter(search=fields["search"])


def _query(f: QueueFilter, **change: str) -> str:
    values = {
        "bucket": f.bucket.value,
        "q": f.search,
        "priority": f.priority.value if f.priority else "",
        "channel": f.channel.value if f.channel else "",
    } | change
    return urlencode({k: v for k, v in values.items() if v})


def _poll_seconds(ticket: ConsoleTicket, now: datetime) -> int:
    """Fast while the ticket moves on its own: being triaged, a run going, or a decision
    just taken (its run about to start); slow while it waits for a person."""
    view = ticket.view
    running = any(r.status == RunStatus.RUNNING.value for r in view.runs)
    just_decided = any(
        a.approval.decided_at is not None and now - a.approval.decided_at < JUST_DECIDED
        for a in ticket.approvals
    )
    settling = view.status in (TicketStatus.NEW, TicketStatus.TRIAGED, TicketStatus.IN_PROGRESS)
    return POLL_BUSY_S if running or just_decided or settling else POLL_IDLE_S


# --- what each form post does -----------------------------------------------------------------

# An action on a ticket (or an incident): it reads its form, acts as the signed-in person
# through ConsoleActions, and returns what it did (a key of _DONE).
TicketAct = Callable[[ConsoleActions, uuid.UUID, dict[str, str], StaffMember], Awaitable[str]]


def _reason(form: dict[str, str], *, needed: str = "") -> str:
    """The form's ``reason`` (cut to ``MAX_REASON_CHARS``); ``needed``: why an empty one is
    refused."""
    reason = form.get("reason", "")[:MAX_REASON_CHARS]
    if needed and not reason:
        raise BadInputError(f"reason: {needed}")
    return reason


async def _decide(
    approval_id: uuid.UUID,
    actions: ConsoleActions,
    ticket_id: uuid.UUID,
    form: dict[str, str],
    user: StaffMember,
) -> str:
    try:
        verdict = Verdict(form.get("verdict", ""))
    except ValueError:
        raise BadInputError("verdict: approve or reject") from None
    rejecting = verdict is Verdict.REJECT
    reason = _reason(form, needed="say why you reject it" if rejecting else "")
    await actions.decide(approval_id, verdict, reason, user)
    return "rejected" if rejecting else "approved"


async def _rollback(
    run_id: uuid.UUID,
    actions: ConsoleActions,
    ticket_id: uuid.UUID,
    form: dict[str, str],
    user: StaffMember,
) -> str:
    reason = _reason(form, needed="say why it should be undone")
    await actions.request_rollback(ticket_id, run_id, reason, user)
    return "rollback"


async def _write(
    actions: ConsoleActions, ticket_id: uuid.UUID, form: dict[str, str], user: StaffMember
) -> str:
    """A reply to the customer (``kind=reply``) or an internal note (``kind=note``)."""
    text = form.get("text", "")
    if not text:
        raise BadInputError("text: write something first")
    if form.get("kind") == "note":
        await actions.note(ticket_id, text, user)
        return "note"
    await actions.reply(ticket_id, text, user)
    return "reply"


async def _reassign(
    actions: ConsoleActions, ticket_id: uuid.UUID, form: dict[str, str], user: StaffMember
) -> str:
    assignee = form.get("assignee", "")
    if "@" not in assignee or len(assignee) > MAX_EMAIL_CHARS:
        raise BadInputError("assignee: an e-mail address")
    await actions.reassign(ticket_id, assignee, user)
    return "reassigned"


async def _change_priority(
    actions: ConsoleActions, ticket_id: uuid.UUID, form: dict[str, str], user: StaffMember
) -> str:
    try:
        priority = Priority(form.get("priority", ""))
    except ValueError:
        raise BadInputError("priority: P1, P2, P3 or P4") from None
    await actions.change_priority(ticket_id, priority, _reason(form), user)
    return "priority"


async def _acknowledge(
    actions: ConsoleActions, incident_id: uuid.UUID, form: dict[str, str], user: StaffMember
) -> str:
    await actions.acknowledge_incident(incident_id, user)
    return "acknowledged"


def _with_note(
    call: Callable[[ConsoleActions, uuid.UUID, str, StaffMember], Awaitable[object]], done: str
) -> TicketAct:
    """An action that takes the form's optional ``note``: resolving a ticket or an incident."""

    async def act(
        actions: ConsoleActions, target: uuid.UUID, form: dict[str, str], user: StaffMember
    ) -> str:
        await call(actions, target, form.get("note", "")[:MAX_REASON_CHARS], user)
        return done

    return act


# POST /console/tickets/{ticket_id}/<name> and /console/incidents/{incident_id}/<name>.
_TICKET_ACTIONS: dict[str, TicketAct] = {
    "messages": _write,
    "resolve": _with_note(ConsoleActions.resolve, "resolved"),
    "reassign": _reassign,
    "priority": _change_priority,
}
_INCIDENT_ACTIONS: dict[str, TicketAct] = {
    "acknowledge": _acknowledge,
    "resolve": _with_note(ConsoleActions.resolve_incident, "incident_resolved"),
}


def _registered(actions: dict[str, TicketAct], name: str) -> TicketAct:
    """The action of that name; 404 for any other."""
    if name not in actions:
        raise HTTPException(404, {"error": "not_found", "detail": f"no action {name}"})
    return actions[name]


def console_router(get_ctx: Callable[[Request], ConsoleContext]) -> APIRouter:
    """The ``/console`` pages; ``get_ctx`` finds their dependencies (404 when the console is
    off)."""
    router = APIRouter(prefix="/console", include_in_schema=False)
    Ctx = Annotated[ConsoleContext, Depends(get_ctx)]

    def page(
        request: Request, user: StaffMember, name: str, *, status_code: int = 200, **values: Any
    ) -> HTMLResponse:
        return render(
            request,
            name,
            status_code=status_code,
            user=user,
            csrf_token=csrf_token_for(request),
            **values,
        )

    # --- static files ---------------------------------------------------------------------

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        """The stylesheet and htmx, from the package (never a CDN)."""
        if name not in _STATIC:
            raise HTTPException(404, {"error": "not_found", "detail": f"no file {name}"})
        return FileResponse(
            STATIC_DIR / name,
            media_type=_STATIC[name],
            headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
        )

    # --- the queue ------------------------------------------------------------------------

    async def queue_values(ctx: ConsoleContext, request: Request) -> dict[str, Any]:
        f = _queue_filter(request)
        return {
            "filter": f,
            "rows": await ctx.queries.queue(f),
            "counts": await ctx.queries.counts(),
            "buckets": QUEUE_TABS,
            "query": _query(f),
            "tab_query": lambda bucket: _query(f, bucket=bucket.value),
            "now": datetime.now(UTC),
        }

    @router.get("", response_class=HTMLResponse)
    async def queue(request: Request, user: ConsoleUser, ctx: Ctx) -> HTMLResponse:
        """Tickets by tab, most urgent first; the rows refresh themselves."""
        values = await queue_values(ctx, request)
        return page(
            request,
            user,
            "queue.html",
            section="queue",
            priorities=list(Priority),
            channels=list(Channel),
            **values,
        )

    @router.get("/queue/rows", response_class=HTMLResponse)
    async def queue_rows(request: Request, user: ConsoleUser, ctx: Ctx) -> HTMLResponse:
        """The queue's tabs and rows alone, for htmx to swap in."""
        return page(request, user, "partials/queue_body.html", **await queue_values(ctx, request))

    # --- a ticket -------------------------------------------------------------------------

    async def load_ticket(ctx: ConsoleContext, ticket_id: uuid.UUID, user: StaffMember) -> Any:
        found = await ctx.queries.ticket(ticket_id, viewer=user)
        if found is None:
            raise HTTPException(404, {"error": "not_found", "detail": f"no ticket {ticket_id}"})
        return found

    def ticket_values(t: ConsoleTicket, **values: Any) -> dict[str, Any]:
        return {
            "t": t,
            "section": "queue",
            "priorities": list(Priority),
            "poll_seconds": _poll_seconds(t, datetime.now(UTC)),
        } | values

    @router.get("/tickets/{ticket_id}", response_class=HTMLResponse)
    async def ticket(
        request: Request, ticket_id: uuid.UUID, user: ConsoleUser, ctx: Ctx, done: str = ""
    ) -> HTMLResponse:
        """The conversation, triage, SLA, incident, plans to decide and every staff action."""
        t = await load_ticket(ctx, ticket_id, user)
        return page(request, user, "ticket.html", **ticket_values(t, notice=_DONE.get(done)))

    @router.get("/tickets/{ticket_id}/live", response_class=HTMLResponse)
    async def ticket_live(
        request: Request, ticket_id: uuid.UUID, user: ConsoleUser, ctx: Ctx
    ) -> HTMLResponse:
        """The ticket's moving parts, for htmx to swap in."""
        t = await load_ticket(ctx, ticket_id, user)
        return page(request, user, "partials/ticket_live.html", **ticket_values(t, oob_side=True))

    async def ticket_action(
        request: Request,
        ctx: ConsoleContext,
        user: StaffMember,
        ticket_id: uuid.UUID,
        act: TicketAct,
    ) -> Response:
        """Run ``act`` on the form (it returns what it did, a key of ``_DONE``); answer with
        the refreshed ticket (its live part for htmx, else a redirect to the page) or, when it
        was refused, the reason and a 4xx."""
        try:
            done = await act(ctx.actions, ticket_id, await _form(request), user)
        except REFUSED as exc:
            refusal = refusal_of(exc)
            t = await load_ticket(ctx, ticket_id, user)
            htmx = _is_htmx(request)
            return page(
                request,
                user,
                "partials/ticket_live.html" if htmx else "ticket.html",
                status_code=refusal.status,
                **ticket_values(t, notice=refusal.detail, notice_error=True, oob_side=htmx),
            )
        if not _is_htmx(request):
            return RedirectResponse(f"/console/tickets/{ticket_id}?done={done}", status_code=303)
        t = await load_ticket(ctx, ticket_id, user)
        return page(
            request,
            user,
            "partials/ticket_live.html",
            **ticket_values(t, notice=_DONE[done], oob_side=True, oob_forms=True),
        )

    @router.post("/tickets/{ticket_id}/approvals/{approval_id}")
    async def decide(
        request: Request,
        ticket_id: uuid.UUID,
        approval_id: uuid.UUID,
        user: ConsoleAction,
        ctx: Ctx,
    ) -> Response:
        """Approve or reject a plan (or a rollback); rejecting needs a reason."""
        act = functools.partial(_decide, approval_id)
        return await ticket_action(request, ctx, user, ticket_id, act)

    @router.post("/tickets/{ticket_id}/runs/{run_id}/rollback")
    async def rollback(
        request: Request, ticket_id: uuid.UUID, run_id: uuid.UUID, user: ConsoleAction, ctx: Ctx
    ) -> Response:
        """Ask for a completed run to be undone (another person approves it)."""
        act = functools.partial(_rollback, run_id)
        return await ticket_action(request, ctx, user, ticket_id, act)

    @router.post("/tickets/{ticket_id}/{action}")
    async def act_on_ticket(
        request: Request, ticket_id: uuid.UUID, action: str, user: ConsoleAction, ctx: Ctx
    ) -> Response:
        """One of ``_TICKET_ACTIONS``: write (a reply or a note), resolve, reassign, priority."""
        return await ticket_action(
            request, ctx, user, ticket_id, _registered(_TICKET_ACTIONS, action)
        )

    # --- incidents ------------------------------------------------------------------------

    @router.get("/incidents", response_class=HTMLResponse)
    async def incidents(request: Request, user: ConsoleUser, ctx: Ctx) -> HTMLResponse:
        """Open and acknowledged incidents."""
        found = await ctx.queries.incidents()
        return page(request, user, "incidents.html", section="incidents", incidents=found)

    async def incident_page(
        request: Request,
        ctx: ConsoleContext,
        user: StaffMember,
        incident_id: uuid.UUID,
        *,
        status: int = 200,
        **values: Any,
    ) -> HTMLResponse:
        found = await ctx.queries.incident(incident_id)
        if found is None:
            raise HTTPException(404, {"error": "not_found", "detail": f"no incident {incident_id}"})
        return page(
            request,
            user,
            "incident.html",
            status_code=status,
            section="incidents",
            i=found,
            **values,
        )

    @router.get("/incidents/{incident_id}", response_class=HTMLResponse)
    async def incident(
        request: Request, incident_id: uuid.UUID, user: ConsoleUser, ctx: Ctx, done: str = ""
    ) -> HTMLResponse:
        """One incident: escalation level, timeline, its tickets; acknowledge and resolve."""
        return await incident_page(request, ctx, user, incident_id, notice=_DONE.get(done))

    @router.post("/incidents/{incident_id}/{action}")
    async def act_on_incident(
        request: Request, incident_id: uuid.UUID, action: str, user: ConsoleAction, ctx: Ctx
    ) -> Response:
        """One of ``_INCIDENT_ACTIONS``: acknowledge (escalation stops) or resolve."""
        act = _registered(_INCIDENT_ACTIONS, action)
        try:
            done = await act(ctx.actions, incident_id, await _form(request), user)
        except REFUSED as exc:
            refusal = refusal_of(exc)
            return await incident_page(
                request,
                ctx,
                user,
                incident_id,
                status=refusal.status,
                notice=refusal.detail,
                notice_error=True,
            )
        return RedirectResponse(f"/console/incidents/{incident_id}?done={done}", status_code=303)

    # --- KPIs -----------------------------------------------------------------------------

    @router.get("/kpis", response_class=HTMLResponse)
    async def kpis(request: Request, user: ConsoleUser, ctx: Ctx, days: int = 7) -> HTMLResponse:
        """The KPI report's figures and charts, and the latest weekly review."""
        # Imported here: matplotlib loads with the first KPI page, not with the API.
        from kruxt.starter.kpi_cli import counts_text, format_value, mark
        from kruxt.starter.kpi_html import CHART_TITLES, charts

        days = days if days in KPI_PERIODS else 7
        report = await ctx.queries.kpis(days)
        figures = [
            {
                "name": f.name,
                "value": format_value(f.value, f.unit),
                "target": f"{f.comparison.value} {format_value(f.target, f.unit)}"
                if f.comparison
                else "",
                "mark": mark(f),
                "css": {True: "met", False: "missed"}.get(f.met, "") if f.met is not None else "",
                "counts": counts_text(f),
            }
            for f in report.figures
        ]
        # Our own SVG, drawn from the figures: the one markup the page does not escape. Drawn
        # in a thread: matplotlib takes a while other requests should not wait for.
        drawn = [Markup(svg) for svg in await asyncio.to_thread(charts, report)]  # noqa: S704
        return page(
            request,
            user,
            "kpis.html",
            section="kpis",
            days=days,
            report=report,
            figures=figures,
            charts=list(zip(CHART_TITLES, drawn, strict=True)),
            review=await ctx.queries.latest_review(),
            headers={"Content-Security-Policy": CHART_CSP},
        )

    @router.get("/kpis/review", response_class=HTMLResponse)
    async def review(user: ConsoleUser, ctx: Ctx) -> HTMLResponse:
        """The latest weekly review, the page its mail carries (escaped when it was made)."""
        found = await ctx.queries.latest_review()
        if found is None:
            raise HTTPException(404, {"error": "not_found", "detail": "no weekly review yet"})
        headers = {**PAGE_HEADERS, "Content-Security-Policy": REVIEW_CSP}
        return HTMLResponse(found.html, headers=headers)

    return router
