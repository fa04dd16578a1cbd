"""``kruxt eval triage --dataset FILE.jsonl [--json]``: score a triager on a labeled dataset;
``kruxt eval export-corrections [--since 30d] --out FILE.jsonl``: people's corrections as one.

``eval triage`` is offline: no database, no Temporal, no network. The triager scored is
``default_triager()`` (the rules today), the one ``kruxt simulate`` tries by default too.
``export-corrections`` reads the database, read-only, and writes a set ``eval triage`` loads.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from kruxt.adapters.postgres.pool import create_pool
from kruxt.adapters.postgres.simulation import SimulationReader
from kruxt.adapters.settings import Settings
from kruxt.agents.evaluation import (
    LabeledTicket,
    evaluate,
    labeled_from_corrections,
    parse_dataset,
    render_report,
)
from kruxt.agents.harness import Triager
from kruxt.starter.cli_grammar import add_eval_parser, parse_period

__all__ = [
    "add_eval_parser",
    "default_triager",
    "export_corrections",
    "load_dataset",
    "parse_period",
    "run_eval",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def load_dataset(path: Path | str) -> list[LabeledTicket]:
    """Read a JSON Lines dataset file (see :func:`~kruxt.agents.evaluation.parse_dataset`).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the dataset is malformed; the message names the file and the line.
    """
    path = Path(path)
    with path.open(encoding="utf-8") as lines:
        return parse_dataset(lines, str(path))


def default_triager() -> Triager:
    """The triager ``kruxt eval triage`` scores: the deterministic rules for now."""
    from kruxt.agents.triage_rules import triage_by_rules

    return triage_by_rules


def run_eval(args: argparse.Namespace) -> int:
    """Run ``kruxt eval ...``; returns the exit code.

    0 when the report was printed, 1 when the dataset is missing or invalid (one line on
    stderr says why), 2 for a usage error.
    """
    if getattr(args, "eval_command", None) != "triage":
        print(
            "kruxt: usage: kruxt eval triage --dataset FILE.jsonl [--json] | "
            "kruxt eval export-corrections [--since 30d] --out FILE.jsonl",
            file=sys.stderr,
        )
        return EXIT_USAGE
    dataset: Path | None = getattr(args, "dataset", None)
    if dataset is None:
        print("kruxt: eval triage: --dataset FILE.jsonl is required", file=sys.stderr)
        return EXIT_USAGE
    if not dataset.is_file():
        print(f"kruxt: eval triage: dataset not found: {dataset}", file=sys.stderr)
        return EXIT_FAILURE
    try:
        tickets = load_dataset(dataset)
    except (ValueError, OSError) as exc:
        print(f"kruxt: eval triage: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    report = evaluate(tickets, default_triager())
    print(report.model_dump_json(indent=2) if args.json else render_report(report))
    return EXIT_OK


async def export_corrections(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``kruxt eval export-corrections``: write the period's corrections as a labeled set.

    Reads the support database (read-only); the file is one JSON object a line, in the
    format ``kruxt eval triage --dataset`` loads. Returns the exit code.
    """
    since = datetime.now(UTC) - args.since
    pool = await create_pool(settings.require_database_url(), max_size=1)
    try:
        corrected = await SimulationReader(pool).corrected(since=since)
    finally:
        await pool.close()
    labeled = labeled_from_corrections(corrected)
    out: Path = args.out
    with out.open("w", encoding="utf-8") as file:
        file.writelines(ticket.model_dump_json() + "\n" for ticket in labeled)
    print(f"{len(labeled)} corrected tickets since {since:%Y-%m-%d %H:%M} UTC written to {out}")
    return EXIT_OK
