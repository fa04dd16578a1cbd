"""Rules triage and the injection detector on hostile 64 KiB text, against normal tickets.

The backtracking patterns took minutes to hours on some of these (a ``[`` and newlines); on
RE2 the cost is linear in the text. Each hostile input is compared with a normal ticket of the
same size (the labeled tickets' text, repeated to 64 KiB): the goal is a ratio under 20. The
cost per KiB of a normal-sized ticket is printed too. Every input runs once before it is
timed: RE2 builds its automata lazily and keeps them, as a running worker does.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

from kruxt.adapters.settings import PROJECT_ROOT
from kruxt.agents import triage_rules
from kruxt.agents.triage_rules import triage_by_rules
from kruxt.models.enums import Channel
from kruxt.models.triage import TriageInput

SIZE = 64 * 1024
ROUNDS = 3
GOAL = 20.0


def _fill(unit: str) -> str:
    return (unit * (SIZE // len(unit) + 1))[:SIZE]


# The worst inputs known: what broke the old patterns, and what costs the most now.
HOSTILE: dict[str, str] = {
    "[ + newlines": "[" + "\n" * (SIZE - 1),
    "[ + space/newline": "[" + " \n" * (SIZE // 2),
    "[ [ [": _fill("[ "),
    "newlines + system: ios": "\n" * (SIZE - 20) + "system: ios",
    "a a a": _fill("a "),
    "nobody could have": _fill("nobody could have "),
    "how many users": _fill("how many users "),
    "spam folder": _fill("in my spam folder "),
    "#1 kg": _fill("#1 kg "),
    "l'a": _fill("l'a"),
    "<!-- ": _fill("<!-- "),
    "to the bot": _fill("to the bot. "),
    "U+FDFA (NFKC x18)": "\ufdfa" * (SIZE // 3),
}


def _labeled() -> list[tuple[str, str]]:
    path = PROJECT_ROOT / "tests" / "data" / "triage_eval.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(r["subject"], r["body"]) for r in rows]


def _best(fn: Callable[[], object]) -> float:
    fn()  # warm: RE2's automata are built on first use
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def _triage(subject: str, body: str) -> Callable[[], object]:
    inp = TriageInput(ticket_id=uuid.uuid4(), channel=Channel.IN_APP, subject=subject, body=body)
    return lambda: triage_by_rules(inp)


def _detect(text: str) -> Callable[[], object]:
    return lambda: triage_rules._strip_injections(triage_rules._view(text))


def run() -> str:
    """Time every hostile input; return the report lines."""
    labeled = _labeled()
    normal_chars = sum(len(s) + len(b) for s, b in labeled) / len(labeled)
    normal = sum(_best(_triage(s, b)) for s, b in labeled) / len(labeled)
    prose = _fill(" ".join(b for _, b in labeled))
    baseline = {"triage": _best(_triage("Help", prose)), "detector": _best(_detect(prose))}
    lines = [
        f"hostile text: a normal ticket ({normal_chars:,.0f} chars) {normal * 1e3:.2f} ms; "
        f"a normal 64 KiB ticket {baseline['triage'] * 1e3:.1f} ms (triage), "
        f"{baseline['detector'] * 1e3:.1f} ms (injection detector); goal < {GOAL:.0f}x"
    ]
    worst = 0.0
    for name, text in HOSTILE.items():
        triage = _best(_triage("[", text))
        detect = _best(_detect(text))
        ratio = max(triage / baseline["triage"], detect / baseline["detector"])
        worst = max(worst, ratio)
        per_kib = (triage / (len(text) / 1024)) / (normal / (normal_chars / 1024))
        lines.append(
            f"  {name:24} triage {triage * 1e3:7.1f} ms ({triage / baseline['triage']:4.1f}x), "
            f"detector {detect * 1e3:6.1f} ms ({detect / baseline['detector']:4.1f}x); "
            f"{per_kib:4.1f}x a normal ticket's cost per KiB"
        )
    verdict = "met" if worst < GOAL else "MISSED"
    lines.append(f"  worst: {worst:.1f}x a normal 64 KiB ticket (goal < {GOAL:.0f}x: {verdict})")
    return "\n".join(lines)
