"""The ``kruxt`` command line: run the services, operate tickets, check the audit trail."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
from pydantic import ValidationError
from temporalio.service import RPCError

from kruxt.adapters.approvers import ApproversError
from kruxt.adapters.postgres import audit
from kruxt.adapters.postgres.approvals import ApprovalStore
from kruxt.adapters.postgres.migrations import MigrationError
from kruxt.adapters.postgres.playbook_runs import PlaybookRunStore
from kruxt.adapters.postgres.pool import connect as pg_connect
from kruxt.adapters.postgres.pool import create_pool
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.adapters.settings import ConfigurationError, Settings, load_settings
from kruxt.adapters.temporal_client import TemporalUnavailableError
from kruxt.bootstrap import approvers_from, temporal_from
from kruxt.models.approvals import DecisionChannel, TriageCorrection, Verdict
from kruxt.models.enums import Category, Channel, Priority, TicketStatus
from kruxt.models.text import UnstorableTextError, require_storable
from kruxt.models.tickets import Requester, TicketView
from kruxt.starter import render
from kruxt.starter.approvals import ApprovalService, DecisionRefusedError, os_user
from kruxt.starter.eval_cli import add_eval_parser, run_eval
from kruxt.starter.incident_cli import add_incident_parser, run_incident
from kruxt.starter.intake import (
    IntakeService,
    TicketClosedError,
    UnknownTicketError,
    intake_from,
)
from kruxt.starter.staff import StaffService

T = TypeVar("T")

EXIT_FAILURE = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A failure the user can act on; printed without a traceback."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


def build_parser() -> argparse.ArgumentParser:
    """The CLI's grammar."""
    parser = argparse.ArgumentParser(
        prog="kruxt", description="KRUXT Support Autopilot: durable, human-approved support."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("dev", help="run the whole embedded stack (Temporal, Postgres, worker, API)")
    sub.add_parser("worker", help="run a worker on the task queue")
    sub.add_parser("api", help="serve the HTTP API")
    migrate = sub.add_parser("migrate", help="apply the SQL migrations and index knowledge/")
    migrate.add_argument(
        "--app",
        action="store_true",
        help="install the kruxt_admin functions into APP_DATABASE_URL (no demo data)",
    )

    ticket = sub.add_parser("ticket", help="open, show, list and resolve tickets").add_subparsers(
        dest="ticket_command", required=True, metavar="ACTION"
    )
    new = ticket.add_parser("new", help="open a ticket and wait for its triage")
    new.add_argument("--email", required=True, help="requester's email")
    new.add_argument("--subject", required=True)
    new.add_argument("--body", required=True)
    new.add_argument("--name", default="", help="requester's name")
    new.add_argument("--account", default=None, help="the KRUXT account id, if known")
    new.add_argument("--external-id", default=None, help="dedupe key (default: a new uuid)")
    new.add_argument("--no-wait", action="store_true", help="return without waiting for triage")
    show = ticket.add_parser("show", help="a ticket with its messages and triage")
    show.add_argument("ticket_id", metavar="ID")
    show.add_argument("--json", action="store_true", help="print JSON")
    lst = ticket.add_parser("list", help="the newest tickets")
    lst.add_argument("--status", choices=[s.value for s in TicketStatus])
    lst.add_argument("--limit", type=int, default=20)
    priority = ticket.add_parser("priority", help="change a ticket's priority (SLA recomputed)")
    priority.add_argument("ticket_id", metavar="ID")
    priority.add_argument("priority", choices=[p.value for p in Priority])
    priority.add_argument("--as", dest="actor", required=True, help="your staff email")
    priority.add_argument("--reason", default="")
    assign = ticket.add_parser("assign", help="give a ticket to someone on the support team")
    assign.add_argument("ticket_id", metavar="ID")
    assign.add_argument("--to", dest="assignee", required=True, help="the new owner's email")
    assign.add_argument("--as", dest="actor", required=True, help="your staff email")
    resolve = ticket.add_parser("resolve", help="resolve a ticket as a staff member")
    resolve.add_argument("ticket_id", metavar="ID")
    resolve.add_argument("--as", dest="actor", required=True, help="your staff email")
    resolve.add_argument("--note", default="")

    approvals = sub.add_parser("approvals", help="pending approvals and decisions").add_subparsers(
        dest="approvals_command", required=True, metavar="ACTION"
    )
    approvals.add_parser("list", help="pending approvals, with age and deadline")
    decide = approvals.add_parser("decide", help="approve or reject as a configured approver")
    decide.add_argument("approval_id", metavar="ID")
    decide.add_argument("verdict", choices=[v.value for v in Verdict])
    decide.add_argument("--as", dest="actor", required=True, help="your approver e-mail")
    decide.add_argument("--reason", default="")
    decide.add_argument("--category", choices=[c.value for c in Category], help="triage was wrong")
    decide.add_argument("--severity", choices=[p.value for p in Priority], help="triage was wrong")

    playbook = sub.add_parser("playbook", help="playbook runs").add_subparsers(
        dest="playbook_command", required=True, metavar="ACTION"
    )
    rollback = playbook.add_parser("rollback", help="request the rollback of a completed run")
    rollback.add_argument("run_id", metavar="RUN_ID")
    rollback.add_argument("--as", dest="actor", required=True, help="your staff e-mail")
    rollback.add_argument("--reason", default="")

    add_eval_parser(sub)
    add_incident_parser(sub)
    kpi = sub.add_parser("kpi", help="support KPIs: acceptance rate, response times, SLAs")
    kpi.add_argument("--days", type=int, default=7)

    audit_cmd = sub.add_parser("audit", help="the audit trail").add_subparsers(
        dest="audit_command", required=True, metavar="ACTION"
    )
    audit_cmd.add_parser(
        "verify", help="walk the keyed hash chain and check its anchors; non-zero exit if broken"
    )
    audit_cmd.add_parser("anchor", help="append the signed chain head to the anchor file now")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``kruxt``; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        return _dispatch(args, settings)
    except CliError as exc:
        print(f"kruxt: {exc}", file=sys.stderr)
        return exc.code
    except ConfigurationError as exc:
        print(f"kruxt: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValidationError as exc:
        print(f"kruxt: invalid configuration or input:\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    except UnstorableTextError as exc:
        # Refused before anything was started or signalled.
        print(f"kruxt: refused {exc.field}: {exc.reason}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    from kruxt.adapters.telemetry import configure_logging, configure_tracing

    match args.command:
        case "dev":
            from kruxt.starter.dev import run_dev

            configure_logging(settings.log_level, json_lines=False)
            # The stack reads the real environment only: .kruxt/dev.env describes the stack a
            # previous `kruxt dev` started, which is what this one replaces.
            return run_dev(Settings())
        case "worker":
            from kruxt.workers.main import run_worker

            configure_logging(settings.log_level)
            configure_tracing("kruxt-worker", settings.otlp_endpoint)
            _run(run_worker(settings), settings)
            return 0
        case "api":
            from kruxt.starter.api.main import run_api

            configure_logging(settings.log_level)
            configure_tracing("kruxt-api", settings.otlp_endpoint)
            settings.require_intake_token()
            settings.require_database_url()
            settings.require_audit_keyring()
            run_api(settings)
            return 0
        case "migrate":
            return _run(_migrate(args, settings), settings)
        case "ticket":
            handlers: dict[str, Callable[[argparse.Namespace, Settings], Awaitable[int]]] = {
                "new": _ticket_new,
                "show": _ticket_show,
                "list": _ticket_list,
                "resolve": _ticket_resolve,
                "priority": _ticket_priority,
                "assign": _ticket_assign,
            }
            return _run(handlers[args.ticket_command](args, settings), settings)
        case "approvals":
            if args.approvals_command == "list":
                return _run(_approvals_list(settings), settings)
            return _run(_approvals_decide(args, settings), settings)
        case "playbook":
            return _run(_playbook_rollback(args, settings), settings)
        case "eval":
            return run_eval(args)
        case "incident":
            return _run(run_incident(args, settings), settings)
        case "kpi":
            return _run(_kpi(args, settings), settings)
        case "audit" if args.audit_command == "anchor":
            return _run(_audit_anchor(settings), settings)
        case "audit":
            return _run(_audit_verify(settings), settings)
    raise CliError(f"unknown command {args.command}", EXIT_USAGE)


def _run(coro: Awaitable[T], settings: Settings) -> T:
    """Run a coroutine, turning unreachable services into one clear line."""
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except TemporalUnavailableError as exc:
        raise CliError(f"{exc}\n  is the stack running? start it with `make run`") from exc
    except RPCError as exc:
        raise CliError(f"Temporal refused the call: {exc.message}") from exc
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.InvalidCatalogNameError) as exc:
        raise CliError(
            f"cannot reach PostgreSQL: {exc}\n  is the stack running? start it with `make run`, "
            "or set DATABASE_URL"
        ) from exc


def _parse_uuid(raw: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        raise CliError(f"not a {what}: {raw!r} (expected a UUID)", EXIT_USAGE) from exc


def _parse_ticket_id(raw: str) -> uuid.UUID:
    return _parse_uuid(raw, "ticket id")


async def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from kruxt.adapters.app_db import install_app_schema
    from kruxt.adapters.postgres import migrations
    from kruxt.adapters.postgres.knowledge import index_knowledge

    if args.app:
        if settings.app_database_url is None:
            raise CliError("--app needs APP_DATABASE_URL (the KRUXT app database)", EXIT_USAGE)
        conn = await pg_connect(settings.app_database_url.get_secret_value())
        try:
            applied = await install_app_schema(conn, with_demo_data=False)
        finally:
            await conn.close()
        print(f"app: {len(applied)} migrations applied" if applied else "app: up to date")
        return 0
    dsn = settings.require_migrate_database_url()  # the owner role
    conn = await pg_connect(dsn)
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


async def _intake(settings: Settings) -> IntakeService:
    return intake_from(await temporal_from(settings), settings)


async def _staff(settings: Settings) -> StaffService:
    return StaffService(await temporal_from(settings))


async def _ticket_new(args: argparse.Namespace, settings: Settings) -> int:
    # Before the Requester model, whose own errors would blame the e-mail for a bad name.
    require_storable({"requester.email": args.email, "requester.name": args.name})
    try:
        requester = Requester(id=args.email, email=args.email, name=args.name)
    except ValidationError as exc:
        raise CliError(f"invalid --email {args.email!r}", EXIT_USAGE) from exc
    if not args.subject.strip() or not args.body.strip():
        raise CliError("--subject and --body must not be empty", EXIT_USAGE)
    intake = await _intake(settings)
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
    pool = await create_pool(settings.require_database_url(), max_size=2)
    try:
        view = await _wait_for_triage(TicketStore(pool), accepted.ticket_id)
    finally:
        await pool.close()
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


async def _with_store(settings: Settings, use: Callable[[TicketStore], Awaitable[T]]) -> T:
    return await _with_store_pool(settings, lambda pool: use(TicketStore(pool)))


async def _ticket_show(args: argparse.Namespace, settings: Settings) -> int:
    ticket_id = _parse_ticket_id(args.ticket_id)
    view = await _with_store(settings, lambda store: store.get(ticket_id))
    if view is None:
        raise CliError(f"no ticket {ticket_id}")
    # The stored ticket is worth showing even when Temporal (with the SLA clocks) is away.
    with contextlib.suppress(TemporalUnavailableError):
        view = await (await _intake(settings)).with_live_state(view)
    print(view.model_dump_json(indent=2) if args.json else render.ticket(view))
    return 0


async def _ticket_list(args: argparse.Namespace, settings: Settings) -> int:
    if args.limit < 1:
        raise CliError("--limit must be at least 1", EXIT_USAGE)
    status = TicketStatus(args.status) if args.status else None
    rows = await _with_store(settings, lambda store: store.list(status=status, limit=args.limit))
    print(render.ticket_table(rows))
    return 0


async def _ticket_resolve(args: argparse.Namespace, settings: Settings) -> int:
    ticket_id = _parse_ticket_id(args.ticket_id)
    staff = await _staff(settings)
    try:
        await staff.resolve(ticket_id=ticket_id, actor=args.actor, note=args.note)
    except UnknownTicketError as exc:
        raise CliError(f"no ticket {ticket_id}") from exc
    except TicketClosedError as exc:
        raise CliError(f"ticket {ticket_id} is already resolved") from exc
    print(f"ticket {ticket_id}: resolve sent")
    return 0


async def _approval_service(settings: Settings, pool: Any) -> ApprovalService:
    client = await temporal_from(settings)
    try:
        approvers = approvers_from(settings)
    except ApproversError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    return ApprovalService(client, approvers=approvers, store=ApprovalStore(pool))


async def _approvals_list(settings: Settings) -> int:
    pool = await create_pool(settings.require_database_url(), max_size=2)
    try:
        pending = await ApprovalStore(pool).pending()
    finally:
        await pool.close()
    print(render.approvals_table(pending, now=datetime.now(UTC)))
    return 0


async def _approvals_decide(args: argparse.Namespace, settings: Settings) -> int:
    approval_id = _parse_uuid(args.approval_id, "approval id")
    correction = (
        TriageCorrection(
            category=Category(args.category) if args.category else None,
            severity=Priority(args.severity) if args.severity else None,
        )
        if args.category or args.severity
        else None
    )
    pool = await create_pool(settings.require_database_url(), max_size=2)
    try:
        service = await _approval_service(settings, pool)
        outcome = await service.decide(
            approval_id=approval_id,
            approver_email=args.actor,
            verdict=Verdict(args.verdict),
            channel=DecisionChannel.CLI,
            reason=args.reason,
            correction=correction,
            os_user=os_user(),
        )
    except DecisionRefusedError as exc:
        raise CliError(f"decision refused: {exc}") from exc
    finally:
        await pool.close()
    print(f"approval {approval_id}: {outcome.status.value} by {outcome.decided_by}")
    return 0


async def _playbook_rollback(args: argparse.Namespace, settings: Settings) -> int:
    run_id = _parse_uuid(args.run_id, "run id")
    pool = await create_pool(settings.require_database_url(), max_size=2)
    try:
        run = await PlaybookRunStore(pool).get_run(run_id)
        if run is None:
            raise CliError(f"no playbook run {run_id}")
        ticket_id = run.ticket_id
        service = await _approval_service(settings, pool)
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
    finally:
        await pool.close()
    print(
        f"rollback of run {run_id} requested: approval {approval_id}\n"
        f"  an approver decides it with: kruxt approvals decide {approval_id} approve --as EMAIL"
    )
    return 0


async def _ticket_assign(args: argparse.Namespace, settings: Settings) -> int:
    ticket_id = _parse_ticket_id(args.ticket_id)
    staff = await _staff(settings)
    try:
        await staff.reassign(ticket_id=ticket_id, assignee=args.assignee, actor=args.actor)
    except ValidationError as exc:
        raise CliError(f"invalid --to {args.assignee!r}", EXIT_USAGE) from exc
    except UnknownTicketError as exc:
        raise CliError(f"no ticket {ticket_id}") from exc
    except TicketClosedError as exc:
        raise CliError(f"ticket {ticket_id} is resolved") from exc
    print(f"ticket {ticket_id}: assigned to {args.assignee}")
    return 0


async def _ticket_priority(args: argparse.Namespace, settings: Settings) -> int:
    ticket_id = _parse_ticket_id(args.ticket_id)
    staff = await _staff(settings)
    try:
        await staff.change_priority(
            ticket_id=ticket_id,
            priority=Priority(args.priority),
            actor=args.actor,
            reason=args.reason,
        )
    except UnknownTicketError as exc:
        raise CliError(f"no ticket {ticket_id}") from exc
    except TicketClosedError as exc:
        raise CliError(f"ticket {ticket_id} is resolved") from exc
    print(f"ticket {ticket_id}: priority {args.priority} sent (SLA deadlines recomputed)")
    return 0


async def _kpi(args: argparse.Namespace, settings: Settings) -> int:
    from kruxt.adapters.postgres.kpi_report import kpi_report

    if args.days < 1:
        raise CliError("--days must be at least 1", EXIT_USAGE)
    report = await _with_store_pool(settings, lambda pool: kpi_report(pool, days=args.days))
    print(render.kpi_report(report))
    return 0


async def _with_store_pool(settings: Settings, use: Callable[[Any], Awaitable[T]]) -> T:
    pool = await create_pool(settings.require_database_url(), max_size=2)
    try:
        return await use(pool)
    finally:
        await pool.close()


async def _audit_verify(settings: Settings) -> int:
    keyring = settings.require_audit_keyring()
    anchors_file = settings.audit_anchors_path
    conn: Any = await pg_connect(settings.require_database_url())
    try:
        result = await audit.verify(conn, keyring=keyring)
        anchors = await audit.verify_anchors(conn, anchors_file, keyring=keyring)
    finally:
        await conn.close()
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


async def _audit_anchor(settings: Settings) -> int:
    keyring = settings.require_audit_keyring()
    conn: Any = await pg_connect(settings.require_database_url())
    try:
        anchor = await audit.write_anchor(conn, settings.audit_anchors_path, keyring=keyring)
    finally:
        await conn.close()
    print(f"anchored row {anchor.row_id} ({anchor.hash[:16]}...) in {settings.audit_anchors_path}")
    return 0
