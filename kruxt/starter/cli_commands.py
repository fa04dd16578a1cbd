"""The ``kruxt`` commands that connect to the stack: tickets, approvals, playbook runs,
KPIs, the audit trail. :mod:`kruxt.starter.cli` imports this module only to run one.

An id may be written whole or as its first characters (:mod:`kruxt.starter.cli_ids`).
Staff actions name their author with ``--as``, who must be in the approvers directory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
from pydantic import ValidationError
from temporalio.service import RPCError

from kruxt.adapters.approvers import ApproverDirectory, ApproversError
from kruxt.adapters.postgres import audit
from kruxt.adapters.postgres.approvals import ApprovalStore
from kruxt.adapters.postgres.defects import DefectStore
from kruxt.adapters.postgres.migrations import MigrationError
from kruxt.adapters.postgres.playbook_runs import PlaybookRunStore
from kruxt.adapters.postgres.pool import connect as pg_connect
from kruxt.adapters.postgres.pool import create_pool
from kruxt.adapters.postgres.references import Kind
from kruxt.adapters.postgres.ticket_history import staff_changes
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.adapters.settings import Settings
from kruxt.adapters.temporal_client import TemporalUnavailableError
from kruxt.bootstrap import Connections
from kruxt.models.approvals import DecisionChannel, TriageCorrection, Verdict
from kruxt.models.enums import Category, Channel, Priority, TicketStatus
from kruxt.models.text import require_storable
from kruxt.models.tickets import Requester, TicketView
from kruxt.starter import render
from kruxt.starter.approvals import (
    ApprovalService,
    DecisionAttempt,
    DecisionRefusedError,
    os_user,
)
from kruxt.starter.cli import EXIT_FAILURE, EXIT_USAGE, CliError
from kruxt.starter.cli_ids import resolve_id
from kruxt.starter.intake import (
    IntakeService,
    TicketClosedError,
    UnknownTicketError,
    intake_from,
)
from kruxt.starter.staff import StaffService, TicketAlreadySolvedError

__all__ = ["dispatch", "run", "staff_member"]

T = TypeVar("T")

UNREACHABLE_POSTGRES = (
    "cannot reach PostgreSQL: {exc}\n  is the stack running? start it with `make run`, "
    "or set DATABASE_URL"
)


def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    """Run a command that connects to the stack; returns the exit code."""
    match args.command:
        case "migrate":
            return run(_migrate(args, settings))
        case "ticket":
            handlers: dict[str, Command] = {
                "new": _ticket_new,
                "show": _ticket_show,
                "list": _ticket_list,
                "resolve": _ticket_resolve,
                "priority": _ticket_priority,
                "assign": _ticket_assign,
            }
            return run(_connected(handlers[args.ticket_command], args, settings))
        case "approvals":
            command = _approvals_list if args.approvals_command == "list" else _approvals_decide
            return run(_connected(command, args, settings))
        case "playbook":
            return run(_connected(_playbook_rollback, args, settings))
        case "eval":
            from kruxt.starter.eval_cli import export_corrections

            return run(export_corrections(args, settings))
        case "simulate":
            from kruxt.starter.simulate import run_simulate  # the LLM client: only here

            return run(run_simulate(args, settings))
        case "incident":
            from kruxt.starter.incident_cli import run_incident

            return run(run_incident(args, settings))
        case "kpi":
            return run(_connected(_kpi, args, settings))
        case "review" | "schedules":
            from kruxt.starter.review_cli import run_review, run_schedules

            command = run_review if args.command == "review" else run_schedules
            return run(_connected(command, args, settings))
        case "audit" if args.audit_command == "anchor":
            return run(_connected(_audit_anchor, args, settings))
        case "audit":
            return run(_connected(_audit_verify, args, settings))
    raise CliError(f"unknown command {args.command}", EXIT_USAGE)


def run(coro: Awaitable[T]) -> T:
    """Run a coroutine, turning unreachable services into one clear line."""
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except TemporalUnavailableError as exc:
        raise CliError(f"{exc}\n  is the stack running? start it with `make run`") from exc
    except RPCError as exc:
        raise CliError(f"Temporal refused the call: {exc.message}") from exc
    except BrokenPipeError:
        raise  # the reader of stdout went away: kruxt.starter.cli stops quietly
    except (asyncpg.PostgresConnectionError, asyncpg.InvalidCatalogNameError) as exc:
        raise CliError(UNREACHABLE_POSTGRES.format(exc=exc)) from exc
    except OSError as exc:
        # Not a connection failure (those are raised where the connection is made): a file.
        raise CliError(str(exc)) from exc


class _Connections(Connections):
    """The CLI's connections: a database that cannot be reached is said so, at the one place
    where that is known (connecting), not guessed from any OSError later."""

    async def pool(self) -> asyncpg.Pool[Any]:
        try:
            return await super().pool()
        except (OSError, asyncpg.PostgresConnectionError, asyncpg.InvalidCatalogNameError) as exc:
            raise CliError(UNREACHABLE_POSTGRES.format(exc=exc)) from exc


def staff_member(directory: ApproverDirectory, actor: str) -> str:
    """``actor`` (from ``--as``) as the directory spells it; anyone else is refused, with who
    is known, before anything is sent."""
    member = directory.by_email(actor)
    if member is not None:
        return str(member.email)
    known = ", ".join(sorted(str(a.email) for a in directory.approvers)) or (
        "nobody: set KRUXT_APPROVERS or KRUXT_APPROVERS_FILE"
    )
    raise CliError(
        f"--as {actor!r} is not in the approvers directory; staff actions are taken as one of: "
        f"{known}",
        EXIT_USAGE,
    )


async def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from kruxt.adapters.app_db import install_app_schema
    from kruxt.adapters.postgres import migrations
    from kruxt.adapters.postgres.knowledge import index_knowledge

    if args.app:
        if settings.app_database_url is None:
            raise CliError("--app needs APP_DATABASE_URL (the KRUXT app database)", EXIT_USAGE)
        conn = await _connect(settings.app_database_url.get_secret_value())
        try:
            applied = await install_app_schema(conn, with_demo_data=False)
        finally:
            await conn.close()
        print(f"app: {len(applied)} migrations applied" if applied else "app: up to date")
        return 0
    dsn = settings.require_migrate_database_url()  # the owner role
    conn = await _connect(dsn)
    try:
        if settings.runtime_db_password is not None:
            await migrations.ensure_runtime_role(
                conn, settings.runtime_db_password.get_secret_value()
            )
        applied = await migrations.apply(conn, settings.migrations_dir)
    except MigrationError as exc:
        raise CliError(str(exc)) from exc
    except asyncpg.InsufficientPrivilegeError as exc:
        raise CliError(
            f"{exc}: migrations run as the owner of the support tables; set "
            "KRUXT_MIGRATE_DATABASE_URL to its URL (DATABASE_URL is the runtime role's)"
        ) from exc
    finally:
        await conn.close()
    if applied:
        for m in applied:
            print(f"applied {m.version:03d}_{m.name}")
    else:
        print("schema is up to date")
    pool = await create_pool(dsn, max_size=1)
    try:
        synced = await index_knowledge(pool, settings.knowledge_dir)
    finally:
        await pool.close()
    print(f"knowledge index: {synced}")
    return 0


async def _connect(dsn: str) -> asyncpg.Connection[Any]:
    try:
        return await pg_connect(dsn)
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.InvalidCatalogNameError) as exc:
        raise CliError(UNREACHABLE_POSTGRES.format(exc=exc)) from exc


Command = Callable[[argparse.Namespace, Connections], Awaitable[int]]
"""A command's work, on the connections ``kruxt.bootstrap`` makes for it."""


