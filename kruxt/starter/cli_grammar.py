"""The ``kruxt`` command's grammar, every subcommand's arguments in one place.

It imports only enums: ``kruxt --help`` and a usage error never load Temporal, PostgreSQL
or FastAPI, whose imports are most of a command's start-up time.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path
from typing import Any

from kruxt.models.approvals import Verdict
from kruxt.models.enums import Category, Priority, TicketStatus

__all__ = [
    "add_console_parser",
    "add_eval_parser",
    "add_incident_parser",
    "add_simulate_parser",
    "add_since_argument",
    "build_parser",
    "parse_period",
]

# What --as and --to take, said once: staff identities are the approvers directory's e-mails.
STAFF_HELP = "your staff e-mail, as in the approvers directory (KRUXT_APPROVERS)"
ID_HELP = "its UUID, or the first 8 characters or more (the reference customers see)"


def _command_group(
    subparsers: argparse._SubParsersAction[Any],
    name: str,
    help: str,
    *,
    dest: str = "",
    metavar: str = "ACTION",
) -> argparse._SubParsersAction[Any]:
    """A command whose subcommands are its actions; the one chosen is in ``dest`` (by
    default ``<name>_command``), and one must be chosen."""
    command: argparse.ArgumentParser = subparsers.add_parser(name, help=help)
    return command.add_subparsers(dest=dest or f"{name}_command", required=True, metavar=metavar)


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

    ticket = _command_group(sub, "ticket", "open, show, list and resolve tickets")
    new = ticket.add_parser("new", help="open a ticket and wait for its triage")
    new.add_argument("--email", required=True, help="requester's email")
    new.add_argument("--subject", required=True)
    new.add_argument("--body", required=True)
    new.add_argument("--name", default="", help="requester's name")
    new.add_argument("--account", default=None, help="the KRUXT account id, if known")
    new.add_argument("--external-id", default=None, help="dedupe key (default: a new uuid)")
    new.add_argument("--no-wait", action="store_true", help="return without waiting for triage")
    show = ticket.add_parser("show", help="a ticket with its messages and triage")
    show.add_argument("ticket_id", metavar="ID", help=ID_HELP)
    show.add_argument("--json", action="store_true", help="print JSON")
    lst = ticket.add_parser("list", help="the newest tickets")
    lst.add_argument("--status", choices=[s.value for s in TicketStatus])
    lst.add_argument("--limit", type=int, default=20)
    priority = _staff_action(ticket, "priority", "change a ticket's priority (SLA recomputed)")
    priority.add_argument("priority", choices=[p.value for p in Priority])
    priority.add_argument("--reason", default="")
    assign = _staff_action(ticket, "assign", "give a ticket to someone on the support team")
    assign.add_argument(
        "--to",
        dest="assignee",
        required=True,
        metavar="EMAIL",
        help="the new owner's e-mail address, e.g. sam@kruxt.app",
    )
    resolve = _staff_action(ticket, "resolve", "resolve a ticket as a staff member")
    resolve.add_argument("--note", default="", help="for the team: never sent to the customer")
    _defect_options(resolve)

    approvals = _command_group(sub, "approvals", "pending approvals and decisions")
    approvals.add_parser("list", help="pending approvals, with age and deadline")
    decide = approvals.add_parser("decide", help="approve or reject as a configured approver")
    decide.add_argument("approval_id", metavar="ID", help=ID_HELP)
    decide.add_argument("verdict", choices=[v.value for v in Verdict])
    decide.add_argument("--as", dest="actor", required=True, metavar="EMAIL", help=STAFF_HELP)
    decide.add_argument("--reason", default="")
    decide.add_argument("--category", choices=[c.value for c in Category], help="triage was wrong")
    decide.add_argument("--severity", choices=[p.value for p in Priority], help="triage was wrong")

    playbook = _command_group(sub, "playbook", "playbook runs")
    rollback = playbook.add_parser("rollback", help="request the rollback of a completed run")
    rollback.add_argument("run_id", metavar="RUN_ID", help=ID_HELP)
    rollback.add_argument("--as", dest="actor", required=True, metavar="EMAIL", help=STAFF_HELP)
    rollback.add_argument("--reason", default="")

    add_eval_parser(sub)
    add_simulate_parser(sub)
    add_incident_parser(sub)
    add_kpi_parser(sub)
    add_review_parsers(sub)
    add_console_parser(sub)

    audit_cmd = _command_group(sub, "audit", "the audit trail")
    audit_cmd.add_parser(
        "verify", help="walk the keyed hash chain and check its anchors; non-zero exit if broken"
    )
    audit_cmd.add_parser("anchor", help="append the signed chain head to the anchor file now")
    return parser


def _staff_action(
    subparsers: argparse._SubParsersAction[Any], name: str, help: str
) -> argparse.ArgumentParser:
    """A ``kruxt ticket`` action a staff member takes: ``ID --as EMAIL``."""
    action: argparse.ArgumentParser = subparsers.add_parser(name, help=help)
    action.add_argument("ticket_id", metavar="ID", help=ID_HELP)
    action.add_argument("--as", dest="actor", required=True, metavar="EMAIL", help=STAFF_HELP)
    return action


def add_eval_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``eval triage`` to the ``kruxt`` command's subparsers."""
    evaluation = _command_group(
        subparsers,
        "eval",
        "score the triager on a labeled dataset; export corrections as one",
        metavar="TARGET",
    )
    triage = evaluation.add_parser(
        "triage", help="category, severity and routing accuracy of the triager"
    )
    triage.add_argument(
        "--dataset",
        required=True,
        type=Path,
        metavar="FILE.jsonl",
        help="labeled tickets, one JSON object a line (id, subject, body, expected_category, "
        "expected_severity, out_of_scope, injection)",
    )
    triage.add_argument("--json", action="store_true", help="print the report as JSON")
    export = evaluation.add_parser(
        "export-corrections",
        help="people's 'triage wrong' corrections as a labeled set for `eval triage --dataset`",
    )
    add_since_argument(export, "corrections decided in the last PERIOD")
    export.add_argument(
        "--out", required=True, type=Path, metavar="FILE.jsonl", help="where to write the set"
    )


