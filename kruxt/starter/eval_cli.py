"""``kruxt eval triage --dataset FILE.jsonl [--json]``: score a triager on a labeled dataset.

Offline: no database, no Temporal, no network. The triager scored is ``default_triager()``
(the rules today; the LLM triager can be returned from there later).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from kruxt.agents.evaluation import (
    LabeledTicket,
    Triager,
    evaluate,
    parse_dataset,
    render_report,
)

__all__ = ["add_eval_parser", "default_triager", "load_dataset", "run_eval"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def add_eval_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``eval triage`` to the ``kruxt`` command's subparsers."""
    evaluation = subparsers.add_parser(
        "eval", help="score the triager on a labeled dataset (offline)"
    ).add_subparsers(dest="eval_command", required=True, metavar="TARGET")
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
        print("kruxt: usage: kruxt eval triage --dataset FILE.jsonl [--json]", file=sys.stderr)
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
