"""The ``kruxt`` commands that act through a workflow: open a ticket, take a staff action on
one, decide an approval, roll a playbook run back.

They load Temporal and the workflows' code, which reading a ticket does not need:
:mod:`kruxt.starter.cli_commands` imports this module only to run one of them. Staff actions
name their author with ``--as``, who must be in the approvers directory.
"""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

from pydantic import ValidationError

from kruxt.adapters.approvers import ApproverDirectory, ApproversError
from kruxt.adapters.postgres.approvals import ApprovalStore
from kruxt.adapters.postgres.playbook_runs import PlaybookRunStore
from kruxt.adapters.postgres.references import Kind
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.models.approvals import DecisionChannel, TriageCorrection, Verdict
from kruxt.models.enums import Category, Channel, Priority, TicketStatus
from kruxt.models.text import require_storable
from kruxt.models.tickets import Requester, TicketView
from kruxt.starter import render
from kruxt.starter.approvals import (
    ApprovalService,
    DecisionAttempt,
    DecisionRefusedError,
    UnknownStaffError,
    directory_member,
    os_user,
)
from kruxt.starter.cli import EXIT_USAGE, CliError
from kruxt.starter.cli_ids import resolve_id
from kruxt.starter.intake import (
    IntakeService,
    TicketClosedError,
    UnknownTicketError,
    intake_from,
)
from kruxt.starter.staff import StaffService, TicketAlreadySolvedError
from kruxt.starter.waiting import until_found

if TYPE_CHECKING:
    import argparse

    from kruxt.starter.cli_connections import Command, Connections

__all__ = ["action", "staff_member"]


def action(args: argparse.Namespace) -> Command:
    """The command ``args`` name: ``ticket new|resolve|priority|assign``, ``approvals
    decide`` or ``playbook rollback``."""
    match args.command:
        case "ticket":
            return _TICKET_ACTIONS[args.ticket_command]
        case "approvals":
            return _approvals_decide
    return _playbook_rollback


def staff_member(directory: ApproverDirectory, actor: str) -> str:
    """``actor`` (from ``--as``) as the directory spells it; anyone else is refused, with who
    is known, before anything is sent."""
    try:
        return str(directory_member(directory, actor).email)
    except UnknownStaffError as exc:
        raise CliError(f"--as {exc}", EXIT_USAGE) from exc


async def _intake(parts: Connections) -> IntakeService:
    return intake_from(await parts.client(), parts.settings)


async def _staff_action(
    args: argparse.Namespace, parts: Connections
) -> tuple[uuid.UUID, str, StaffService]:
    """A staff action's ticket, its author (checked against the directory) and the service."""
    try:
        actor = staff_member(parts.approvers(), args.actor)
    except ApproversError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    ticket_id = await resolve_id(args.ticket_id, Kind.TICKET, parts.pool)
    return ticket_id, actor, StaffService(await parts.client())


async def _ticket_new(args: argparse.Namespace, parts: Connections) -> int:
    # Before the Requester model, whose own errors would blame the e-mail for a bad name.
    require_storable({"requester.email": args.email, "requester.name": args.name})
    try:
        requester = Requester(id=args.email, email=args.email, name=args.name)
    except ValidationError as exc:
        raise CliError(f"invalid --email {args.email!r}", EXIT_USAGE) from exc
    if not args.subject.strip() or not args.body.strip():
        raise CliError("--subject and --body must not be empty", EXIT_USAGE)
    intake = await _intake(parts)
    accepted = await intake.open_ticket(
        channel=Channel.CLI,
        external_id=args.external_id or str(uuid.uuid4()),
        requester=requester,
        account_id=args.account,
        subject=args.subject,
        body=args.body,
    )
    print(f"ticket {accepted.ticket_id} accepted (workflow {accepted.workflow_id})")
    if args.no_wait:
        return 0
    view = await _wait_for_triage(TicketStore(await parts.pool()), accepted.ticket_id)
    if view is None:
        print("triage is still running; check later with `kruxt ticket show ID`")
        return 0
    print(render.ticket(await intake.with_live_state(view)))
    return 0


async def _wait_for_triage(
    store: TicketStore, ticket_id: uuid.UUID, timeout: float = 30.0
) -> TicketView | None:
    async def routed() -> TicketView | None:
        view = await store.get(ticket_id)
        if view is not None and view.status not in (TicketStatus.NEW, TicketStatus.TRIAGED):
            return view
        print(".", end="", flush=True, file=sys.stderr)
        return None

    print("waiting for triage", end="", flush=True, file=sys.stderr)
    try:
        return await until_found(routed, within=timeout, every=0.5)
    finally:
        print(file=sys.stderr)


