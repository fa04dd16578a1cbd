"""The deterministic rules triager: keyword and regex rules in place of an LLM.

It is the embedded default (no LLM configured) and the fallback when the LLM fails. Every
category has a table of weighted patterns; the best-scoring category wins and the margin over
the runner-up decides the confidence. Severity comes from a second table, checked from P1 down.
The ticket text is untrusted: text that talks to the automation instead of describing a
problem is cut out before scoring, caps the confidence and is flagged for a human. It never
triggers anything else.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from kruxt.models.catalog import playbook_for
from kruxt.models.enums import Category, Priority
from kruxt.models.triage import TriageInput, TriageResult

__all__ = ["RULES_VERSION", "triage_by_rules"]

RULES_VERSION = "rules-v1"

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
# How much ticket text the summary may quote.
SNIPPET_CHARS = 120
# A subject shorter than this says little on its own ("Help", "urgent"): quote the body too.
SHORT_SUBJECT_CHARS = 40


@dataclass(frozen=True)
class Rule:
    """A pattern and the weight it adds to a category's score when it matches."""

    pattern: re.Pattern[str]
    weight: float


def _any(*alternatives: str) -> str:
    """One pattern matching any of the alternatives."""
    return "|".join(f"(?:{a})" for a in alternatives)


def _rx(*alternatives: str) -> re.Pattern[str]:
    """Compile alternatives to match whole words only, case-insensitively."""
    return re.compile(rf"\b(?:{_any(*alternatives)})\b", re.IGNORECASE)


def _rule(weight: float, *alternatives: str) -> Rule:
    return Rule(_rx(*alternatives), weight)


# Fragments shared by the tables. Apostrophes are removed before matching ("can't" -> "cant"),
# so the patterns spell contractions without them.
_NEG = _any(
    r"cant|cannot|can not|cnat|cannt|couldnt|could not|unable to|not able to",
    r"(?:wont|doesnt|does not|didnt|will not) let me",
    r"nobody can|no one can|noone can|none of us can|members cant",
)
_LOGIN = _any(
    r"log+(?:ing|ed)?[\s-]*(?:in|on)|log+in|logon",
    r"sign(?:ing|ed)?[\s-]*(?:in|on)|signin|sing[\s-]?in",
)
_WORKOUT = _any(
    r"workouts?|wor?kouts?|wokrouts?|workuots?|wrkouts?|work outs?",
    r"trainings?|training sessions?|exercises?|lifts?",
)
_CREDENTIAL = r"password|pasword|passwrod|passowrd|passwd|paswrd|pwd|pword|pw"
_WAITLIST = r"wait[\s-]?list|waitlsit|waitlits|wiatlist|watilist|waitinglist|waiting list"
_GARMIN = r"garmin|garmn|garmim|gramin|garmon|garmen"
_APPLE_HEALTH = r"ap+le?[\s-]*heal?th|health[\s-]?kit|health app|apple fitness"
_NOT_FLOWING = (
    r"(?:not|arent|isnt|wont|dont|doesnt|didnt|never|stopped|no longer)\s+(?:\w+\s+)?"
    r"(?:show(?:ing)?(?: up)?|appear(?:ing)?|import(?:ing)?|sync(?:ing)?|transfer(?:ring)?"
    r"|com(?:e|ing)(?: through| over| in)?|pull(?:ing)?|updat(?:e|ing)|upload(?:ing)?)"
)
_GONE = r"gone|lost|deleted|missing|disappeared|vanished|wiped|erased"
_TWICE = r"twice|two times|2 times|double|multiple times|three times"

