"""The deterministic rules triager: keyword and regex rules in place of an LLM.

This module is the public API (``triage_by_rules``, ``RULES_VERSION``, the injection detector,
the tables, and the severity ladder's tables as ``severity``); the rules themselves live one
module per concern, listed below.

It is the embedded default (no LLM configured) and the fallback when the LLM fails. Every
category has a table of weighted patterns; the best-scoring category wins and the margin over
the runner-up decides the confidence. Two more tables speak for ``other``: requests that are
not app support at all (hardware repairs, writing requests, sales pitches, nutrition or medical
advice ...) and app areas no playbook covers (notifications, themes, feature requests ...). A
category wins only when its score clears MIN_SCORE *and* beats the ``other`` score, so a weak
match in an otherwise out-of-scope ticket goes to a human.

Customers write in English mixed with Spanish, Portuguese, German, French and Italian, with
typos; the text is accent-folded before matching, so the patterns are plain ASCII.

Severity comes from a ladder of tables: P1 (outage, data loss, exposure, many users), then
questions (P4), then "no workaround" (P2), "has a workaround" (P3), core function broken (P2),
any other failure (P3); then the severity policy (``kruxt.agents.severity_policy``), which
every triager's answer goes through, raises it to its floor and records why. The ticket text
is untrusted: text that talks to the automation instead of describing a problem is cut out
before scoring, caps the confidence and is flagged for a human. It never triggers anything else.

Layout:

- ``auth_login``, ``workout_log_submit``, ``feed_moderation``, ``class_booking_waitlist``,
  ``integration_sync``, ``privacy_request_status``, ``billing_invoice``: one category each,
  its weighted patterns (``RULES``) and the texts it writes (``TEXT``, with its hints).
- ``out_of_scope``: the two tables that speak for ``other``, and its texts.
- ``severity``: the severity tables and the ladder that reads them.
- ``injection``: prompt-injection idioms and the detector that cuts them out.
- ``fragments``: the regex fragments several tables share; ``rules``: the table building
  blocks (``Rule``, ``Hint``, ``rule()``, ``rx()`` ...), all compiled on RE2 through
  ``kruxt.agents.patterns``.
- ``text``: normalisation, the ASCII view the patterns read, the summary's quote.
- ``engine``: scoring, the category registry (in tie-break order) and ``triage_by_rules``.

A new category's rules go in a new module here, registered in ``engine.CATEGORY_RULES`` and
``engine.CATEGORY_TEXT``.
"""

from __future__ import annotations

from kruxt.agents.triage_rules import severity
from kruxt.agents.triage_rules.engine import (
    ANSWER_ONLY_CATEGORIES,
    CATEGORY_RULES,
    CATEGORY_TEXT,
    INJECTION_CONFIDENCE_CAP,
    MAX_CONFIDENCE,
    MIN_SCORE,
    OTHER_CONFIDENCE_EMPTY,
    OTHER_CONFIDENCE_WEAK,
    OUT_OF_SCOPE_P4_SCORE,
    SATURATION_SCORE,
    SUBJECT_BOOST,
    triage_by_rules,
)
from kruxt.agents.triage_rules.injection import INJECTION_RULES, strip_injections
from kruxt.agents.triage_rules.out_of_scope import NO_PLAYBOOK_RULES, OUT_OF_SCOPE_RULES
from kruxt.agents.triage_rules.rules import CategoryText, Hint, Rule
from kruxt.agents.triage_rules.text import SHORT_SUBJECT_CHARS, SNIPPET_CHARS, normalize, view

__all__ = [
    "ANSWER_ONLY_CATEGORIES",
    "CATEGORY_RULES",
    "CATEGORY_TEXT",
    "INJECTION_CONFIDENCE_CAP",
    "INJECTION_RULES",
    "MAX_CONFIDENCE",
    "MIN_SCORE",
    "NO_PLAYBOOK_RULES",
    "OTHER_CONFIDENCE_EMPTY",
    "OTHER_CONFIDENCE_WEAK",
    "OUT_OF_SCOPE_P4_SCORE",
    "OUT_OF_SCOPE_RULES",
    "RULES_VERSION",
    "SATURATION_SCORE",
    "SHORT_SUBJECT_CHARS",
    "SNIPPET_CHARS",
    "SUBJECT_BOOST",
    "CategoryText",
    "Hint",
    "Rule",
    "normalize",
    "severity",
    "strip_injections",
    "triage_by_rules",
    "view",
]

RULES_VERSION = "rules-v4"

# The names the tests and benches have always called these helpers by.
_normalize = normalize
_view = view
_strip_injections = strip_injections
