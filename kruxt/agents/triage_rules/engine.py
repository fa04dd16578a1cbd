"""Scoring: every category's table against the ticket, the winner, its confidence and texts.

The tables live in the category modules; this module only combines them.
"""

from __future__ import annotations

# The module, not its names: the severity policy reads this package's text helpers, so either
# may be imported first.
from kruxt.agents import severity_policy
from kruxt.agents.triage_rules import (
    auth_login,
    billing_invoice,
    class_booking_waitlist,
    feed_moderation,
    integration_sync,
    out_of_scope,
    privacy_request_status,
    workout_log_submit,
)
from kruxt.agents.triage_rules.injection import strip_injections
from kruxt.agents.triage_rules.out_of_scope import NO_PLAYBOOK_RULES, OUT_OF_SCOPE_RULES
from kruxt.agents.triage_rules.rules import CategoryText, Rule
from kruxt.agents.triage_rules.severity import severity_of
from kruxt.agents.triage_rules.text import snippet, view
from kruxt.models.catalog import playbook_for
from kruxt.models.defects import looks_like_defect
from kruxt.models.enums import Category, Priority
from kruxt.models.triage import TriageInput, TriageResult

__all__ = ["ANSWER_ONLY_CATEGORIES", "CATEGORY_RULES", "CATEGORY_TEXT", "triage_by_rules"]

# A category needs at least this score to be chosen over ``other``: one strong phrase, or two
# weaker signals together. A single generic word ("class", "posts") is not enough on its own.
MIN_SCORE = 2.0
# Matches in the subject weigh this much more: customers put the gist of the problem there.
SUBJECT_BOOST = 1.25
# A score at or above this counts as fully saturated when computing confidence.
SATURATION_SCORE = 6.0
MAX_CONFIDENCE = 0.95
INJECTION_CONFIDENCE_CAP = 0.3
OTHER_CONFIDENCE_EMPTY = 0.3  # nothing matched: probably out of scope
OTHER_CONFIDENCE_WEAK = 0.2  # something weak matched: ambiguous, a human should look
# An out-of-scope score this high makes the ticket a P4 whatever failure words it holds:
# "found 27 SEO errors on your site" is a sales pitch, not an incident.
OUT_OF_SCOPE_P4_SCORE = 2.5

# Each category's table, in tie-break order: sorted() is stable, so a tie goes to the
# category listed first.
CATEGORY_RULES: dict[Category, tuple[Rule, ...]] = {
    Category.AUTH_LOGIN: auth_login.RULES,
    Category.WORKOUT_LOG_SUBMIT: workout_log_submit.RULES,
    Category.FEED_MODERATION: feed_moderation.RULES,
    Category.CLASS_BOOKING_WAITLIST: class_booking_waitlist.RULES,
    Category.INTEGRATION_SYNC: integration_sync.RULES,
    Category.PRIVACY_REQUEST_STATUS: privacy_request_status.RULES,
    Category.BILLING_INVOICE: billing_invoice.RULES,
}
CATEGORY_TEXT: dict[Category, CategoryText] = {
    Category.AUTH_LOGIN: auth_login.TEXT,
    Category.WORKOUT_LOG_SUBMIT: workout_log_submit.TEXT,
    Category.FEED_MODERATION: feed_moderation.TEXT,
    Category.CLASS_BOOKING_WAITLIST: class_booking_waitlist.TEXT,
    Category.INTEGRATION_SYNC: integration_sync.TEXT,
    Category.PRIVACY_REQUEST_STATUS: privacy_request_status.TEXT,
    Category.BILLING_INVOICE: billing_invoice.TEXT,
    Category.OTHER: out_of_scope.TEXT,
}

# Categories whose usual ticket is a question: their own texts already fit a P4.
ANSWER_ONLY_CATEGORIES = frozenset({Category.PRIVACY_REQUEST_STATUS, Category.OTHER})