CATEGORY_RULES: dict[Category, tuple[Rule, ...]] = {
    Category.AUTH_LOGIN: (
        _rule(3.0, rf"(?:{_NEG})\s+(?:\w+\s+)?(?:{_LOGIN})"),
        _rule(
            3.0, r"(?:cant|cannot|can not|unable to|couldnt) (?:get into|access) (?:my )?account"
        ),
        _rule(
            3.0,
            r"locked out|lock(?:ed)? me out",
            r"account (?:is |got |was |has been )?(?:locked|lock)",
        ),
        _rule(2.5, r"lockout|too many (?:failed )?(?:attempts|tries|login attempts)"),
        _rule(
            3.0,
            rf"(?:forgot|forgotten|reset|resetting|change|changing|wrong|incorrect) "
            rf"(?:my )?(?:{_CREDENTIAL})",
        ),
        _rule(1.5, rf"(?:{_CREDENTIAL})(?: reset)?(?: email| link)?"),
        _rule(
            2.5,
            rf"(?:{_LOGIN})[\s-]*(?:issue|problem|error|fail\w*|loop|broken|page|screen)",
            rf"(?:{_LOGIN}) (?:is )?not working",
        ),
        _rule(
            2.5,
            r"invalid (?:credentials|login|email or password)",
            r"incorrect (?:email|credentials)",
        ),
        _rule(
            2.0,
            r"verification (?:email|code|link|mail)|verify (?:my )?(?:email|account)",
            r"confirm(?:ation)? (?:my )?email|email (?:not )?verified|unverified",
        ),
        _rule(
            2.0,
            r"2fa|two[\s-]?factor|mfa|otp|one[\s-]?time (?:code|password)",
            r"magic link|reset link|login code|sign[\s-]?in code",
        ),
        _rule(1.5, r"sign in with (?:apple|google)|face ?id|touch ?id"),
        _rule(
            2.5,
            r"(?:keeps?|kept) (?:logging|signing|kicking) me out",
            r"(?:logs|logged|signs|kicks) me out",
            r"(?:getting|got|get|gets|being) (?:logged|signed|kicked) out",
        ),
        _rule(1.5, r"session (?:expired|timed out|keeps expiring)"),
        _rule(
            2.0,
            r"hacked|unknown (?:device|login)",
            r"someone (?:else )?(?:logged|signed) in(?:to)?",
            r"someone (?:else )?(?:is )?using my account",
        ),
        _rule(1.0, _LOGIN),
    ),
    Category.WORKOUT_LOG_SUBMIT: (
        _rule(
            3.0,
            rf"(?:{_WORKOUT})\s+(?:\w+\s+){{0,3}}?"
            r"(?:wont|will not|doesnt|does not|didnt|did not|isnt|is not|not|never|failed to"
            r"|fails to|cant|wouldnt)\s+(?:get\s+)?(?:be\s+)?"
            r"(?:save[ds]?|saving|submit\w*|log(?:ged|ging)?|record\w*|finish\w*|post\w*)",
        ),
        _rule(
            3.0,
            rf"(?:{_NEG})\s+(?:\w+\s+)?(?:save|submit|log|record|finish|add)\s+(?:\w+\s+)?"
            rf"(?:{_WORKOUT}|sets?|reps)",
        ),
        _rule(
            2.0,
            r"(?:save|saving|submit|submitting|log|logging|loggin|record|recording|finish|finishing)"
            rf"\s+(?:my\s+|a\s+|the\s+|this\s+|todays\s+|last\s+)?(?:{_WORKOUT})",
        ),
        _rule(
            2.0,
            r"(?:failed|error|problem|stuck) (?:to |when |while |on )?(?:sav|submitt)ing",
            r"(?:save|submit|submission|upload) (?:failed|fails|error|button)|finish button",
            r"stuck on (?:saving|submitting|finishing)",
            r"tap(?:ped)? (?:on )?(?:save|finish|submit)",
        ),
        _rule(
            3.0,
            rf"(?:{_WORKOUT}|sets|history|logs?|progress|prs?)\s+(?:\w+\s+)?"
            rf"(?:are |is |were |was |have |has )?(?:been )?(?:{_GONE})",
        ),
        _rule(2.5, rf"lost (?:my |all (?:of )?my |todays )?(?:{_WORKOUT}|sets|logs)"),
        _rule(1.5, r"workout (?:log|logger|history|summary|screen)|training log"),
        _rule(1.0, _WORKOUT),
        _rule(0.5, r"sets?|reps|personal (?:record|best)|prs?|bench|squat|deadlift|rpe"),
    ),
    Category.FEED_MODERATION: (
        _rule(
            3.0,
            r"(?:post|photo|comment|video)s? (?:\w+ )?"
            r"(?:was |were |got |has been |have been |been )?"
            r"(?:removed|hidden|deleted|taken down|flagged|hid)",
            r"(?:removed|hid|deleted|took down|flagged|hiding) my (?:post|photo|comment|video)s?",
        ),
        _rule(3.0, r"shadow[\s-]?bann?(?:ed)?|shadowban\w*"),
        _rule(
            2.5,
            r"report(?:ed|ing)? (?:a |this |the |his |her |their |that )?"
            r"(?:post|user|comment|account|profile|person|photo)",
        ),
        _rule(
            2.5,
            r"block(?:ed|ing)? (?:a |this |the |that )?"
            r"(?:user|person|someone|him|her|them|me|account)",
            r"(?:i|we) blocked|blocked (?:user|list)|unblock\w*",
        ),
        _rule(
            2.0,
            r"harass\w*|bully\w*|abusive|spam\w*|inappropriate|offensive|hate speech",
            r"nudity|creep\w*|stalk\w*|threat\w*",
        ),
        _rule(2.5, r"community (?:guidelines|rules|standards)|moderat(?:or|ors|ion|ed)"),
        _rule(2.0, r"feed|timeline|content policy"),
        _rule(
            1.5,
            r"(?:posts?|comments?) (?:are |is )?(?:not )?(?:visible|showing|public|private)",
            r"visibility",
        ),
        _rule(1.0, r"reported|reports?"),
        _rule(1.0, r"posts?|comments?|followers?|unfollow\w*|kudos"),
    ),
    Category.CLASS_BOOKING_WAITLIST: (
        _rule(3.0, _WAITLIST),
        _rule(
            3.0,
            r"book(?:ed|ing)? (?:a |the |my |this |that |into (?:a |the )?)?"
            r"(?:class|spot|session|slot)",
            r"(?:class|session) (?:booking|reservation|is full|was full|shows full|full)",
        ),
        _rule(2.5, r"cancel(?:led|ed|ing)? (?:my |a |the )?(?:class|booking|reservation|spot)"),
        _rule(
            2.5,
            r"double[\s-]?booked|overbooked|not booked|unbooked",
            r"spot (?:was |got )?(?:taken|given)",
        ),
        _rule(2.0, r"(?:got |was |been )?promoted|position (?:in|on) (?:the )?(?:list|queue)"),
        _rule(1.5, r"reserv(?:e|ed|ation|ations)|bookings?|booked|book"),
        _rule(
            1.5,
            r"class(?:es)?|capacity|spots? (?:left|open|available)",
            r"late cancel\w*|no[\s-]?show",
        ),
        _rule(
            0.5,
            r"spin|yoga|hiit|bootcamp|pilates|crossfit|barre|zumba",
            r"instructor|timetable|schedule",
        ),
    ),
    Category.INTEGRATION_SYNC: (
        _rule(3.0, _GARMIN),
        _rule(3.0, _APPLE_HEALTH),
        _rule(
            2.5,
            r"health connect|google fit|strava|fitbit|whoop|oura|polar|wahoo|suunto|coros|zwift",
        ),
        _rule(2.5, r"apple watch|smart ?watch|wear ?os|watch ?os|fitness tracker|wearable"),
        _rule(
            3.0,
            r"(?:runs?|rides?|swims?|walks?|activities|activity|steps|heart rate|hr|calories|sleep)"
            rf"\s+(?:\w+\s+)?(?:{_NOT_FLOWING})",
        ),
        _rule(
            2.5,
            r"(?:not|stopped|never|isnt|wont|doesnt) (?:sync|syncing|synching|synced)",
            r"sync (?:error|fail\w*|issue|problem|broken)",
        ),
        _rule(2.0, r"sync(?:s|ed|ing)?|synch\w*|sinc(?:ing)?|synk\w*"),
        _rule(
            2.0,
            r"(?:re)?connect\w* (?:my |the )?(?:watch|device|account|tracker|app)",
            r"integrations?|connected apps|third[\s-]?party",
        ),
        _rule(1.5, r"re-?auth\w*|reauthori[sz]e|permissions? for health"),
        _rule(1.0, r"watch|device|tracker|import(?:ed|ing|s)?|heart rate|steps"),
    ),
    Category.PRIVACY_REQUEST_STATUS: (
        _rule(
            3.0,
            r"privacy request|data request|gdpr|ccpa|dsar|subject access request",
            r"right to (?:be forgotten|erasure|access)",
        ),
        _rule(
            3.0,
            r"delete (?:my |the )?(?:whole |entire )?account|close my account",
            r"account deletion|deletion request",
        ),
        _rule(
            3.0,
            r"(?:delete|erase|remove|wipe|purge) (?:all )?(?:of )?(?:my|our) "
            r"(?:data|information|info|personal \w+)",
            r"erase|erasure|forget (?:about )?me|everything (?:you have )?(?:on|about) me",
        ),
        _rule(
            3.0,
            r"data (?:you )?(?:have|hold|store|keep|collected?) (?:on|about) me",
            r"(?:export|download|copy) (?:of )?(?:all )?(?:my )?(?:data|information|account data)",
            r"data export|export request",
        ),
        _rule(2.0, r"personal (?:data|information|info)|data protection|privacy"),
        _rule(2.5, r"status of my (?:request|deletion|export)|my (?:deletion|export) request"),
        _rule(1.0, r"my data|deletion|exports?"),
    ),
    Category.BILLING_INVOICE: (
        _rule(
            3.5,
            rf"charged (?:me )?(?:{_TWICE})|charged again",
            r"double[\s-]?charged?|duplicate (?:charge|payment)",
        ),
        _rule(
            3.5,
            r"overcharged|charged (?:me )?(?:the )?wrong(?:ly)?|wrong(?:ly)? charged",
            r"charged (?:me )?after (?:i )?cancel\w*",
        ),
        _rule(3.0, r"invoices?|invoce|invioce|inovice|receipts?|reciepts?|receits?"),
        _rule(2.5, r"refunds?|refunded|chargeback"),
        _rule(2.5, r"cancel\w* (?:my |the )?(?:subscription|membership|plan|premium|renewal)"),
        _rule(
            2.5,
            r"paid (?:for|but)|card (?:was )?declined",
            r"payment (?:failed|declined|went through|issue|problem)",
        ),
        _rule(2.0, r"billing|billed|bill|charged?|charges"),
        _rule(1.5, r"subscription|subscribed|premium|renew(?:ed|al)?|trial|upgrade[ds]?"),
        _rule(
            1.0,
            r"payments?|paid|pay|credit card|debit card|apple pay|google pay|paypal|stripe|vat",
            r"price|pricing|membership fee|fees?|money",
        ),
    ),
}

