"""``kruxt incident list|ack|resolve``: see open incidents, take one, close one.

``ack`` and ``resolve`` are updates of the incident's workflow (``incident-<id>``): its
validator has the last word (a second acknowledgement, or one after the resolution, is
refused with who did it). :class:`IncidentService` is shared with the Slack button handler.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from pydantic import EmailStr, TypeAdapter, ValidationError
from temporalio.service import RPCError

from kruxt.adapters.postgres.incidents import IncidentStore
from kruxt.adapters.postgres.pool import create_pool
from kruxt.adapters.settings import ConfigurationError, Settings
from kruxt.adapters.temporal_client import TemporalUnavailableError
from kruxt.bootstrap import approvers_from, escalation_from, temporal_from
from kruxt.models.approvals import DecisionChannel
from kruxt.models.incidents import (
    IncidentRecord,
)
from kruxt.starter.incidents import (
    IncidentRefusedError,
    IncidentService,
    UnknownIncidentError,
    responders_of,
)
from kruxt.starter.render import terminal_safe

__all__ = [
    "add_incident_parser",
    "incident_table",
    "run_incident",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

_EMAIL: TypeAdapter[str] = TypeAdapter(EmailStr)


def add_incident_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``incident list|ack|resolve`` to the ``kruxt`` command's subparsers."""
    incident = subparsers.add_parser(
        "incident", help="open incidents: list, acknowledge, resolve"
    ).add_subparsers(dest="incident_command", required=True, metavar="ACTION")
    lst = incident.add_parser("list", help="open and acknowledged incidents, most severe first")
    lst.add_argument("--json", action="store_true", help="print JSON")
    ack = incident.add_parser("ack", help="acknowledge an incident: paging stops")
    ack.add_argument("incident_id", metavar="ID")
    ack.add_argument("--as", dest="actor", required=True, help="your e-mail")
    resolve = incident.add_parser("resolve", help="resolve an incident and tell its tickets")
    resolve.add_argument("incident_id", metavar="ID")
    resolve.add_argument("--as", dest="actor", required=True, help="your e-mail")
    resolve.add_argument("--note", default="", help="what was wrong and what fixed it")


def incident_table(rows: Sequence[IncidentRecord], *, now: datetime) -> str:
    """Incidents as an aligned table."""
    if not rows:
        return "no open incidents"
    out = [
        f"{'INCIDENT':36}  {'PRI':3}  {'STATUS':12}  {'AGE':>6}  {'TICKETS':>7}  {'PAGED':9}  TITLE"
    ]
    for r in rows:
        paged = f"L{r.escalation_level + 1} R{r.escalation_loop + 1}"
        who = f" (ack {r.acknowledged_by})" if r.acknowledged_by else ""
        out.append(
            f"{r.id!s:36}  {r.priority.value:3}  {r.status.value:12}  "
            f"{_age(now - r.opened_at):>6}  {len(r.ticket_ids):>7}  {paged:9}  "
            f"{r.title[:60]}{who}"
        )
    return terminal_safe("\n".join(out))


def _age(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes}m"
    if minutes < 48 * 60:
        return f"{minutes // 60}h{minutes % 60:02d}"
    return f"{minutes // (24 * 60)}d"


def _fail(message: str, code: int = EXIT_FAILURE) -> int:
    print(f"kruxt: {message}", file=sys.stderr)
    return code


async def run_incident(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``kruxt incident ...``; returns the exit code (1: refused or failed, 2: usage)."""
    command = getattr(args, "incident_command", None)
    if command not in ("list", "ack", "resolve"):
        return _fail("usage: kruxt incident list|ack ID --as EMAIL|resolve ID --as EMAIL", 2)
    incident_id: uuid.UUID | None = None
    actor = ""
    if command != "list":
        try:
            incident_id = uuid.UUID(args.incident_id)
        except ValueError:
            return _fail(f"not an incident id: {args.incident_id!r} (expected a UUID)", EXIT_USAGE)
        try:
            actor = _EMAIL.validate_python(args.actor.strip())
        except ValidationError:
            return _fail(f"--as needs your e-mail address, not {args.actor!r}", EXIT_USAGE)
    try:
        dsn = settings.require_database_url()
    except ConfigurationError as exc:
        return _fail(str(exc), EXIT_USAGE)
    try:
        pool = await create_pool(dsn, max_size=2)
    except (OSError, asyncpg.PostgresError) as exc:
        return _fail(f"cannot reach PostgreSQL: {exc}\n  is the stack running? (`make run`)")
    try:
        store = IncidentStore(pool)
        if command == "list":
            rows = await store.list_open()
            if getattr(args, "json", False):
                print("[" + ",".join(r.model_dump_json() for r in rows) + "]")
            else:
                print(incident_table(rows, now=datetime.now(UTC)))
            return EXIT_OK
        assert incident_id is not None
        if await store.get(incident_id) is None:
            return _fail(f"no incident {incident_id}")
        client = await temporal_from(settings)
        service = IncidentService(
            client,
            store=store,
            responders=responders_of(
                escalation_from(settings),
                approvers_from(settings),
            ),
        )
        if command == "ack":
            ack = await service.acknowledge(incident_id, by=actor, channel=DecisionChannel.CLI)
            print(f"incident {incident_id}: acknowledged by {ack.by}; paging stopped")
            return EXIT_OK
        state = await service.resolve(incident_id, by=actor, note=args.note)
        print(
            f"incident {incident_id}: resolved by {state.resolved_by}; "
            f"{len(state.tickets)} ticket(s) told"
        )
        return EXIT_OK
    except (IncidentRefusedError, UnknownIncidentError) as exc:
        return _fail(f"{command} refused: {exc}")
    except TemporalUnavailableError as exc:
        return _fail(f"{exc}\n  is the stack running? start it with `make run`")
    except RPCError as exc:
        return _fail(f"Temporal refused the call: {exc.message}")
    except (OSError, asyncpg.PostgresError) as exc:
        return _fail(f"database error: {exc}")
    finally:
        await pool.close()