def _rules_score(rules: tuple[Rule, ...], subject: bytes, body: bytes) -> float:
    """Every matching rule counts once, a bit more in the subject."""
    total = 0.0
    for rule in rules:
        if rule.pattern.search(subject):
            total += rule.weight * SUBJECT_BOOST
        elif rule.pattern.search(body):
            total += rule.weight
    return total


def _score(subject: bytes, body: bytes) -> dict[Category, float]:
    """Each category's score."""
    return {
        category: _rules_score(rules, subject, body) for category, rules in CATEGORY_RULES.items()
    }


def _confidence(best: float, second: float) -> float:
    """Higher for a strong score and a clear lead over the runner-up."""
    strength = min(1.0, best / SATURATION_SCORE)
    margin = max(0.0, best - second) / best
    return min(MAX_CONFIDENCE, 0.3 + 0.35 * strength + 0.3 * margin)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _texts(category: Category, text: bytes) -> tuple[str, str, str]:
    """Label, root cause and action: the first hint that matches refines the defaults."""
    entry = CATEGORY_TEXT[category]
    for hint in entry.hints:
        if hint.pattern.search(text):
            return entry.label, hint.root_cause, hint.action or entry.action
    return entry.label, entry.root_cause, entry.action


def triage_by_rules(inp: TriageInput) -> TriageResult:
    """Triage a ticket with keyword rules: category, severity, playbook and confidence.

    Args:
        inp: the ticket; its subject and body are untrusted text.

    Returns:
        A complete TriageResult; ``other`` with no playbook when no category scores enough
        or the ticket reads as out of scope.
    """
    subject, subject_injection = strip_injections(view(inp.subject))
    body, body_injection = strip_injections(view(inp.body))
    injection = subject_injection or body_injection

    scores = _score(subject, body)
    out_of_scope = _rules_score(OUT_OF_SCOPE_RULES, subject, body)
    other = out_of_scope + _rules_score(NO_PLAYBOOK_RULES, subject, body)
    # sorted() is stable: a tie goes to the category listed first in CATEGORY_RULES.
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    (best_category, best), (_, second) = ranked[0], ranked[1]
    if best >= MIN_SCORE and best > other:
        category = best_category
        confidence = _confidence(best, max(second, other))
    else:
        category = Category.OTHER
        confidence = OTHER_CONFIDENCE_EMPTY if best == 0 else OTHER_CONFIDENCE_WEAK

    text = subject + b"\n" + body
    severity = severity_of(
        text, category is Category.OTHER and out_of_scope >= OUT_OF_SCOPE_P4_SCORE
    )
    # The policy every triager's answer goes through, applied before the texts are written so
    # that they name the final severity.
    floor, floor_reasons = severity_policy.floor_of(text, category)
    if floor is not None and floor.rank < severity.rank:
        severity = floor
    confidence = severity_policy.privacy_confidence(text, category, confidence)
    label, root_cause, action = _texts(category, text)
    if severity is Priority.P4 and category not in ANSWER_ONLY_CATEGORIES:
        root_cause = f"A question or request about {label.lower()}; no failure reported"
        action = f"Answer from the knowledge base; if a failure turns up: {_lower_first(action)}"
    summary = f'{label} ({severity.value}): "{snippet(inp.subject, inp.body)}".'
    if severity is Priority.P1:
        action = f"Open an incident and check whether other users are hit. {action}"
    if injection:
        confidence = min(confidence, INJECTION_CONFIDENCE_CAP)
        summary = f"Suspected prompt injection; a human must review. {summary}"
        root_cause = (
            "Suspected prompt injection: the ticket contains instructions aimed at the support "
            f"automation. Otherwise: {root_cause}"
        )
        action = (
            "Human review first; treat the ticket text as untrusted and take no action it asks "
            f"for. Then: {action}"
        )

    return TriageResult(
        summary=summary,
        severity=severity,
        category=category,
        playbook=playbook_for(category),
        probable_root_cause=root_cause,
        recommended_action=action,
        confidence=round(confidence, 2),
        severity_floor_reasons=floor_reasons,
        # Our own cause texts decide, never the ticket's words; injected tickets file nothing.
        product_defect=looks_like_defect(severity, root_cause) and not injection,
    )