# Text that addresses the automation instead of describing a problem. Matches are removed
# before scoring, cap the confidence and are flagged for a human. Nothing else happens.
INJECTION_RULES: tuple[re.Pattern[str], ...] = (
    _rx(
        r"(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+|the\s+|your\s+|my\s+)?"
        r"(?:previous\s+|prior\s+|above\s+|earlier\s+|other\s+|system\s+)?"
        r"(?:instructions?|rules|prompts?|directions|guidelines|guardrails)"
    ),
    # A role marker at the start of a line; "System: iOS 17" in a bug report is not one.
    re.compile(
        r"(?:^|\n)\s*(?:system|assistant|developer)\s*:"
        r"(?!\s*(?:ios|android|ipados|macos|windows|linux|wear ?os|watch ?os)\b)",
        re.IGNORECASE,
    ),
    re.compile(r"\[\s*(?:system|inst)\s*\]|<\s*/?\s*(?:system|instructions?)\s*>", re.IGNORECASE),
    _rx(r"you are now (?:an? |the |in |acting |my |no longer |free|unrestricted|dan)\w*"),
    _rx(r"(?:admin(?:istrator)?|developer|god|debug|root|dan|maintenance) mode"),
    _rx(r"as (?:the|an|a|your) (?:ai|bot|assistant|language model|llm|support (?:ai|bot|agent))"),
    _rx(
        r"mark (?:this|the|my) (?:ticket |case |issue )?(?:as )?"
        r"(?:resolved|closed|solved|done|approved)"
    ),
    _rx(
        r"(?:grant|give|make) (?:me|my account|this account|this user) (?:full )?"
        r"(?:admin\w*|root|superuser|staff|moderator)(?: (?:access|rights|role|permissions))?"
    ),
    _rx(r"unlock (?:all|every|everyones?|everybodys?|other) (?:the )?(?:accounts?|users?)"),
    _rx(r"refund (?:everyone|everybody|all (?:users|customers|members|accounts))"),
    _rx(
        r"(?:approve|execute|run|do) (?:this|it|the \w+) (?:automatically |now )?"
        r"without (?:any )?(?:human )?(?:approval|review)"
    ),
    _rx(r"(?:new|updated|hidden) instructions|system prompt|jailbreak\w*|prompt injection"),
)