@contextlib.contextmanager
def _ticket_errors(ticket_id: uuid.UUID, *, closed: str = "is resolved") -> Iterator[None]:
    """A staff action's refusals as the CLI's one-line failures."""
    try:
        yield
    except UnknownTicketError as exc:
        raise CliError(f"no ticket {ticket_id}") from exc
    except TicketClosedError as exc:
        raise CliError(f"ticket {ticket_id} {closed}") from exc
    except TicketAlreadySolvedError as exc:
        raise CliError(f"ticket {ticket_id} {exc}") from exc


async def _ticket_resolve(args: argparse.Namespace, parts: Connections) -> int:
    ticket_id, actor, staff = await _staff_action(args, parts)
    with _ticket_errors(ticket_id, closed="is already resolved"):
        await staff.resolve(
            ticket_id=ticket_id,
            actor=actor,
            note=args.note,
            defect=args.defect,
            prevention=args.prevention,
        )
    print(f"ticket {ticket_id}: resolve sent")
    return 0


async def _ticket_assign(args: argparse.Namespace, parts: Connections) -> int:
    ticket_id, actor, staff = await _staff_action(args, parts)
    with _ticket_errors(ticket_id):
        try:
            await staff.reassign(ticket_id=ticket_id, assignee=args.assignee, actor=actor)
        except ValidationError as exc:
            raise CliError(
                f"invalid --to {args.assignee!r}: give the new owner's e-mail address, "
                "e.g. sam@kruxt.app",
                EXIT_USAGE,
            ) from exc
    print(f"ticket {ticket_id}: assigned to {args.assignee}")
    return 0


async def _ticket_priority(args: argparse.Namespace, parts: Connections) -> int:
    ticket_id, actor, staff = await _staff_action(args, parts)
    with _ticket_errors(ticket_id):
        await staff.change_priority(
            ticket_id=ticket_id,
            priority=Priority(args.priority),
            actor=actor,
            reason=args.reason,
        )
    print(f"ticket {ticket_id}: priority {args.priority} sent (SLA deadlines recomputed)")
    return 0


_TICKET_ACTIONS: dict[str, Command] = {
    "new": _ticket_new,
    "resolve": _ticket_resolve,
    "priority": _ticket_priority,
    "assign": _ticket_assign,
}


async def _approval_service(parts: Connections) -> ApprovalService:
    store = ApprovalStore(await parts.pool())
    client = await parts.client()
    try:
        approvers = parts.approvers()
    except ApproversError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    return ApprovalService(client, approvers=approvers, store=store)


async def _approvals_decide(args: argparse.Namespace, parts: Connections) -> int:
    approval_id = await resolve_id(args.approval_id, Kind.APPROVAL, parts.pool)
    correction = (
        TriageCorrection(
            category=Category(args.category) if args.category else None,
            severity=Priority(args.severity) if args.severity else None,
        )
        if args.category or args.severity
        else None
    )
    try:
        service = await _approval_service(parts)
        attempt = DecisionAttempt(
            approval_id=approval_id,
            approver_email=args.actor,
            verdict=Verdict(args.verdict),
            channel=DecisionChannel.CLI,
            reason=args.reason,
            correction=correction,
            os_user=os_user(),
        )
        outcome = await service.decide(attempt)
    except DecisionRefusedError as exc:
        raise CliError(f"decision refused: {exc}") from exc
    print(f"approval {approval_id}: {outcome.status.value} by {outcome.decided_by}")
    return 0


async def _playbook_rollback(args: argparse.Namespace, parts: Connections) -> int:
    run_id = await resolve_id(args.run_id, Kind.RUN, parts.pool)
    try:
        run = await PlaybookRunStore(await parts.pool()).get_run(run_id)
        if run is None:
            raise CliError(f"no playbook run {run_id}")
        ticket_id = run.ticket_id
        service = await _approval_service(parts)
        approval_id = await service.request_rollback(
            ticket_id=ticket_id,
            run_id=run_id,
            actor=args.actor,
            reason=args.reason,
            channel=DecisionChannel.CLI,
            os_user=os_user(),
        )
    except DecisionRefusedError as exc:
        raise CliError(f"rollback refused: {exc}") from exc
    print(
        f"rollback of run {run_id} requested: approval {approval_id}\n"
        f"  an approver decides it with: kruxt approvals decide {approval_id} approve --as EMAIL"
    )
    return 0
