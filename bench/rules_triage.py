"""The rules triager's cost per ticket against a baseline of lower-casing the same text."""

from __future__ import annotations

import json
import time
import uuid

from kruxt.adapters.settings import PROJECT_ROOT
from kruxt.agents.triage_rules import triage_by_rules
from kruxt.models.enums import Channel
from kruxt.models.triage import TriageInput

ROUNDS = 20


def run() -> str:
    """Triage the labeled dataset ROUNDS times; return the report line."""
    rows = [
        json.loads(line)
        for line in (PROJECT_ROOT / "tests" / "data" / "triage_eval.jsonl").read_text().splitlines()
        if line.strip()
    ]
    inputs = [
        TriageInput(
            ticket_id=uuid.uuid4(), channel=Channel.IN_APP, subject=r["subject"], body=r["body"]
        )
        for r in rows
    ]
    started = time.perf_counter()
    for _ in range(ROUNDS):
        for inp in inputs:
            (inp.subject + "\n" + inp.body).lower().split()
    baseline = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(ROUNDS):
        for inp in inputs:
            triage_by_rules(inp)
    rules = time.perf_counter() - started
    n = ROUNDS * len(inputs)
    return (
        f"rules triage: {rules / n * 1e6:,.0f} us/ticket vs baseline {baseline / n * 1e6:,.1f} "
        f"us/ticket -> {rules / baseline:,.0f}x the baseline"
    )