# Severity: the first level whose patterns match wins (P1 is checked first). P3 needs a sign of
# something failing; a ticket with none is a question or a request: P4.
SEVERITY_RULES: tuple[tuple[Priority, re.Pattern[str]], ...] = (
    (
        Priority.P1,
        _rx(
            # Many users hit.
            r"everyone|everybody",
            r"all (?:of )?(?:our |the |my )?(?:members|users|clients|athletes|customers|accounts)",
            r"(?:whole|entire) (?:gym|box|studio|team|club|community)",
            r"all (?:of )?(?:our|the) (?:gyms|locations)",
            r"(?:nobody|no one|noone|none of (?:us|our members|my clients)) (?:can|is able|could)",
            r"(?:many|multiple|several|lots of|a lot of|dozens of|hundreds of) "
            r"(?:users|members|people|clients|athletes)",
            # Outage.
            r"(?:app|site|website|server|servers|service|kruxt|api|platform) "
            r"(?:is |seems |looks )?(?:completely )?(?:down|offline)",
            r"outage|down for (?:everyone|all)",
            # Data loss.
            r"all (?:of )?my (?:workouts?|data|history|progress|logs|posts|records|prs) (?:\w+ )?"
            rf"(?:are |is |were |was |have |has )?(?:been )?(?:{_GONE})",
            r"lost (?:all|years|months|everything)|data loss",
            r"(?:history|data|account) (?:is |was |got |has been )?(?:wiped|erased)",
            # Security or privacy exposure.
            r"(?:can )?see (?:another|other|someone elses|somebody elses|other peoples|a strangers"
            r"|other users|other members)",
            r"someone elses (?:data|account|workouts?|invoices?|info|information|profile|messages)",
            r"hacked|compromised|account takeover|data (?:breach|leak)|leak(?:ed|ing)|exposed",
            r"security (?:issue|hole|bug|vulnerability|breach)",
            r"unauthori[sz]ed (?:access|login|log in)",
            r"someone (?:else )?(?:logged|signed) in(?:to)?",
            r"someone (?:else )?(?:is )?using my account",
            r"private (?:data|info|information|posts?|profile) (?:is |are |was |were )?"
            r"(?:public|visible|exposed)",
        ),
    ),
    (
        Priority.P2,
        _rx(
            # Cannot sign in at all, or locked.
            rf"(?:{_NEG})\s+(?:\w+\s+)?(?:{_LOGIN})",
            r"(?:cant|cannot|can not|unable to|couldnt) (?:get into|access|open) "
            r"(?:my )?(?:account|the app)",
            r"locked out|account (?:is |got |was |has been )?(?:locked|blocked|suspended|disabled)",
            # Cannot log workouts.
            rf"(?:{_NEG})\s+(?:\w+\s+)?(?:save|submit|log|record|finish)\s+(?:\w+\s+)?"
            rf"(?:{_WORKOUT})",
            rf"(?:{_WORKOUT})\s+(?:\w+\s+){{0,3}}?(?:wont|will not|doesnt|does not|never|cant)\s+"
            r"(?:save|submit|log)",
            # Charged wrongly.
            rf"charged (?:me )?(?:{_TWICE}|again)",
            r"double[\s-]?charged?|duplicate (?:charge|payment)",
            r"overcharged|charged (?:me )?(?:the )?wrong(?:ly)?|wrong(?:ly)? charged",
            r"charged (?:me )?after (?:i )?cancel\w*",
            r"paid but (?:still )?(?:cant|cannot|no|dont|do not)",
            # No workaround.
            r"(?:doesnt|does not|isnt|is not|not) work(?:ing)? at all|nothing works",
            r"(?:completely|totally) (?:broken|stuck|unusable)|unusable",
            r"crash(?:es|ing)? (?:every ?time|whenever|on (?:launch|start|open))",
            r"no workaround|tried everything",
        ),
    ),
    (
        Priority.P3,
        _rx(
            r"not (?:working|loading|showing|syncing|saving|updating|appearing|arriving|counting)",
            _NOT_FLOWING,
            r"doesnt|didnt|isnt|arent|wasnt|werent|wont|cant|cannot|couldnt|unable|stopped|never",
            r"fail(?:s|ed|ing|ure)?|errors?|bug(?:s|gy)?|broken|crash\w*|glitch\w*",
            r"stuck|frozen|freez\w*|missing|wrong|incorrect|disappeared|vanished|gone|lost",
            r"problem|issue|keeps|declined|removed|hidden|deleted|blocked|harass\w*",
            r"but still|still (?:got|getting|being|shows?|says)",
            r"skipped|jumped (?:ahead|the queue|over)",
            r"(?:took|got|gave|given) (?:away )?(?:my|the) spot",
            r"not booked|but (?:the app|it) (?:says|shows)|out of (?:order|sync)|doesnt match",
            r"(?:logged|signed|kicked) out|(?:logs|signs|kicks) me out|expired|every ?time",
        ),
    ),
)


