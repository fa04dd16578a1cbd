"""``POST /slack/interactions``: Slack's button clicks and modal submissions for approvals.

Slack wants an answer within 3 seconds, so the endpoint verifies the signature over the
raw body first (nothing unverified is parsed), then answers at once: an Approve click
decides in a background task; Reject and "Triage wrong" open a modal (``views.open``
needs the click's ``trigger_id`` within those seconds anyway); a modal submission decides
within a short budget, so a refusal shows in the modal itself, and otherwise goes on in the
background. People who are not approvers, and refused decisions, get an ephemeral message
(through the interaction's ``response_url``). Every attempt is logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from kruxt.adapters import untrusted_json
from kruxt.adapters.approvers import Approver, ApproverDirectory
from kruxt.adapters.slack import (
    SlackApprovals,
    SlackError,
    SlackSignatureError,
    ids,
    post_to_response_url,
    verify_slack_request,
)
from kruxt.models.approvals import DecisionChannel, TriageCorrection, Verdict
from kruxt.models.enums import Category, Priority
from kruxt.starter.approvals import Decider, DecisionAttempt, DecisionRefusedError
from kruxt.starter.incidents import Acknowledger, NotAResponderError

__all__ = ["Responder", "SlackContext", "slack_router"]

log = logging.getLogger(__name__)

# views.open must use the click's trigger_id within 3 s of the click.
MODAL_BUDGET_S = 2.5
NOT_APPROVER = "You are not a configured approver, so nothing was decided."
UNAVAILABLE = (
    "Your decision could not be recorded right now; nothing changed. Try again in a minute."
)
MAX_REASON = 2000
MAX_VIEW_ERROR = 300


Responder = Callable[[str, str], Awaitable[None]]
"""Posts ``text`` ephemerally to an interaction's ``response_url``."""


@dataclass
class SlackContext:
    """What the Slack endpoint needs, built by the entrypoint (or by a test)."""

    signing_secret: str
    approvers: ApproverDirectory
    decider: Decider
    slack: SlackApprovals
    respond: Responder = post_to_response_url
    clock: Callable[[], float] = time.time
    # How long a modal submission waits for the decision before closing the modal anyway.
    view_budget_s: float = 2.0
    # Records a refused attempt in the audit log: (approval id, who, why).
    audit_refusal: Callable[[uuid.UUID, str, str], Coroutine[Any, Any, None]] | None = None
    # Incident pages carry an Acknowledge button; None: those clicks are ignored.
    incidents: Acknowledger | None = None
    # Records a refused Acknowledge click in the audit log: (incident id, who, why).
    audit_incident_refusal: Callable[[uuid.UUID, str, str], Coroutine[Any, Any, None]] | None = None
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``work`` after the answer to Slack; kept referenced until it ends."""
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for background work (at shutdown, or in a test)."""
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=timeout)


def slack_router(get_ctx: Callable[[Request], SlackContext]) -> APIRouter:
    """The router with ``POST /slack/interactions``; ``get_ctx`` finds the app's context."""
    router = APIRouter(tags=["slack"])

    @router.post(
        "/slack/interactions",
        responses={401: {"description": "bad or stale Slack signature"}},
    )
    async def slack_interactions(request: Request) -> Response:
        """Slack's interactivity callback: approval buttons and modals, signature-verified."""
        ctx = get_ctx(request)
        body = await request.body()
        try:
            verify_slack_request(
                signing_secret=ctx.signing_secret,
                headers=request.headers,
                body=body,
                now=ctx.clock(),
            )
        except SlackSignatureError as exc:
            log.warning("slack interaction refused: %s", exc.reason)
            return JSONResponse(
                status_code=401, content={"error": "invalid_signature", "detail": exc.reason}
            )
        try:
            payload = _parse_payload(body)
        except ValueError as exc:
            log.warning("slack interaction with a bad payload: %s", exc)
            return JSONResponse(
                status_code=400, content={"error": "invalid_payload", "detail": str(exc)}
            )
        kind = payload.get("type")
        if kind == "block_actions":
            return await _on_block_actions(ctx, payload)
        if kind == "view_submission":
            return await _on_view_submission(ctx, payload)
        log.info("slack interaction of type %s ignored", kind)
        return Response(status_code=200)

    return router


