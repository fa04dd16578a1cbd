"""``kruxt simulate``: replay the period's stored tickets through a candidate triager.

The candidate (the rules of the current code, or the configured LLM with a chosen prompt
version) and the current routing policy run over the tickets stored since ``--since``, side by
side with what happened to them, as :func:`kruxt.agents.harness.simulate` compares them. It
reads the database in read-only transactions, starts no workflow and sends nothing: the LLM,
when chosen, is the only thing it calls.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from temporalio.exceptions import ApplicationError

from kruxt.activities.llm_triage import LlmTriageActivities
from kruxt.adapters.llm_triage import OpenAITriager
from kruxt.adapters.postgres.pool import create_pool
from kruxt.adapters.postgres.simulation import SimulationReader
from kruxt.adapters.prompts import PromptNotFoundError, load_prompt
from kruxt.adapters.settings import Settings
from kruxt.agents.harness import (
    Change,
    Progress,
    Side,
    SimulatedTicket,
    SimulationReport,
    Triager,
    simulate,
)
from kruxt.agents.triage_rules import RULES_VERSION
from kruxt.bootstrap import llm_from
from kruxt.models.incidents import parse_incident_cluster
from kruxt.models.simulation import StoredTicket
from kruxt.models.triage import TriageInput, TriageResult
from kruxt.starter.cli_grammar import add_simulate_parser
from kruxt.starter.eval_cli import default_triager
from kruxt.starter.intake import routing_policy_from
from kruxt.starter.render import terminal_safe

__all__ = ["add_simulate_parser", "render_html", "render_simulation", "run_simulate"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

# Concurrent LLM calls: enough to keep a long run short, few enough for a rate limit.
LLM_CONCURRENCY = 4
# A rate limit or an outage is retried, a few times, as the live activity is; then the rules
# answer. The server's Retry-After is honoured, else the wait grows by this much each time.
LLM_ATTEMPTS = 3
LLM_BACKOFF_S = 0.5
SUBJECT_CHARS = 48


async def run_simulate(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``kruxt simulate``; returns the exit code (2 for a usage error)."""
    if args.prompt_version is not None and args.triager != "llm":
        print("kruxt: simulate: --prompt-version needs --triager llm", file=sys.stderr)
        return EXIT_USAGE
    until = datetime.now(UTC)
    since = until - args.since
    pool = await create_pool(settings.require_database_url(), max_size=1)
    try:
        tickets = await SimulationReader(pool).tickets(since=since)
    finally:
        await pool.close()
    progress: Progress | None = _progress(sys.stderr)
    if args.triager == "llm":
        candidate = await _llm_candidate(settings, args.prompt_version, tickets, progress)
        if candidate is None:
            return EXIT_USAGE
        triage, name = candidate
        progress = None  # the calls were the slow part, and they are done
    else:
        triage, name = default_triager(), RULES_VERSION
    report = simulate(
        tickets,
        triage,
        routing_policy_from(settings),
        triager=name,
        since=since,
        until=until,
        incident_window=timedelta(minutes=settings.incident_window_minutes),
        cluster=parse_incident_cluster(settings.incident_cluster),
        progress=progress,
    )
    print(render_simulation(report))
    return _write(args, report)


def _write(args: argparse.Namespace, report: SimulationReport) -> int:
    if args.json is not None:
        path, text = args.json, report.model_dump_json(indent=2)
    elif args.html is not None:
        path, text = args.html, render_html(report)
    else:
        return EXIT_OK
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"kruxt: simulate: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"report written to {path}")
    return EXIT_OK


async def _llm_candidate(
    settings: Settings,
    prompt_version: str | None,
    tickets: Sequence[StoredTicket],
    progress: Progress | None,
) -> tuple[Triager, str] | None:
    """The LLM's answers for every ticket, as a triager; None (with a message) if unusable."""
    triager, _ = llm_from(settings)
    if triager is None:
        print("kruxt: simulate: --triager llm needs OPENAI_API_KEY", file=sys.stderr)
        return None
    try:
        if prompt_version is not None:
            try:
                triager.prompt = load_prompt("triage", prompt_version, settings.prompts_dir)
            except (PromptNotFoundError, ValueError) as exc:
                print(f"kruxt: simulate: {exc}", file=sys.stderr)
                return None
        answers = await _ask_llm(triager, tickets, progress)
    finally:
        await triager.aclose()
    return (lambda inp: answers[inp.ticket_id]), f"{triager.model} {triager.prompt_version}"


async def _ask_llm(
    triager: OpenAITriager, tickets: Sequence[StoredTicket], progress: Progress | None
) -> dict[uuid.UUID, TriageResult]:
    """Every ticket through the live LLM triage step (its checks and the policy after it);
    a call that fails for good gets the rules' answer, as a live ticket does."""
    live = LlmTriageActivities(triager)
    rules = default_triager()
    answers: dict[uuid.UUID, TriageResult] = {}
    failed: list[str] = []
    limit = asyncio.Semaphore(LLM_CONCURRENCY)

    async def ask(inp: TriageInput) -> TriageResult | None:
        for attempt in range(1, LLM_ATTEMPTS + 1):
            try:
                outcome = await live.triage_with_llm(inp)
                return outcome.result if outcome is not None else None
            except ApplicationError as err:
                if err.non_retryable or attempt == LLM_ATTEMPTS:
                    failed.append(err.type or "error")
                    return None
                delay = err.next_retry_delay
                await asyncio.sleep(delay.total_seconds() if delay else LLM_BACKOFF_S * attempt)
        return None

    async def one(ticket: StoredTicket) -> None:
        inp = ticket.to_input()
        async with limit:
            result = await ask(inp)
        answers[inp.ticket_id] = result if result is not None else rules(inp)
        if progress is not None:
            progress(len(answers), len(tickets))

    await asyncio.gather(*(one(t) for t in tickets))
    if failed:
        kinds = ", ".join(sorted(set(failed)))
        print(
            f"kruxt: simulate: {len(failed)} of {len(tickets)} LLM calls failed ({kinds}): "
            "the rules answered them, as they would live",
            file=sys.stderr,
        )
    return answers