@dataclass(frozen=True)
class Hint:
    """A more specific cause (and maybe action) when the ticket shows a telling pattern."""

    pattern: re.Pattern[str]
    root_cause: str
    action: str | None = None


@dataclass(frozen=True)
class CategoryText:
    """The texts the triager writes for a category: defaults, refined by the first hint."""

    label: str
    root_cause: str
    action: str
    hints: tuple[Hint, ...] = ()


CATEGORY_TEXT: dict[Category, CategoryText] = {
    Category.AUTH_LOGIN: CategoryText(
        "Sign-in problem",
        "Account locked after repeated failed sign-ins, or an unverified email",
        "Diagnose lock state and sessions; propose unlock or verification resend for approval",
        (
            Hint(
                _rx(
                    r"hacked|compromised|unknown (?:device|login)",
                    r"someone (?:else )?(?:logged|signed|is using)",
                ),
                "Possible account takeover: a sign-in or account change the owner did not make",
                "Treat as a security incident: review recent sessions and account changes; "
                "propose revoking sessions for admin approval",
            ),
            Hint(
                _rx(
                    r"verif\w*|confirm(?:ation)? (?:my )?email|unverified",
                    r"magic link|2fa|two[\s-]?factor|otp|login code",
                ),
                "Verification or sign-in email/code not delivered, or the link expired",
                "Check email verification state and delivery; propose a verification resend for "
                "approval",
            ),
            Hint(
                _rx(_CREDENTIAL, r"reset link|reset email"),
                "Password reset email not delivered or its link expired, or the account is locked",
                "Check lock state, failed sign-ins and reset email delivery; propose an unlock "
                "for approval only if the account is locked",
            ),
            Hint(
                _rx(r"(?:logged|signed|kicked) out|(?:logs|signs|kicks) me out|session"),
                "Sessions revoked or expiring early, e.g. after a password change or app update",
                "Review the account's sessions and recent revocations; no change without approval",
            ),
        ),
    ),
    Category.WORKOUT_LOG_SUBMIT: CategoryText(
        "Workout log submit failure",
        "Workout submission rejected by the API or stuck in the app's offline queue",
        "Check recent failed submissions and their errors; propose a replay for approval",
        (
            Hint(
                _rx(r"all (?:of )?my|wiped|lost (?:all|everything)"),
                "Workouts missing from the account: failed submissions, or a sync/data-loss bug",
                "Count stored vs. failed submissions for the account; raise an incident if other "
                "users are hit; propose replays for approval",
            ),
        ),
    ),
    Category.FEED_MODERATION: CategoryText(
        "Feed visibility or moderation dispute",
        "Post hidden by a report or moderation rule, or visibility limited by a block",
        "Review post visibility, reports and moderation history; escalate policy calls to a "
        "moderator; blocks between users are never changed",
        (
            Hint(
                _rx(r"harass\w*|bully\w*|abusive|stalk\w*|creep\w*|threat\w*|hate speech"),
                "Reported abuse from another member awaiting moderator review",
                "Send to a moderator with the reports and history; point the member to block and "
                "report; no automated change",
            ),
            Hint(
                _rx(r"block\w*"),
                "A block between the members shaping what each one sees",
                "Explain how blocks affect visibility; review reports if abuse is alleged; blocks "
                "between users are never changed by support",
            ),
        ),
    ),
    Category.CLASS_BOOKING_WAITLIST: CategoryText(
        "Class booking or waitlist inconsistency",
        "Waitlist order or booking count out of step with class capacity after a cancellation",
        "Compare bookings and waitlist positions with capacity; propose a waitlist repair or "
        "promotion for approval",
    ),
    Category.INTEGRATION_SYNC: CategoryText(
        "Integration sync failure",
        "Expired Apple Health / Garmin authorization or a stuck sync cursor",
        "Check connection, token expiry and last sync error; propose a cursor reset and resync "
        "or a re-auth prompt for approval",
        (
            Hint(
                _rx(_APPLE_HEALTH, r"apple watch"),
                "Apple Health permissions revoked or background sync paused on the phone",
                "Check the Apple Health connection and last sync error; propose a cursor reset "
                "and resync, or a re-auth prompt, for approval",
            ),
            Hint(
                _rx(_GARMIN),
                "Expired Garmin Connect authorization or a stuck sync cursor",
                "Check the Garmin connection, token expiry and last sync error; propose a cursor "
                "reset and resync, or a re-auth prompt, for approval",
            ),
        ),
    ),
    Category.PRIVACY_REQUEST_STATUS: CategoryText(
        "Privacy request status inquiry",
        "Export or deletion request still within its processing window, or its notice not seen",
        "Look up the request and its due date; answer from the knowledge base; privacy state "
        "is never changed by automation",
    ),
    Category.BILLING_INVOICE: CategoryText(
        "Billing or invoice issue",
        "Invoice delivery failure, duplicate charge, or billing access out of step with payment",
        "Check the invoice, its delivery status and billing access; propose a resend or access "
        "restore for admin approval",
        (
            Hint(
                _rx(
                    rf"charged (?:me )?(?:{_TWICE}|again|wrong\w*)|overcharged|refund\w*",
                    r"double[\s-]?charged?|duplicate (?:charge|payment)",
                ),
                "Duplicate or incorrect charge, e.g. a retried payment or a renewal after cancel",
                "Compare charges with the subscription history; refunds are a staff decision, "
                "never automated",
            ),
            Hint(
                _rx(r"invoices?|invoce|invioce|inovice|receipts?|reciepts?|receits?"),
                "Invoice email not delivered (bounced, filtered as spam, or wrong billing email)",
                "Check the invoice and its delivery status; propose a resend for admin approval",
            ),
            Hint(
                _rx(r"paid|premium|access"),
                "Billing access out of step with a successful payment",
                "Check payment and entitlement state; propose restoring billing access for admin "
                "approval",
            ),
        ),
    ),
    Category.OTHER: CategoryText(
        "Uncategorized request",
        "No known playbook matches; the ticket may be out of scope or need more detail",
        "Route to a human for manual triage and acknowledge the customer",
    ),
}

