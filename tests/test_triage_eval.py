"""The evaluation command: dataset loading, the scores, the report and the release bar."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from kruxt.agents.evaluation import (
    EvalReport,
    LabeledTicket,
    evaluate,
    load_dataset,
    render_report,
)
from kruxt.agents.triage_rules import triage_by_rules
from kruxt.models.catalog import playbook_for
from kruxt.models.enums import Category, Priority
from kruxt.models.triage import TriageInput, TriageResult
from kruxt.starter.eval_cli import add_eval_parser, default_triager, run_eval

DATASET = Path(__file__).parent / "data" / "triage_eval.jsonl"

# The release bar: the rules triager on the labeled dataset.
MIN_CATEGORY_ACCURACY = 0.80


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="kruxt")
    add_eval_parser(root.add_subparsers(dest="command", required=True))
    return root


def line(**fields: object) -> str:
    ticket: dict[str, object] = {
        "id": "x1",
        "subject": "Can't log in",
        "body": "It says my password is wrong.",
        "expected_category": "auth_login",
        "expected_severity": "P2",
        "out_of_scope": False,
        "injection": False,
    }
    ticket.update(fields)
    return json.dumps(ticket)


# The second set was written later, blind to the rules, in other styles (chat fragments,
# forwarded mail, managers and coaches writing): its first score was 83.8%.
DATASETS = [DATASET, Path(__file__).parent / "data" / "triage_eval_2.jsonl"]


@pytest.fixture(scope="module", params=DATASETS, ids=lambda p: p.stem)
def rules_report(request: pytest.FixtureRequest) -> EvalReport:
    path: Path = request.param
    return evaluate(load_dataset(path), triage_by_rules)


# The dataset.


def test_dataset_loads_with_enough_tickets_of_every_category() -> None:
    tickets = load_dataset(DATASET)
    assert len(tickets) >= 150
    assert {t.expected_category for t in tickets} == set(Category)
    assert len({t.id for t in tickets}) == len(tickets)
    assert any(t.out_of_scope for t in tickets)
    assert any(t.injection for t in tickets)


# The release bar.


def test_rules_triager_reaches_the_category_accuracy_bar(rules_report: EvalReport) -> None:
    assert rules_report.category_accuracy >= MIN_CATEGORY_ACCURACY, render_report(rules_report)


def test_rules_triager_sends_every_out_of_scope_ticket_to_a_human(
    rules_report: EvalReport,
) -> None:
    assert rules_report.out_of_scope_total > 0
    assert rules_report.out_of_scope_to_human == rules_report.out_of_scope_total


def test_rules_triager_sends_every_injection_ticket_to_a_human(rules_report: EvalReport) -> None:
    assert rules_report.injection_total > 0
    assert rules_report.injection_to_human == rules_report.injection_total


def test_default_triager_is_the_rules() -> None:
    assert default_triager() is triage_by_rules


# evaluate() on a tiny dataset whose scores are worked out by hand.

# id: (expected category, expected severity, out of scope, injection,
#      predicted category, predicted severity, confidence)
TINY = {
    "a": (Category.AUTH_LOGIN, "P2", False, False, Category.AUTH_LOGIN, "P2", 0.5),
    "b": (Category.AUTH_LOGIN, "P3", False, False, Category.BILLING_INVOICE, "P4", 0.5),
    "c": (Category.BILLING_INVOICE, "P2", False, False, Category.BILLING_INVOICE, "P1", 0.5),
    "d": (
        Category.PRIVACY_REQUEST_STATUS,
        "P4",
        False,
        False,
        Category.PRIVACY_REQUEST_STATUS,
        "P4",
        0.9,
    ),
    "e": (Category.OTHER, "P4", True, False, Category.OTHER, "P4", 0.3),
    "f": (Category.OTHER, "P4", True, True, Category.PRIVACY_REQUEST_STATUS, "P1", 0.9),
}


def tiny_dataset() -> list[LabeledTicket]:
    return [
        LabeledTicket(
            id=ticket_id,
            subject=ticket_id,
            body="",
            expected_category=category,
            expected_severity=Priority(severity),
            out_of_scope=out_of_scope,
            injection=injection,
        )
        for ticket_id, (category, severity, out_of_scope, injection, *_) in TINY.items()
    ]


def fake_triage(inp: TriageInput) -> TriageResult:
    *_, category, severity, confidence = TINY[inp.subject]
    return TriageResult(
        summary="s",
        severity=Priority(severity),
        category=category,
        playbook=playbook_for(category),
        probable_root_cause="r",
        recommended_action="a",
        confidence=confidence,
    )


def test_evaluate_scores_a_tiny_dataset_as_computed_by_hand() -> None:
    report = evaluate(tiny_dataset(), fake_triage)

    assert report.n == 6
    # Right category: a, c, d, e.
    assert report.category_correct == 4
    assert report.category_accuracy == pytest.approx(4 / 6)
    # Same severity: a, d, e. One level off at most: also b (P3/P4) and c (P2/P1); f is 3 off.
    assert report.severity_exact_accuracy == pytest.approx(3 / 6)
    assert report.severity_within_one_accuracy == pytest.approx(5 / 6)

    metrics = {m.category: m for m in report.per_category}
    assert set(metrics) == set(Category)
    auth = metrics[Category.AUTH_LOGIN]  # expected a, b; predicted a
    assert (auth.support, auth.predicted, auth.correct) == (2, 1, 1)
    assert (auth.precision, auth.recall) == (1.0, 0.5)
    billing = metrics[Category.BILLING_INVOICE]  # expected c; predicted b, c
    assert (billing.support, billing.predicted, billing.correct) == (1, 2, 1)
    assert (billing.precision, billing.recall) == (0.5, 1.0)
    privacy = metrics[Category.PRIVACY_REQUEST_STATUS]  # expected d; predicted d, f
    assert (privacy.precision, privacy.recall) == (0.5, 1.0)
    other = metrics[Category.OTHER]  # expected e, f; predicted e
    assert (other.support, other.predicted, other.correct) == (2, 1, 1)
    assert (other.precision, other.recall) == (1.0, 0.5)
    workout = metrics[Category.WORKOUT_LOG_SUBMIT]  # never expected, never predicted
    assert (workout.support, workout.predicted, workout.precision, workout.recall) == (
        0,
        0,
        None,
        None,
    )

    # To a human: the low-confidence a, b, c and e (no playbook); d and f are confident
    # read-only privacy answers, auto-replied.
    assert report.to_human == 4
    assert (report.out_of_scope_total, report.out_of_scope_to_human) == (2, 1)
    assert (report.injection_total, report.injection_to_human) == (1, 0)
    assert [m.id for m in report.mistakes] == ["b", "f"]
    assert report.mistakes[1].predicted_category is Category.PRIVACY_REQUEST_STATUS


def test_evaluate_refuses_an_empty_dataset() -> None:
    with pytest.raises(ValueError, match="no tickets"):
        evaluate([], fake_triage)


def test_render_report_is_an_aligned_table() -> None:
    lines = render_report(evaluate(tiny_dataset(), fake_triage)).splitlines()
    assert "  category accuracy        4/6  (66.7%)" in lines
    assert "  out of scope to a human  1/2  (50.0%)" in lines
    header = next(i for i, text in enumerate(lines) if text.split()[:2] == ["category", "support"])
    table = lines[header : header + 2 + len(Category)]
    # One row per category, every row as wide as the header: the columns line up.
    assert [row.split()[0] for row in table[2:]] == [c.value for c in Category]
    assert len({len(row) for row in table}) == 1
    assert "  auth_login                    2          1        1     100.0%   50.0%" in table
    assert "  b  expected auth_login, got billing_invoice" in lines


# load_dataset() errors.


def test_a_malformed_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(line(id="x1") + "\n\n" + '{"id": "x2", "subject": \n')
    with pytest.raises(ValueError, match=r"line 3: not valid JSON"):
        load_dataset(path)


def test_an_invalid_label_is_named_with_its_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(line(id="x1") + "\n" + line(id="x2", expected_category="sales") + "\n")
    with pytest.raises(ValueError, match=r"line 2: expected_category"):
        load_dataset(path)


def test_a_repeated_id_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(line(id="x1") + "\n" + line(id="x1") + "\n")
    with pytest.raises(ValueError, match=r"line 2: id 'x1' already used on line 1"):
        load_dataset(path)


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n")
    with pytest.raises(ValueError, match="no tickets"):
        load_dataset(path)


# The command.


def test_run_eval_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    args = parser().parse_args(["eval", "triage", "--dataset", str(DATASET)])
    assert run_eval(args) == 0
    out = capsys.readouterr().out
    assert "Triage evaluation" in out
    assert "category accuracy" in out
    assert "precision" in out and "recall" in out
    for category in Category:
        assert category.value in out


def test_run_eval_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = parser().parse_args(["eval", "triage", "--dataset", str(DATASET), "--json"])
    assert run_eval(args) == 0
    report = EvalReport.model_validate_json(capsys.readouterr().out)
    assert report.n == len(load_dataset(DATASET))


def test_run_eval_names_the_bad_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(line(id="x1") + "\n" + line(id="x2") + "\n" + "not json\n")
    args = parser().parse_args(["eval", "triage", "--dataset", str(path)])
    assert run_eval(args) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert "\n" not in err
    assert "line 3" in err


def test_run_eval_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = parser().parse_args(["eval", "triage", "--dataset", str(tmp_path / "nope.jsonl")])
    assert run_eval(args) == 1
    assert "not found" in capsys.readouterr().err


def test_bad_arguments_exit_2() -> None:
    with pytest.raises(SystemExit) as missing_dataset:
        parser().parse_args(["eval", "triage"])
    assert missing_dataset.value.code == 2
    with pytest.raises(SystemExit) as missing_target:
        parser().parse_args(["eval"])
    assert missing_target.value.code == 2
    assert run_eval(argparse.Namespace(command="eval", eval_command=None)) == 2