def _progress(stream: TextIO) -> Progress:
    """A progress line on a terminal (rewritten in place), a line every 100 tickets otherwise."""
    live = stream.isatty()

    def report(done: int, total: int) -> None:
        if live:
            end = "\n" if done == total else ""
            print(f"\rsimulating {done}/{total}", end=end, file=stream, flush=True)
        elif done % 100 == 0 or done == total:
            print(f"simulating {done}/{total}", file=stream)

    return report


# -- rendering ------------------------------------------------------------------------------


def _cells(row: SimulatedTicket) -> list[str]:
    """One ticket's columns: ``a`` where both sides agree, ``a -> b`` where it would change."""
    h, w = row.happened, row.would

    def pair(value: Callable[[Side], str]) -> str:
        if h is None:
            return f"- -> {value(w)}"
        return value(h) if value(h) == value(w) else f"{value(h)} -> {value(w)}"

    labels = (row.label_category, row.label_severity)
    return [
        row.ticket_id[:8],
        pair(lambda side: side.category.value),
        pair(lambda side: side.severity.value),
        pair(lambda side: side.route.value),
        pair(lambda side: _yes(side.incident)),
        "/".join(v.value for v in labels if v is not None) or "-",
    ]


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _summary(report: SimulationReport) -> list[tuple[str, str]]:
    def routes(counts: dict[Any, int]) -> str:
        return ", ".join(f"{route.value} {n}" for route, n in counts.items())

    def agreement(field: str) -> str:
        a = getattr(report, f"{field}_labels")
        if not a.labelled:
            return "no corrections in the period"
        return f"happened {a.happened}/{a.labelled}, would {a.would}/{a.labelled}"

    return [
        ("tickets", f"{report.tickets} ({report.not_triaged} never triaged)"),
        ("changed", str(report.changed_tickets)),
        *((f"  {c.value.replace('_', '-')}", str(report.changed[c])) for c in Change),
        ("routes happened", routes(report.routes_happened)),
        ("routes would", routes(report.routes_would)),
        (
            "auto-replies happened / would",
            f"{report.auto_replies_happened} / {report.auto_replies_would}",
        ),
        ("incidents happened / would", f"{report.incidents_happened} / {report.incidents_would}"),
        ("category vs corrections", agreement("category")),
        ("severity vs corrections", agreement("severity")),
    ]


_HEADER = ["TICKET", "CATEGORY", "SEVERITY", "ROUTE", "INCIDENT", "LABEL"]


def render_simulation(report: SimulationReport) -> str:
    """The report for the terminal: the summary, then every ticket the candidate changes."""
    title = (
        f"Simulation: {report.triager} vs what happened, tickets since "
        f"{report.since:%Y-%m-%d %H:%M} UTC"
    )
    summary = _summary(report)
    width = max(len(label) for label, _ in summary)
    lines = [terminal_safe(title), ""]
    lines += [f"  {label:<{width}}  {value}" for label, value in summary]
    changed = [row for row in report.rows if row.changes]
    if not changed:
        lines += ["", "No ticket would be handled differently."]
        return "\n".join(lines)
    rows = [_cells(row) for row in changed]
    widths = [max(len(r[i]) for r in (_HEADER, *rows)) for i in range(len(_HEADER))]
    lines += ["", f"Would change ({len(changed)}):"]
    subjects = ["SUBJECT", *(row.subject for row in changed)]
    for cells, subject in zip([_HEADER, *rows], subjects, strict=True):
        text = terminal_safe(subject).replace("\n", " ").replace("\t", " ")[:SUBJECT_CHARS]
        padded = "  ".join(f"{c:<{w}}" for c, w in zip(cells, widths, strict=True))
        lines.append(f"  {padded}  {text}")
    return "\n".join(lines)


def render_html(report: SimulationReport) -> str:
    """The report as one HTML page: the summary and every ticket, changes highlighted.

    Ticket text is hostile: every value is escaped, and the page runs no script.
    """
    e = html.escape
    summary = "".join(
        f"<tr><th>{e(label.strip())}</th><td>{e(value)}</td></tr>"
        for label, value in _summary(report)
    )
    head = "".join(f"<th>{e(h.lower())}</th>" for h in [*_HEADER, "SUBJECT"])
    body = "".join(
        f'<tr class="{"changed" if row.changes else ""}">'
        + "".join(f"<td>{e(cell)}</td>" for cell in _cells(row))
        + f"<td>{e(row.subject)}</td></tr>"
        for row in report.rows
    )
    title = e(f"Simulation: {report.triager}, tickets since {report.since:%Y-%m-%d %H:%M} UTC")
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">"
        f"<title>{title}</title><style>body{{font-family:sans-serif}}"
        "table{border-collapse:collapse}td,th{padding:2px 8px;text-align:left}"
        "tr.changed{background:#fff4ce}</style></head><body>"
        f"<h1>{title}</h1><table>{summary}</table>"
        f"<h2>Tickets</h2><table><tr>{head}</tr>{body}</table></body></html>\n"
    )
