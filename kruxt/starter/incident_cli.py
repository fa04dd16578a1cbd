"""``kruxt incident list|show|ack|resolve``: see incidents, read one, take one, close one.

``ack`` and ``resolve`` are updates of the incident's workflow (``incident-<id>``): its
validator has the last word (a second acknowledgement, or one after the resolution, is
refused with who did it). :class:`IncidentService` is shared with the Slack button handler.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from pydantic import EmailStr, TypeAdapter, ValidationError
from temporalio.service import RPCError

from kruxt.adapters.postgres.incidents import IncidentStore, TimelineEnds
from kruxt.adapters.postgres.pool import create_pool
from kruxt.adapters.postgres.references import Kind, parse_prefix
from kruxt.adapters.settings import ConfigurationError, Settings
from kruxt.adapters.temporal_client import TemporalUnavailableError
from kruxt.bootstrap import approvers_from, escalation_from, temporal_from
from kruxt.models.approvals import DecisionChannel
from kruxt.models.incidents import IncidentRecord, TimelineEntry
from kruxt.starter.cli import CliError
from kruxt.starter.cli_grammar import add_incident_parser
from kruxt.starter.cli_ids import resolve_id
from kruxt.starter.incidents import (
    IncidentRefusedError,
    IncidentService,
    UnknownIncidentError,
    responders_of,
)
from kruxt.starter.render import terminal_safe

__all__ = [
    "add_incident_parser",
    "incident_page",
    "incident_table",
    "run_incident",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

_EMAIL: TypeAdapter[str] = TypeAdapter(EmailStr)


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
            f"{_age(now - r.opened_at):>6}  {r.ticket_count:>7}  {paged:9}  "
            f"{r.title[:60]}{who}"
        )
    return terminal_safe("\n".join(out))


_WHEN = "%Y-%m-%d %H:%M:%S %Z"


def incident_page(
    record: IncidentRecord,
    timeline: TimelineEnds,
    tickets: Sequence[uuid.UUID] | None = None,
) -> str:
    """One incident: what it is, who took and closed it, its tickets (``tickets``: every one;
    by default the record's latest), then its timeline, with what was left out said."""
    lines = [
        f"Incident {record.id}",
        f"Title    {record.title}",
        f"Status   {record.status.value} · {record.priority.value} · {record.category.value}",
        f"Opened   {record.opened_at:{_WHEN}}",
    ]
    if record.acknowledged_at is not None:
        lines.append(f"Acked    {record.acknowledged_at:{_WHEN}} by {record.acknowledged_by}")
    if record.resolved_at is not None:
        lines.append(f"Resolved {record.resolved_at:{_WHEN}} by {record.resolved_by}")
    shown = record.recent_ticket_ids if tickets is None else tickets
    latest = " (the latest first)" if tickets is None and shown else ""
    lines.append(f"Tickets  {record.ticket_count}{latest}")
    lines += [f"  {ticket_id}" for ticket_id in shown]
    if len(shown) < record.ticket_count:
        lines.append(f"  … {record.ticket_count - len(shown)} more: --all")
    first, left_out, last = timeline
    lines += ["", f"Timeline ({len(first) + left_out + len(last)})"]
    lines += [_line(e) for e in first]
    if left_out:
        lines.append(f"  … {left_out} more lines: --all")
    lines += [_line(e) for e in last]
    return terminal_safe("\n".join(lines))


def _line(entry: TimelineEntry) -> str:
    return f"  [{entry.at:%Y-%m-%d %H:%M:%S}] {entry.what} — {entry.actor}"


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
    if command not in ("list", "show", "ack", "resolve"):
        return _fail(
            "usage: kruxt incident list|show ID|ack ID --as EMAIL|resolve ID --as EMAIL", 2
        )
    actor = ""
    if command in ("ack", "resolve"):
        try:
            actor = _EMAIL.validate_python(args.actor.strip())
        except ValidationError:
            return _fail(f"--as needs your e-mail address, not {args.actor!r}", EXIT_USAGE)
    if command != "list" and not _an_id(args.incident_id):
        return _fail(
            f"not an incident id: {args.incident_id!r} (expected a UUID or its first 8 characters)",
            EXIT_USAGE,
        )
    return await _connected(command, args, settings, actor)


def _an_id(raw: str) -> bool:
    """A UUID or the start of one (checked before anything is connected)."""
    with contextlib.suppress(ValueError):
        return uuid.UUID(raw) is not None
    return parse_prefix(raw) is not None


async def _connected(command: str, args: argparse.Namespace, settings: Settings, actor: str) -> int:
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

        async def opened() -> asyncpg.Pool[Any]:
            return pool

        incident_id = await resolve_id(args.incident_id, Kind.INCIDENT, opened)
        record = await store.get(incident_id)
        if record is None:
            return _fail(f"no incident {incident_id}")
        if command == "show":
            if getattr(args, "all", False):
                every = await store.timeline(incident_id)
                tickets = [t.ticket_id for t in await store.tickets(incident_id)]
                print(incident_page(record, TimelineEnds(every, 0, []), tickets))
            else:
                print(incident_page(record, await store.timeline_ends(incident_id)))
            return EXIT_OK
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
        state = await service.resolve(
            incident_id,
            by=actor,
            note=args.note,
            customer_note=args.customer_note,
            defect=args.defect,
            prevention=args.prevention,
        )
        told = state.told.told if state.told else len(state.tickets)
        closed = state.told.not_told if state.told else 0
        print(
            f"incident {incident_id}: resolved by {state.resolved_by}; {told} ticket(s) told"
            + (f" ({closed} closed, not told)" if closed else "")
        )
        return EXIT_OK
    except CliError as exc:
        return _fail(str(exc), exc.code)
    except (IncidentRefusedError, UnknownIncidentError) as exc:
        return _fail(f"{command} refused: {exc}")
    except TemporalUnavailableError as exc:
        return _fail(f"{exc}\n  is the stack running? start it with `make run`")
    except RPCError as exc:
        return _fail(f"Temporal refused the call: {exc.message}")
    except BrokenPipeError:
        raise  # the reader of stdout went away: the CLI stops quietly
    except (OSError, asyncpg.PostgresError) as exc:
        return _fail(f"database error: {exc}")
    finally:
        await pool.close()