async def _connected(command: Command, args: argparse.Namespace, settings: Settings) -> int:
    """Run ``command`` with what it connects to, each part opened on first use, then closed."""
    async with _Connections(settings) as parts:
        return await command(args, parts)


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
    deadline = time.monotonic() + timeout
    print("waiting for triage", end="", flush=True, file=sys.stderr)
    try:
        while time.monotonic() < deadline:
            view = await store.get(ticket_id)
            if view is not None and view.status not in (TicketStatus.NEW, TicketStatus.TRIAGED):
                return view
            print(".", end="", flush=True, file=sys.stderr)
            await asyncio.sleep(0.5)
        return None
    finally:
        print(file=sys.stderr)


async def _ticket_show(args: argparse.Namespace, parts: Connections) -> int:
    ticket_id = await resolve_id(args.ticket_id, Kind.TICKET, parts.pool)
    view = await TicketStore(await parts.pool()).get(ticket_id)
    if view is None:
        raise CliError(f"no ticket {ticket_id}")
    # The stored ticket is worth showing even when Temporal (with the SLA clocks) is away.
    with contextlib.suppress(TemporalUnavailableError):
        view = await (await _intake(parts)).with_live_state(view)
    issue = await DefectStore(await parts.pool()).issue_of(ticket_id)
    changes = await staff_changes(await parts.pool(), ticket_id)
    print(view.model_dump_json(indent=2) if args.json else render.ticket(view, issue, changes))
    return 0