# Categories whose usual ticket is a question: their own texts already fit a P4.
ANSWER_ONLY_CATEGORIES = frozenset({Category.PRIVACY_REQUEST_STATUS, Category.OTHER})

_APOSTROPHES = str.maketrans({"\u2019": None, "\u2018": None, "'": None, "`": None})
_SPACES = re.compile(r"[^\S\n]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s|\n")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def _normalize(text: str) -> str:
    """NFKC, no apostrophes, single spaces; newlines kept (a role marker starts a line)."""
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    return _SPACES.sub(" ", text)


def _strip_injections(text: str) -> tuple[str, bool]:
    """The text without anything aimed at the automation, and whether there was any."""
    found = False
    for pattern in INJECTION_RULES:
        text, count = pattern.subn(" ", text)
        found = found or count > 0
    return text, found


def _score(subject: str, body: str) -> dict[Category, float]:
    """Each category's score: every matching rule counts once, a bit more in the subject."""
    scores: dict[Category, float] = {}
    for category, rules in CATEGORY_RULES.items():
        total = 0.0
        for rule in rules:
            if rule.pattern.search(subject):
                total += rule.weight * SUBJECT_BOOST
            elif rule.pattern.search(body):
                total += rule.weight
        scores[category] = total
    return scores


def _severity(text: str) -> Priority:
    for priority, pattern in SEVERITY_RULES:
        if pattern.search(text):
            return priority
    return Priority.P4