def add_review_parsers(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``review run|show`` and ``schedules apply`` to the ``kruxt`` command."""
    review = _command_group(subparsers, "review", "the weekly support review")
    run = review.add_parser("run", help="run the weekly review now and deliver it")
    run.add_argument("--now", action="store_true", required=True, help="run it now")
    run.add_argument("--week", help="the ISO week to review, e.g. 2026-W48 (default: last week)")
    show = review.add_parser("show", help="reprint a stored weekly review")
    show.add_argument("--week", help="the ISO week, e.g. 2026-W48 (default: the latest)")
    show.add_argument("--html", action="store_true", help="print the HTML report")
    schedules = _command_group(subparsers, "schedules", "the Temporal Schedules")
    schedules.add_parser("apply", help="create or update the schedules (idempotent)")


def add_console_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``console token create|list|revoke`` (``kruxt/starter/console/console_cli.py``)."""
    console = _command_group(
        subparsers, "console", "the staff console: personal tokens for its JSON API"
    )
    token = _command_group(
        console,
        "token",
        "personal tokens for /v1/staff (Authorization: Bearer)",
        dest="console_action",
    )
    create = token.add_parser("create", help="a new token, printed once")
    create.add_argument("--as", dest="actor", required=True, metavar="EMAIL", help=STAFF_HELP)
    create.add_argument("--name", default="", metavar="LABEL", help="what the token is for")
    lst = token.add_parser("list", help="tokens, newest first (never the tokens themselves)")
    lst.add_argument("--as", dest="actor", metavar="EMAIL", help="only this person's")
    revoke = token.add_parser("revoke", help="revoke a token for good")
    revoke.add_argument("token_id", metavar="ID", help="its id (or its first 8 characters)")
    revoke.add_argument(
        "--as", dest="actor", default="cli", metavar="EMAIL", help="who revokes it (audit)"
    )


def add_kpi_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``kpi`` (``kruxt/starter/kpi_cli.py``) to the ``kruxt`` command's subparsers."""
    kpi = subparsers.add_parser(
        "kpi", help="support KPIs against their targets: response times, SLAs, rates, playbooks"
    )
    period = kpi.add_mutually_exclusive_group()
    period.add_argument(
        "--since",
        type=parse_period,
        default=timedelta(days=7),
        metavar="PERIOD",
        help="the last PERIOD: a number and d, h or m (default 7d)",
    )
    period.add_argument("--days", type=int, metavar="N", help="the last N days (--since Nd)")
    kpi.add_argument("--format", choices=["table", "json", "html"], default="table")
    kpi.add_argument("--out", type=Path, metavar="FILE", help="write to FILE, not stdout")


def add_since_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """``--since PERIOD`` (``30d``, ``12h``, ``90m``), 30 days by default."""
    parser.add_argument(
        "--since",
        type=parse_period,
        default=timedelta(days=30),
        metavar="PERIOD",
        help=f"{what}: a number and d, h or m (default 30d)",
    )


_UNITS = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}


