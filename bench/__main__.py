"""``python -m bench [NAME ...] [--tickets N] ...``: run the benchmarks (all when none is
named) and print each figure with its ratio or goal.

NAMEs: ``micro`` (triage, hostile text, reply guard, audit chain, CLI start), ``pipeline``,
``intake``, ``click``, ``scale``, ``burst``. The sizes default to the documented runs; smaller ones
(``python -m bench scale --tickets 1000``) give quick, noisier figures.
"""

from __future__ import annotations

import argparse
import os

from bench import (
    approval_click,
    audit_chain,
    burst,
    cli_start,
    hostile_text,
    intake,
    pipeline,
    reply_guard,
    rules_triage,
    scale,
)
from kruxt.adapters import event_loop

NAMES = ("micro", "pipeline", "intake", "click", "scale", "burst")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(NAMES))
    parser.add_argument("--tickets", type=int, default=10_000, help="scale: tickets opened")
    parser.add_argument(
        "--cache",
        type=int,
        default=250,
        help="scale: the worker's max_cached_workflows (KRUXT_MAX_CACHED_WORKFLOWS defaults "
        "to 1000; the bench opens at most half of it at a time)",
    )
    parser.add_argument(
        "--sla-minutes",
        type=int,
        default=scale.QUIET_SLA_MINUTES,
        help="scale: the tickets' SLA targets (default: beyond the run; 0: the product's, "
        "whose warnings and breaches wake every ticket at 11 and 15 minutes)",
    )
    parser.add_argument("--burst", type=int, default=300, help="burst: tickets started at once")
    parser.add_argument(
        "--burst-cache", type=int, default=100, help="burst: the worker's max_cached_workflows"
    )
    parser.add_argument("--pipeline", type=int, default=200, help="pipeline: workflows each")
    parser.add_argument("--intake", type=int, default=500, help="intake: requests each")
    parser.add_argument("--clicks", type=int, default=50, help="click: approvals clicked")
    args = parser.parse_args(argv)
    unknown = set(args.names) - set(NAMES)
    if unknown:
        parser.error(f"no such benchmark: {', '.join(sorted(unknown))}")
    return args


async def main(args: argparse.Namespace) -> None:
    """Run the chosen benchmarks one after another."""
    chosen = set(args.names or NAMES)
    print(f"machine: {os.cpu_count()} CPUs, {_ram_gb():.1f} GB RAM")
    if "micro" in chosen:
        print(rules_triage.run())
        print(hostile_text.run())
        print(reply_guard.run())
        print(await audit_chain.run())
        print(await cli_start.run())
    if "pipeline" in chosen:
        print(await pipeline.run(args.pipeline))
    if "intake" in chosen:
        print("\n".join(await intake.run(args.intake)))
    if "click" in chosen:
        print(await approval_click.run(args.clicks))
    if "scale" in chosen:
        print(await scale.run(args.tickets, args.cache, args.sla_minutes))
    if "burst" in chosen:
        print(await burst.run(args.burst, args.burst_cache))


def _ram_gb() -> float:
    pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    return pages * size / 2**30


if __name__ == "__main__":
    event_loop.run(main(parse()))
