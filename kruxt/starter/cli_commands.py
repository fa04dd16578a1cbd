"""The ``kruxt`` commands that connect to the stack: tickets, approvals, playbook runs,
KPIs, the audit trail. :mod:`kruxt.starter.cli` imports this module only to run one.

The commands that read (``ticket show|list``, ``approvals list``, ``kpi``, ``audit``) are here
and load PostgreSQL's driver and the read path only; those that act through a workflow are
:mod:`kruxt.starter.cli_actions`'s, imported to run one. An id may be written whole or as its
first characters (:mod:`kruxt.starter.cli_ids`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

import asyncpg

from kruxt.adapters import event_loop
from kruxt.adapters.postgres import audit
from kruxt.adapters.postgres.approvals import ApprovalStore
from kruxt.adapters.postgres.defects import DefectStore
from kruxt.adapters.postgres.migrations import MigrationError
from kruxt.adapters.postgres.pool import create_pool
from kruxt.adapters.postgres.references import Kind
from kruxt.adapters.postgres.ticket_history import staff_changes
from kruxt.adapters.postgres.tickets import TicketStore
from kruxt.models.enums import TicketStatus
from kruxt.starter import render
from kruxt.starter.cli import EXIT_FAILURE, EXIT_USAGE, CliError
from kruxt.starter.cli_connections import (
    UNREACHABLE_POSTGRES,
    Connections,
    connect_postgres,
    connected,
)
from kruxt.starter.cli_ids import resolve_id

if TYPE_CHECKING:
    from kruxt.adapters.settings import Settings
    from kruxt.models.tickets import TicketView

__all__ = ["dispatch", "run"]

T = TypeVar("T")


def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    """Run a command that connects to the stack; returns the exit code."""
    match args.command:
        case "migrate":
            return run(_migrate(args, settings))
        case "ticket" if args.ticket_command == "show":
            return run(connected(_ticket_show, args, settings))
        case "ticket" if args.ticket_command == "list":
            return run(connected(_ticket_list, args, settings))
        case "approvals" if args.approvals_command == "list":
            return run(connected(_approvals_list, args, settings))
        case "ticket" | "approvals" | "playbook":
            from kruxt.starter.cli_actions import action  # Temporal, the workflows: only here

            return run(connected(action(args), args, settings))
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
            return run(connected(_kpi, args, settings))
        case "review" | "schedules":
            from kruxt.starter.review_cli import run_review, run_schedules

            command = run_review if args.command == "review" else run_schedules
            return run(connected(command, args, settings))
        case "console":
            from kruxt.starter.console.console_cli import run_console

            return run(connected(run_console, args, settings))
        case "audit" if args.audit_command == "anchor":
            return run(connected(_audit_anchor, args, settings))
        case "audit":
            return run(connected(_audit_verify, args, settings))
    raise CliError(f"unknown command {args.command}", EXIT_USAGE)


def run(coro: Awaitable[T]) -> T:
    """Run a coroutine, turning unreachable services into one clear line."""
    try:
        return event_loop.run(coro)  # type: ignore[arg-type]
    except BrokenPipeError:
        raise  # the reader of stdout went away: kruxt.starter.cli stops quietly
    except (asyncpg.PostgresConnectionError, asyncpg.InvalidCatalogNameError) as exc:
        raise CliError(UNREACHABLE_POSTGRES.format(exc=exc)) from exc
    except OSError as exc:
        # Not a connection failure (those are raised where the connection is made): a file.
        raise CliError(str(exc)) from exc
    except Exception as exc:
        said = _temporal_failure(exc)
        if said is None:
            raise
        raise said from exc


def _temporal_failure(exc: Exception) -> CliError | None:
    """``exc`` said in one line if it is Temporal's failure, else None."""
    if "temporalio" not in sys.modules:
        return None  # no command loaded Temporal's SDK: not its failure, and no need to load it
    from temporalio.service import RPCError

    from kruxt.adapters.temporal_client import TemporalUnavailableError

    if isinstance(exc, TemporalUnavailableError):
        return CliError(f"{exc}\n  is the stack running? start it with `make run`")
    if isinstance(exc, RPCError):
        return CliError(f"Temporal refused the call: {exc.message}")
    return None


async def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from kruxt.adapters.app_db import install_app_schema
    from kruxt.adapters.postgres import migrations
    from kruxt.adapters.postgres.knowledge import index_knowledge

    if args.app:
        if settings.app_database_url is None:
            raise CliError("--app needs APP_DATABASE_URL (the KRUXT app database)", EXIT_USAGE)
        conn = await connect_postgres(settings.app_database_url.get_secret_value())
        try:
            applied = await install_app_schema(conn, with_demo_data=False)
        finally:
            await conn.close()
        print(f"app: {len(applied)} migrations applied" if applied else "app: up to date")
        return 0
    dsn = settings.require_migrate_database_url()  # the owner role
    conn = await connect_postgres(dsn)
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


async def _ticket_show(args: argparse.Namespace, parts: Connections) -> int:
    ticket_id = await resolve_id(args.ticket_id, Kind.TICKET, parts.pool)
    view = await TicketStore(await parts.pool()).get(ticket_id)
    if view is None:
        raise CliError(f"no ticket {ticket_id}")
    view = await _with_live_state(view, parts)
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


async def _with_live_state(view: TicketView, parts: Connections) -> TicketView:
    """``view`` plus what its workflow knows, when Temporal is there: the stored ticket is worth
    showing while Temporal (with the SLA clocks) is away, and then its SDK is not even loaded."""
    if not await parts.temporal_listens():
        return view
    from kruxt.adapters.temporal_client import TemporalUnavailableError
    from kruxt.starter.live_state import with_live_state

    try:
        return await with_live_state(await parts.client(), view)
    except TemporalUnavailableError:
        return view


async def _approvals_list(args: argparse.Namespace, parts: Connections) -> int:
    pending = await ApprovalStore(await parts.pool()).pending()
    print(render.approvals_table(pending, now=datetime.now(UTC)))
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