async def _ticket_list(args: argparse.Namespace, parts: Connections) -> int:
    if args.limit < 1:
        raise CliError("--limit must be at least 1", EXIT_USAGE)
    status = TicketStatus(args.status) if args.status else None
    rows = await TicketStore(await parts.pool()).list(status=status, limit=args.limit)
    print(render.ticket_table(rows))
    return 0


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


async def _approval_service(parts: Connections) -> ApprovalService:
    store = ApprovalStore(await parts.pool())
    client = await parts.client()
    try:
        approvers = parts.approvers()
    except ApproversError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    return ApprovalService(client, approvers=approvers, store=store)


async def _approvals_list(args: argparse.Namespace, parts: Connections) -> int:
    pending = await ApprovalStore(await parts.pool()).pending()
    print(render.approvals_table(pending, now=datetime.now(UTC)))
    return 0


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


async def _kpi(args: argparse.Namespace, parts: Connections) -> int:
    from kruxt.starter.kpi_cli import run_kpi

    try:
        text = await run_kpi(args, await parts.pool())
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    if args.out is None:
        print(text)
    else:
        args.out.write_text(text + "\n", encoding="utf-8")
        print(f"KPI report written to {args.out}")
    return 0


async def _audit_verify(args: argparse.Namespace, parts: Connections) -> int:
    keyring = parts.settings.require_audit_keyring()
    anchors_file = parts.settings.audit_anchors_path
    async with (await parts.pool()).acquire() as conn:
        result = await audit.verify(conn, keyring=keyring)
        anchors = await audit.verify_anchors(conn, anchors_file, keyring=keyring)
    if not result.intact:
        print(
            f"audit chain BROKEN at row {result.first_bad_id}: {result.problem} "
            f"({result.rows_checked} rows read)",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    if not anchors.intact:
        print(
            f"audit chain BROKEN at row {anchors.first_bad_id}: {anchors.problem}", file=sys.stderr
        )
        return EXIT_FAILURE
    print(
        f"audit chain intact: {result.rows_checked} rows verified, "
        f"{anchors.rows_checked} anchors in {anchors_file} match"
    )
    return 0


async def _audit_anchor(args: argparse.Namespace, parts: Connections) -> int:
    keyring = parts.settings.require_audit_keyring()
    path = parts.settings.audit_anchors_path
    async with (await parts.pool()).acquire() as conn:
        anchor = await audit.write_anchor(conn, path, keyring=keyring)
    print(f"anchored row {anchor.row_id} ({anchor.hash[:16]}...) in {path}")
    return 0