def parse_period(raw: str) -> timedelta:
    """``30d``, ``12h`` or ``90m`` as a duration.

    Raises:
        argparse.ArgumentTypeError: anything else (argparse turns it into a usage error).
    """
    number, unit = raw.strip()[:-1], raw.strip()[-1:].lower()
    if unit not in _UNITS or not number.isdigit() or int(number) < 1:
        raise argparse.ArgumentTypeError(f"not a period: {raw!r} (use e.g. 30d, 12h or 90m)")
    return int(number) * _UNITS[unit]


def add_simulate_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``simulate`` to the ``kruxt`` command's subparsers."""
    sim = subparsers.add_parser(
        "simulate",
        help="replay stored tickets through a candidate triager: what would change (read-only)",
    )
    add_since_argument(sim, "tickets stored in the last PERIOD")
    sim.add_argument(
        "--triager",
        choices=["rules", "llm"],
        default="rules",
        help="the candidate: the rules of this code, or the LLM of OPENAI_API_KEY/OPENAI_BASE_URL",
    )
    sim.add_argument(
        "--prompt-version",
        metavar="VERSION",
        help="with --triager llm: the triage prompt to try (prompts/triage/VERSION.md)",
    )
    out = sim.add_mutually_exclusive_group()
    out.add_argument("--json", type=Path, metavar="FILE", help="write the whole report as JSON")
    out.add_argument("--html", type=Path, metavar="FILE", help="write the report as HTML")


def add_incident_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``incident list|show|ack|resolve`` to the ``kruxt`` command's subparsers."""
    incident = _command_group(subparsers, "incident", "incidents: list, show, acknowledge, resolve")
    lst = incident.add_parser("list", help="open and acknowledged incidents, most severe first")
    lst.add_argument("--json", action="store_true", help="print JSON")
    show = incident.add_parser("show", help="an incident with its tickets and timeline")
    show.add_argument("incident_id", metavar="ID", help=ID_HELP)
    show.add_argument(
        "--all",
        action="store_true",
        help="every ticket and timeline line (by default the latest tickets and both ends of "
        "the timeline: a large outage has thousands of each)",
    )
    ack = incident.add_parser("ack", help="acknowledge an incident: paging stops")
    ack.add_argument("incident_id", metavar="ID", help=ID_HELP)
    ack.add_argument("--as", dest="actor", required=True, metavar="EMAIL", help=STAFF_HELP)
    resolve = incident.add_parser("resolve", help="resolve an incident and tell its tickets")
    resolve.add_argument("incident_id", metavar="ID", help=ID_HELP)
    resolve.add_argument("--as", dest="actor", required=True, metavar="EMAIL", help=STAFF_HELP)
    resolve.add_argument(
        "--note", default="", help="for the team (timeline, Slack): what was wrong, what fixed it"
    )
    resolve.add_argument(
        "--customer-note",
        default="",
        help="a customer update, added to what the open tickets' customers are told",
    )
    _defect_options(resolve)


def _defect_options(resolve: argparse.ArgumentParser) -> None:
    """``--defect [--prevention TEXT]`` of ``ticket resolve`` and ``incident resolve``."""
    resolve.add_argument(
        "--defect", action="store_true", help="the cause is a product defect: file a GitHub issue"
    )
    resolve.add_argument("--prevention", default="", help="how to keep the defect from coming back")