def _parse_payload(body: bytes) -> dict[str, Any]:
    try:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise ValueError("the body is not UTF-8") from None
    raw = form.get("payload")
    if not raw:
        raise ValueError("no payload field")
    try:
        payload = untrusted_json.loads(raw[0])
    except json.JSONDecodeError as exc:
        raise ValueError(f"payload is not JSON: {exc.msg}") from None
    except ValueError as exc:  # nested too deeply
        raise ValueError(f"payload is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ValueError("payload is not an object")
    return payload


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _user_id(payload: dict[str, Any]) -> str:
    user = payload.get("user")
    return str(user.get("id") or "") if isinstance(user, dict) else ""


async def _tell(ctx: SlackContext, *, response_url: str, user_id: str, text: str) -> None:
    """An ephemeral message to the person: via ``response_url``, else ``chat.postEphemeral``."""
    if response_url:
        try:
            await ctx.respond(response_url, text)
            return
        except Exception as exc:  # the message is a courtesy: log, try the other way
            log.warning("slack response_url post failed: %s: %s", type(exc).__name__, exc)
    if user_id:
        try:
            await ctx.slack.notify_user(user_id, text)
        except SlackError as exc:
            log.warning("slack ephemeral message to %s failed: %s", user_id, exc)


async def _decide(ctx: SlackContext, attempt: DecisionAttempt) -> str | None:
    """Decide; ``None`` when the decision stands, else what to tell the person."""
    what = f"slack {attempt.verdict} of approval {attempt.approval_id} by {attempt.approver_email}"
    try:
        outcome = await ctx.decider.decide(attempt)
    except DecisionRefusedError as exc:
        log.info("%s refused: %s", what, exc)
        return f"Not decided: {exc}"
    except Exception:  # Temporal down, a bug: the person must learn nothing happened
        log.exception("%s failed", what)
        return UNAVAILABLE
    log.info("%s: %s by %s", what, outcome.status, outcome.decided_by)
    return None


def _attempt(approval_id: uuid.UUID, email: str, user_id: str, verdict: Verdict) -> DecisionAttempt:
    """A decision from Slack: the clicking user is checked against the directory's entry."""
    return DecisionAttempt(
        approval_id=approval_id,
        approver_email=email,
        verdict=verdict,
        channel=DecisionChannel.SLACK,
        slack_user_id=user_id,
    )


async def _approve_in_background(
    ctx: SlackContext,
    *,
    approval_id: uuid.UUID,
    approver_email: str,
    user_id: str,
    response_url: str,
) -> None:
    message = await _decide(ctx, _attempt(approval_id, approver_email, user_id, Verdict.APPROVE))
    if message:
        await _tell(ctx, response_url=response_url, user_id=user_id, text=message)


NOT_RESPONDER = (
    "Only people on the escalation policy or the approvers list can acknowledge; "
    "use `kruxt incident ack` otherwise."
)


def _acknowledge_incident(
    ctx: SlackContext, action: dict[str, Any], *, user_id: str, response_url: str
) -> None:
    """The incident page's Acknowledge button: whoever is on call takes it; paging stops."""
    incident_id = _uuid(action.get("value"))
    if incident_id is None or ctx.incidents is None:
        ctx.spawn(_tell(ctx, response_url=response_url, user_id=user_id, text=NOT_RESPONDER))
        return
    person = ctx.approvers.by_slack_user(user_id)
    known = str(person.email) if person is not None else None
    ctx.spawn(
        _acknowledge(
            ctx, ctx.incidents, incident_id, known, user_id=user_id, response_url=response_url
        )
    )


async def _acknowledge(
    ctx: SlackContext,
    incidents: Acknowledger,
    incident_id: uuid.UUID,
    email: str | None,
    *,
    user_id: str,
    response_url: str,
) -> None:
    """Take the incident for the clicker: an approver by the directory's Slack id, anyone
    else by the e-mail Slack has for them (the on-call people of the escalation policy are
    listed by e-mail); a stranger is refused, told and audited."""
    email = email or await _member_email(ctx, user_id)
    text = NOT_RESPONDER
    refused: str | None = "no e-mail in Slack for this member"
    if email is not None:
        try:
            done = await incidents.acknowledge(incident_id, by=email, channel=DecisionChannel.SLACK)
            text, refused = f"Incident acknowledged by {done.by}: escalation stopped.", None
        except NotAResponderError as exc:
            refused = str(exc)
        except Exception as exc:  # refused (already taken) or unreachable: tell the person
            text, refused = f"Not acknowledged: {exc}", None
    await _tell(ctx, response_url=response_url, user_id=user_id, text=text)
    if refused is not None and ctx.audit_incident_refusal is not None:
        # Like a stranger's approval click: refused, and the attempt is on the record.
        await ctx.audit_incident_refusal(incident_id, f"slack:{user_id}", refused)


async def _member_email(ctx: SlackContext, user_id: str) -> str | None:
    """The clicker's e-mail in Slack, or None (unknown, a bot, no scope, Slack failing)."""
    try:
        return await ctx.slack.member_email(user_id)
    except SlackError as exc:
        log.warning("slack: no e-mail for %s (%s)", user_id, exc)
        return None


async def _on_block_actions(ctx: SlackContext, payload: dict[str, Any]) -> Response:
    user_id = _user_id(payload)
    response_url = str(payload.get("response_url") or "")
    actions = payload.get("actions")
    for action in actions if isinstance(actions, list) else []:
        if not isinstance(action, dict):
            continue
        action_id = action.get("action_id")
        if action_id == ids.ACTION_INCIDENT_ACK and ctx.incidents is not None:
            _acknowledge_incident(ctx, action, user_id=user_id, response_url=response_url)
            continue
        if action_id not in (ids.ACTION_APPROVE, ids.ACTION_REJECT, ids.ACTION_TRIAGE_WRONG):
            continue  # e.g. the "Open ticket" link button: Slack reports it, nothing to do
        approval_id = _uuid(action.get("value"))
        if approval_id is None:
            log.warning("slack %s by %s with a bad approval id %r", action_id, user_id, action)
            continue
        approver = _approver(ctx, user_id, approval_id, str(action_id))
        if approver is None:
            ctx.spawn(_tell(ctx, response_url=response_url, user_id=user_id, text=NOT_APPROVER))
            continue
        email = str(approver.email)
        log.info("slack %s of approval %s by %s (%s)", action_id, approval_id, email, user_id)
        if action_id == ids.ACTION_APPROVE:
            ctx.spawn(
                _approve_in_background(
                    ctx,
                    approval_id=approval_id,
                    approver_email=email,
                    user_id=user_id,
                    response_url=response_url,
                )
            )
            continue
        kind: ids.ModalKind = "reject" if action_id == ids.ACTION_REJECT else "triage_wrong"
        trigger_id = str(payload.get("trigger_id") or "")
        try:
            await asyncio.wait_for(
                ctx.slack.open_reason_modal(trigger_id, approval_id, kind=kind),
                timeout=MODAL_BUDGET_S,
            )
        except (SlackError, TimeoutError) as exc:
            log.warning("slack %s modal for approval %s not opened: %s", kind, approval_id, exc)
            ctx.spawn(
                _tell(
                    ctx,
                    response_url=response_url,
                    user_id=user_id,
                    text="The form could not be opened; nothing was decided. Tap the button again.",
                )
            )
    return Response(status_code=200)


def _state_value(values: dict[str, Any], block_id: str, action_id: str) -> dict[str, Any]:
    block = values.get(block_id)
    element = block.get(action_id) if isinstance(block, dict) else None
    return element if isinstance(element, dict) else {}


def _typed(values: dict[str, Any], block_id: str, action_id: str) -> str:
    return str(_state_value(values, block_id, action_id).get("value") or "").strip()


def _selected(values: dict[str, Any], block_id: str, action_id: str) -> str:
    option = _state_value(values, block_id, action_id).get("selected_option")
    return str(option.get("value") or "") if isinstance(option, dict) else ""


def _view_errors(errors: dict[str, str]) -> JSONResponse:
    """Slack shows these under the modal's input blocks, and keeps the modal open."""
    clipped = {block: text[:MAX_VIEW_ERROR] for block, text in errors.items()}
    return JSONResponse(content={"response_action": "errors", "errors": clipped})


def _approver(
    ctx: SlackContext, user_id: str, approval_id: uuid.UUID, what: str
) -> Approver | None:
    """The approver a Slack user is; a stranger's attempt is refused: logged and audited."""
    approver = ctx.approvers.by_slack_user(user_id)
    if approver is None:
        log.warning(
            "slack %s of approval %s by unknown Slack user %s: refused", what, approval_id, user_id
        )
        _audit_stranger(ctx, approval_id, user_id, what)
    return approver


def _audit_stranger(ctx: SlackContext, approval_id: uuid.UUID, user_id: str, what: str) -> None:
    """A decision attempt by someone who is not an approver is refused, and audited."""
    if ctx.audit_refusal is not None:
        ctx.spawn(
            ctx.audit_refusal(approval_id, f"slack:{user_id}", f"{what}: not a configured approver")
        )


async def _on_view_submission(ctx: SlackContext, payload: dict[str, Any]) -> Response:
    view = payload.get("view")
    view = view if isinstance(view, dict) else {}
    callback_id = view.get("callback_id")
    if callback_id not in (ids.VIEW_REJECT, ids.VIEW_TRIAGE_WRONG):
        log.info("slack view_submission %s ignored", callback_id)
        return Response(status_code=200)
    error_block = ids.REASON_BLOCK if callback_id == ids.VIEW_REJECT else ids.NOTE_BLOCK
    user_id = _user_id(payload)
    approval_id = _uuid(view.get("private_metadata"))
    if approval_id is None:
        log.warning("slack %s by %s without an approval id", callback_id, user_id)
        return _view_errors({error_block: "This form is no longer valid; nothing was decided."})
    approver = _approver(ctx, user_id, approval_id, str(callback_id))
    if approver is None:
        return _view_errors({error_block: NOT_APPROVER})
    state = view.get("state")
    values = state.get("values") if isinstance(state, dict) else None
    values = values if isinstance(values, dict) else {}

    correction: TriageCorrection | None = None
    if callback_id == ids.VIEW_REJECT:
        reason = _typed(values, ids.REASON_BLOCK, ids.REASON_ACTION)[:MAX_REASON]
        if not reason:
            return _view_errors({ids.REASON_BLOCK: "A reason is required"})
    else:
        category = _selected(values, ids.CATEGORY_BLOCK, ids.CATEGORY_ACTION)
        severity = _selected(values, ids.SEVERITY_BLOCK, ids.SEVERITY_ACTION)
        note = _typed(values, ids.NOTE_BLOCK, ids.NOTE_ACTION)[:MAX_REASON]
        if not (category or severity or note):
            return _view_errors(
                {ids.NOTE_BLOCK: "Pick the right category or severity, or say what was wrong"}
            )
        try:
            correction = TriageCorrection(
                category=Category(category) if category else None,
                severity=Priority(severity) if severity else None,
            )
        except ValueError:
            return _view_errors({ids.CATEGORY_BLOCK: "Unknown category or severity"})
        # The plan was built from a wrong triage: it is rejected, the correction recorded.
        reason = f"triage wrong: {note or _describe(correction)}"

    email = str(approver.email)
    log.info(
        "slack %s of approval %s by %s (%s): %s", callback_id, approval_id, email, user_id, reason
    )
    attempt = _attempt(approval_id, email, user_id, Verdict.REJECT).model_copy(
        update={"reason": reason, "correction": correction}
    )
    decision = ctx.spawn(_decide(ctx, attempt))
    done, _ = await asyncio.wait({decision}, timeout=ctx.view_budget_s)
    if decision in done:
        message = decision.result()
        return _view_errors({error_block: message}) if message else Response(status_code=200)
    # Slow (Temporal busy): close the modal now; a refusal still reaches the person.
    ctx.spawn(_report_late(ctx, decision, user_id=user_id))
    return Response(status_code=200)


async def _report_late(ctx: SlackContext, decision: asyncio.Task[Any], *, user_id: str) -> None:
    message = await decision
    if message:
        await _tell(ctx, response_url="", user_id=user_id, text=str(message))


def _describe(correction: TriageCorrection) -> str:
    parts = []
    if correction.category is not None:
        parts.append(f"category should be {correction.category.value}")
    if correction.severity is not None:
        parts.append(f"severity should be {correction.severity.value}")
    return ", ".join(parts)
