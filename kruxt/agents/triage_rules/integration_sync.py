"""The ``integration_sync`` category: its weighted patterns and the texts it writes."""

from __future__ import annotations

from kruxt.agents.triage_rules.fragments import APPLE_HEALTH, GARMIN, NOT_FLOWING, SYNC
from kruxt.agents.triage_rules.rules import CategoryText, Hint, Rule, any_of, raw_rule, rule, rx

__all__ = ["RULES", "TEXT"]

_ACTIVITY = any_of(
    r"runs?|rides?|swims?|walks?|hikes?|activities|activity|steps|heart rate|hr|calories",
    r"sleep|power data|distance|pace|corridas|carreras|entrenamientos|treinos|aktivitaten",
    r"activites|attivita|workouts?",
)

RULES: tuple[Rule, ...] = (
    rule(3.0, GARMIN),
    rule(3.0, APPLE_HEALTH),
    raw_rule(3.0, r"\bhealth\s*>\s*\w+"),
    rule(
        2.5,
        r"health connect|google fit|samsung health|strava|fitbit|whoop|oura|polar|wahoo",
        r"suunto|coros|zwift|peloton",
    ),
    rule(
        2.5,
        r"apple watch|smart ?watch|wear ?os|watch ?os|fitness tracker|wearable",
        r"bike computer|cycling computer|reloj|relogio|montre|orologio|sportuhr|laufuhr",
    ),
    rule(
        2.0,
        r"(?:from|via|through|on|with) (?:my |the )?(?:watch|tracker|wearable|bike computer"
        r"|reloj|relogio|montre|orologio|uhr)",
    ),
    rule(3.0, rf"(?:{_ACTIVITY})\s+(?:\w+\s+)?(?:{NOT_FLOWING})"),
    rule(
        2.5,
        rf"(?:not|stopped|never|isnt|wont|doesnt|no|nao|nothing|zero) (?:{SYNC})",
        r"sync (?:error|fail\w*|issue|problem|broken)",
        rf"(?:{_ACTIVITY}) (?:have |has )?(?:come|comes|came) (?:through|thru|across|over|in)",
    ),
    rule(2.0, SYNC),
    rule(
        2.0,
        r"(?:re|dis)?connect\w* (?:my |the )?(?:watch|device|account|tracker|app|phone)",
        r"integrations?|connected apps|third[\s-]?party|invalid_grant|data sources?",
        r"connected|connection (?:\w+ )?(?:broken|lost|failed|error)|reconnect\w*",
    ),
    rule(1.5, r"re-?auth\w*|reauthori[sz]e|permissions?|authori[sz]\w*"),
    rule(
        1.0,
        r"watch|device|tracker|import(?:ed|ing|s)?|heart rate|steps|calories|rides?|runs",
        r"heart rate (?:monitor|strap)|chest strap|hr strap|power meter",
        r"power data|conectad\w*|conexao|verbindung|verbunden|collegat\w*",
    ),
)

TEXT = CategoryText(
    "Integration sync failure",
    "Expired Apple Health / Garmin authorization or a stuck sync cursor",
    "Check connection, token expiry and last sync error; propose a cursor reset and resync "
    "or a re-auth prompt for approval",
    (
        Hint(
            rx(APPLE_HEALTH, r"apple watch"),
            "Apple Health permissions revoked or background sync paused on the phone",
            "Check the Apple Health connection and last sync error; propose a cursor reset "
            "and resync, or a re-auth prompt, for approval",
        ),
        Hint(
            rx(GARMIN),
            "Expired Garmin Connect authorization or a stuck sync cursor",
            "Check the Garmin connection, token expiry and last sync error; propose a cursor "
            "reset and resync, or a re-auth prompt, for approval",
        ),
    ),
)