def _confidence(best: float, second: float) -> float:
    """Higher for a strong score and a clear lead over the runner-up."""
    strength = min(1.0, best / SATURATION_SCORE)
    margin = (best - second) / best
    return min(MAX_CONFIDENCE, 0.3 + 0.35 * strength + 0.3 * margin)


def _clean(text: str) -> str:
    return _SPACES.sub(" ", _CONTROL.sub(" ", text)).strip().replace('"', "'")


def _snippet(subject: str, body: str) -> str:
    """A short quote of the ticket: the subject, plus the body's first sentence if it is short."""
    subject = _clean(subject)
    first = _clean(_SENTENCE_END.split(body.strip(), maxsplit=1)[0])
    if not subject:
        text = first
    elif len(subject) < SHORT_SUBJECT_CHARS and first and first.lower() != subject.lower():
        text = f"{subject}: {first}"
    else:
        text = subject
    if len(text) > SNIPPET_CHARS:
        text = text[: SNIPPET_CHARS - 1].rstrip() + "…"
    return text or "(empty ticket)"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _texts(category: Category, text: str) -> tuple[str, str, str]:
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
        A complete TriageResult; ``other`` with no playbook when no category scores enough.
    """
    subject, subject_injection = _strip_injections(_normalize(inp.subject))
    body, body_injection = _strip_injections(_normalize(inp.body))
    injection = subject_injection or body_injection

    scores = _score(subject, body)
    # sorted() is stable: a tie goes to the category listed first in CATEGORY_RULES.
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    (best_category, best), (_, second) = ranked[0], ranked[1]
    if best >= MIN_SCORE:
        category = best_category
        confidence = _confidence(best, second)
    else:
        category = Category.OTHER
        confidence = OTHER_CONFIDENCE_EMPTY if best == 0 else OTHER_CONFIDENCE_WEAK

    text = f"{subject}\n{body}"
    severity = _severity(text)
    label, root_cause, action = _texts(category, text)
    if severity is Priority.P4 and category not in ANSWER_ONLY_CATEGORIES:
        root_cause = f"A question or request about {label.lower()}; no failure reported"
        action = f"Answer from the knowledge base; if a failure turns up: {_lower_first(action)}"
    summary = f'{label} ({severity.value}): "{_snippet(inp.subject, inp.body)}".'
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
    )
