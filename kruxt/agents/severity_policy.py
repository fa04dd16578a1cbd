"""The policy applied after any triager (rules or LLM): severity floors, and privacy auto-replies
kept to questions about an existing request.

Severity floors: a ticket that reads as one of DESIGN.md's P1 or P2 cases (an account takeover,
data loss, many users hit, money taken wrongly, cannot log in, cannot log workouts, a legal
privacy request, harassment or a threat to someone's safety) is never triaged below that
severity, whatever the triager said; the reasons are recorded on the result. Each signal is a
specific wording, not a topic: "how do I reset my password?" is no lockout. Some signals count
only in the category where they mean a core function is broken ("we didn't cancel anything" is a
lost booking, not a billing error).

Privacy: the privacy category's answer is a read-only article about export and deletion
requests. It is sent automatically only when the ticket asks about a request that exists;
"how do I delete my account?" or "how do I edit my details?" goes to a person, who sends the
right article.

Pure and linear-time: the patterns run on RE2 (``kruxt.agents.patterns``) over the same text
the rules triager reads, with the sentences aimed at the automation cut out first, so a ticket
cannot raise its own severity by asking for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from kruxt.agents.patterns import Pattern
from kruxt.agents.triage_rules.fragments import CHARGE, GONE, LOGIN, NEG, SAVE, TWICE, TWICE_MORE
from kruxt.agents.triage_rules.injection import strip_injections
from kruxt.agents.triage_rules.rules import any_of, rx
from kruxt.agents.triage_rules.severity import SEVERITY_WORKAROUND
from kruxt.agents.triage_rules.text import view
from kruxt.models.enums import Category, Priority
from kruxt.models.triage import TriageInput, TriageResult

__all__ = [
    "EXISTING_PRIVACY_REQUEST",
    "FLOORS",
    "PRIVACY_HOW_TO_CONFIDENCE_CAP",
    "Floor",
    "apply_triage_policy",
    "floor_of",
    "policy_view",
    "privacy_confidence",
]

# A privacy ticket that asks about no existing request stays under every sensible auto-reply
# threshold (the default is 0.75): a person answers it.
PRIVACY_HOW_TO_CONFIDENCE_CAP = 0.5


@dataclass(frozen=True)
class Floor:
    """A severity the ticket cannot fall below when ``pattern`` (and ``also``) match.

    ``unless`` lifts it (a workaround the customer names); ``categories`` limits it to tickets
    triaged into one of them, empty meaning any.
    """

    priority: Priority
    reason: str
    pattern: Pattern
    also: Pattern | None = None
    unless: Pattern | None = None
    categories: frozenset[Category] = frozenset()

    @property
    def label(self) -> str:
        """What the result records: ``P1: data loss``."""
        return f"{self.priority.value}: {self.reason}"


TAKEOVER = "security or account takeover"
DATA_LOSS = "data loss"
MANY_USERS = "many users hit"
MONEY = "money taken wrongly"
CANNOT_LOG_IN = "cannot log in"
CANNOT_LOG_WORKOUTS = "cannot log workouts"
BOOKING_LOST = "class booking lost or blocked"
LEGAL_PRIVACY = "legal privacy request"
PRIVACY_EXPOSURE = "privacy exposure"
HARASSMENT = "harassment or abuse"
SAFETY = "personal safety"
NO_WORKAROUND = "core function broken, fixes tried"

# What a member keeps in KRUXT and can lose.
_RECORDS = any_of(
    r"workouts?|wor?kouts?|runs|rides|sessions|trainings?|treinos|entrenamientos|history",
    r"progress|prs|personal records|logs|activities|streak|training data|sets|data",
    r"strength workouts|lifts|exercises|measurements",
)
_MANY = any_of(
    # Not "every" or "each": "every time I save, the screen goes blank" loses nothing.
    r"all|entire|whole|every one of|hundreds of|dozens of|years of|months of|a month of",
    r"\d{2,}\+?|twenty|thirty|fifty|hundreds",
    r"tod[oa]s (?:os |as |los |las )?|tous (?:mes|les)|toutes (?:mes|les)|alle (?:meine )?",
    r"tutti i (?:miei )?|tutte le (?:mie )?",
)
_NO_RESPONSE = any_of(
    r"no (?:response|answer|reply|acknowledge?ment)|heard nothing|not even an? \w+",
    r"(?:not|never|havent|hasnt|have not|has not) (?:\w+ ){0,2}(?:received|had|got|gotten)"
    r" (?:any |a )?(?:response|answer|reply|acknowledge?ment)",
    r"(?:deadline|period|frist|plazo|prazo|delai|month|days) (?:\w+ ){0,4}(?:passed|expired"
    r"|exceeded|elapsed|abgelaufen|vencid\w*|depasse|scadut\w*)",
    r"keine antwort|sin respuesta|sem resposta|aucune reponse|nessuna risposta|second reminder",
    r"(?:you|they) (?:only )?(?:had|have|get) (?:\d+|thirty|forty ?five|one month|a month)",
    r"status (?:\w+ ){0,2}still|still (?:says|shows|pending|open|not (?:done|deleted|erased"
    r"|completed))",
)
# Longer than the legal answer periods (GDPR a month, CCPA 45 days): "50 days ago".
_OVERDUE = any_of(
    r"(?:[3-9]\d|\d{3}) days|(?:over|more than|almost|nearly) (?:a|one) month|a month ago",
    r"(?:two|three|four|five|six|several|many|\d+) months|(?:five|six|seven|eight|[5-9]) weeks",
)
# Many users on record: "12 of my athletes", "several of us", "no member can book".
_MANY_HIT = any_of(
    r"(?:several|many|most|lots|some|a few|a bunch|dozens|half|all|three|four|five|\d+) of us",
    r"(?:no|not a single|not one) (?:member|user|client|athlete|customer|coach|student)s?"
    r" (?:\w+ ){0,2}(?:can|could|is able|are able|has been able)",
    r"(?:none|neither) of (?:us|them|our \w+|my \w+) (?:\w+ ){0,2}(?:can|could|is able|are able)",
    r"(?:\d{2,}|dozens|hundreds|all|most|half) (?:of )?(?:my|our|the) (?:\w+ )?(?:athletes"
    r"|members|clients|users|customers|students|coaches|trainers)",
    r"(?:for|at|in|across) all (?:\w+ ){0,2}(?:locations|sites|gyms|studios|branches|clubs)",
)
# What those many users say is broken, not a question they share.
_BROKEN = rx(
    r"fail\w*|errors?|error \d+|cant|cannot|can not|unable|not working|doesnt work|broken|down",
    r"nothing happens|does nothing|(?:is |are )?(?:empty|gone|missing)|locked out",
)
# Only a nuisance for them: slow, late, or fine in the end.
_NUISANCE = rx(
    r"eventually|after a (?:while|few \w+)|(?:takes?|took|taking) (?:\w+ )?(?:\d+|a few"
    r"|several|hours|minutes|ages|forever)|slow\w*|delay\w*|late",
    r"not (?:urgent|a big deal|critical)|no (?:rush|big deal)|minor|cosmetic|works again",
)
# The records came back: no loss.
_CAME_BACK = rx(
    r"(?:came|come|coming|are|is) back|reappeared|showed up again|found (?:it|them) again",
)

FLOORS: tuple[Floor, ...] = (
    # --- P1: a security, privacy or safety exposure, data loss, many users hit.
    Floor(
        Priority.P1,
        TAKEOVER,
        rx(
            r"(?:someone|somebody|a hacker|they) (?:\w+ ){0,2}changed (?:\w+ ){0,4}(?:email"
            r"|password|phone number)",
            r"(?:someone|somebody) (?:else )?(?:is|was|got|has been) (?:in|into) my account",
            r"(?:posts?|workouts?|messages?|comments?) (?:\w+ ){0,3}i (?:never|didnt|did not)"
            r" (?:make|made|post|posted|send|sent|write|wrote)",
            r"account (?:was |got |has been |is )?(?:hacked|stolen|taken over|compromised)",
            r"asking (?:\w+ ){0,5}(?:to )?send (?:them |him |her )?money",
        ),
    ),
    Floor(
        Priority.P1,
        DATA_LOSS,
        rx(
            rf"(?:{_MANY}) (?:of )?(?:my |our |the |his |her )?(?:\w+ ){{0,3}}?(?:{_RECORDS})"
            rf" (?:\w+ ){{0,6}}?(?:are |is |were |was |have |has )?(?:been )?(?:{GONE})",
            rf"(?:{_RECORDS}|workout|run|session) (?:\w+ ){{0,2}}(?:went|has gone|have gone"
            r"|goes|go) missing",
            r"(?:wiped|erased|deleted) (?:out )?(?:everything|all (?:of )?my)",
            r"(?:streak|badge|distance|history|progress) (?:\w+ ){0,4}(?:reset|went|dropped) "
            r"(?:back )?to (?:0|zero)",
        ),
    ),
    Floor(
        Priority.P1,
        DATA_LOSS,
        rx(
            # "The workout is just gone", "the original sessions are gone from the history".
            rf"(?:my|the|todays|yesterdays|original|last) (?:\w+ ){{0,2}}(?:{_RECORDS})"
            r" (?:\w+ ){0,6}?(?:is|are|was|were|has been|have been|got) (?:\w+ )?(?:gone"
            r"|deleted|wiped|erased|lost|overwritten|replaced|disappeared|vanished)",
            r"(?:my|todays|yesterdays) (?:workouts?|sessions?|runs?|rides?|training) (?:just )?"
            r"(?:disappeared|vanished)",
            rf"(?:replaced|overwr\w+) (?:all )?(?:of )?(?:my|our) (?:\w+ ){{0,2}}(?:{_RECORDS})",
        ),
        unless=_CAME_BACK,
        categories=frozenset({Category.WORKOUT_LOG_SUBMIT, Category.INTEGRATION_SYNC}),
    ),
    Floor(
        Priority.P1,
        PRIVACY_EXPOSURE,
        Pattern(
            r"\b(?:only me|private|privat|privad[oa]s?|privee?s?)\b[^.!?\n]{0,80}\b(?:showing up"
            r"|show up|shows up|visible|public|appear\w*) (?:on|in|to) (?:\w+ )?(?:followers"
            r"|feeds?|everyone|public|others|strangers)\b"
        ),
    ),
    Floor(
        Priority.P1,
        PRIVACY_EXPOSURE,
        rx(
            r"(?:deleted|closed|removed) (?:my )?(?:account|profile)(?: \w+){0,30}? (?:is |are )?"
            r"still (?:visible|public|there|online|showing|searchable)",
        ),
    ),
    Floor(
        Priority.P1,
        MANY_USERS,
        rx(
            r"(?:several|many|lots of|other|more|multiple) (?:\w+ ){0,2}(?:people|users|members"
            r"|others|athletes|friends|girls|guys) (?:\w+ ){0,4}(?:say|said|saying|report\w*"
            r"|complain\w*|having|have the same|the same|too|as well)",
            r"(?:several|many|lots of) others",
            r"(?:same thing|same problem|same issue|it) (?:\w+ ){0,3}(?:happening|happened"
            r"|happens) (?:\w+ ){0,2}(?:to|for|with) (?:them|others|other people|everyone"
            r"|\w+ friends|(?:two|three|\d) \w+)",
            r"(?:aconteceu|paso|passou|passato|passiert) (?:tambem |also |auch )?(?:com|con|a|bei)"
            r" (?:\w+ )?(?:duas|dos|tres|zwei|drei|due|amigas|amigos|amici|freund\w*|others)",
            r"people (?:cant|cannot|can not|are unable to)",
        ),
        # "They do show up eventually": many users with a nuisance is not an incident.
        unless=SEVERITY_WORKAROUND,
    ),
    Floor(
        Priority.P1,
        MANY_USERS,
        rx(_MANY_HIT),
        also=_BROKEN,
        # A stopgap ("logging in notebooks for now") does not make a team-wide outage minor.
        unless=_NUISANCE,
    ),
    Floor(
        Priority.P1,
        SAFETY,
        rx(
            r"(?:i am|im|i feel|feel|honestly|really|so) (?:\w+ ){0,2}(?:scared|afraid|frightened"
            r"|terrified|unsafe)",
            r"ich habe angst|tengo miedo|tenho medo|j ai peur|ho paura|boje sie",
            r"(?:wait|waiting|be waiting) for me (?:at|outside|in|after)",
            r"knows (?:which|where|what) (?:car|house|i live|i park)",
            r"(?:posted|shared|put|sent) (?:\w+ ){0,8}(?:where i live|my (?:home|house|street"
            r"|address|car|flat|apartment))",
            r"(?:photo|picture|pic|video|filmed|photographed) (?:\w+ ){0,5}(?:changing room"
            r"|locker room|undressed|naked)|upskirt|without (?:my )?consent",
        ),
    ),
    # --- P2: a core function broken for one user, money taken wrongly, a legal request.
    Floor(
        Priority.P2,
        HARASSMENT,
        rx(
            # Someone doing it, not the topic: "how do I report harassment?" is a how-to.
            r"harass(?:es|ed|ing)|harassment (?:from|by)|hate?full?|hate speech",
            r"raci(?:st|stes?|sts|sm)|rassist\w*|racista\w*",
            r"homophob\w*|transphob\w*|slurs?|bull(?:y|ied|ying)|predator",
            r"creepy (?:messages|comments|dms|texts)",
            r"calling me (?:\w+ )?(?:names|fat|ugly|disgusting|a \w+)|haineux",
            r"commentaires? (?:racistes?|insultants?|homophobes?|sexistes?)",
            r"impersonat\w*|pretending to be me|podszywa\w*|fake (?:account|profile) (?:\w+ ){0,3}"
            r"(?:me|my)",
            r"(?:my|moimi|mis|minhas|meinen|mes) (?:photos|pictures|zdjeciami|fotos|bildern)"
            r" (?:\w+ ){0,2}(?:and|i|y|e|und|et) (?:my|moim|mi|meu|meinem|mon) (?:name|imieniem"
            r"|nombre|nome|namen|nom)",
            r"nude|naked|explicit (?:photo|picture|image|content|post)|porn\w*",
            r"(?:\d{2,}|dozens of|lots of|many) (?:\w+ ){0,2}(?:spam|fake|bot|scam) accounts",
            r"(?:spam|fake|bot|scam) accounts (?:all over|everywhere|flooding)",
        ),
    ),
    Floor(
        Priority.P2,
        MONEY,
        rx(
            rf"(?:{CHARGE}|chrged|charded|billed|pobrano|pobrali|obciazono) (?:\w+ ){{0,6}}?"
            rf"(?:{TWICE}|{TWICE_MORE}|\d times|dwa razy|trzy razy|again)",
            r"podwojn\w* (?:oplat\w*|platnosc\w*)",
            r"charged (?:\w+ ){0,3}full (?:price|amount|rate|fee|cost)|full price (?:\w+ ){0,4}"
            r"(?:after|despite|instead|even though|although)",
            r"(?:coupon|discount|promo|voucher|code) (?:\S+ ){0,10}?(?:but|yet|however) (?:i was"
            r" |we were |was |they )?(?:charged|billed)",
            r"(?:took|take|taken|taking|takes) (?:my |the )?(?:money|payment|fee) (?:\w+ ){0,5}?"
            r"(?:\d|two|three) times?",
            # Charged for what they do not get: "can I pay for premium but not renew?" is not.
            r"(?:charged|charging|billed|billing|paying|paid) (?:me )?(?:\w+ ){0,2}for"
            r" (?:\w+ ){0,2}(?:premium|pro|plus|membership|subscription)(?: \w+){0,3} but"
            r" (?:i )?(?:still )?(?:do not|dont|did not|didnt|never|cant|cannot|can not)"
            r" (?:\w+ )?(?:have|get|got|use|access|see)",
            r"paid (?:\w+ ){0,8}?(?:app )?still (?:\w+ ){0,4}(?:locked|padlock|upgrade|free"
            r"|no premium|not premium)",
        ),
    ),
    Floor(
        Priority.P2,
        MONEY,
        rx(
            r"(?:never|didnt|did not) (?:\w+ )?(?:chose|chosen|choose|selected|picked|ordered"
            r"|authori[sz]ed|signed up for|subscribed to|bought|upgraded to|asked for)",
        ),
        also=rx(r"charg\w*|billed|debited|taken|took|payment|transaction|paid"),
        categories=frozenset({Category.BILLING_INVOICE}),
    ),
    Floor(
        Priority.P2,
        MONEY,
        Pattern(
            r"\b(?:charged|debited|billed|fee|took)\b[^.!?\n]{0,80}\b(?:but|although|even though)"
            r" (?:i|we) (?:\w+ )?cancel\w*"
        ),
    ),
    Floor(
        Priority.P2,
        CANNOT_LOG_IN,
        rx(
            rf"(?:{NEG}) (?:\w+ ){{0,2}}(?:retrieve|recover|reset|remember|receive|access)"
            r" (?:my |the )?(?:\w+ )?(?:password|account|email|code|login)",
            r"(?:cant|cannot|can not|couldnt) get (?:back )?in\b",
            r"(?:too?|to) many (?:failed |wrong )?(?:attempts|tries)",
            r"(?:code|sms|kod|codigo|codice) (?:\w+ ){0,6}(?:never (?:comes|came|arrives|arrived)"
            r"|(?:is |jest )?(?:invalid|incorrect|nieprawidlowy|not accepted|rejected))",
            r"reset (?:\w+ ){0,4}(?:goes|sent|going|go) to (?:my )?(?:old|former|previous)",
            rf"nie moge sie zalogowac|nie moge wejsc|(?:{NEG}) (?:\w+ )?(?:{LOGIN})",
        ),
        categories=frozenset({Category.AUTH_LOGIN}),
    ),
    Floor(
        Priority.P2,
        CANNOT_LOG_WORKOUTS,
        rx(
            r"(?:retry|save|finish|submit|upload|opslaan|speichern)\w*(?: \w+){0,6}? (?:and )?"
            r"(?:nothing|does nothing|fails|failed|er ging iets mis)",
            r"er ging iets mis|something went wrong|etwas ist schiefgelaufen|lukt niet",
            r"(?:none|not one|geen) (?:of )?(?:them|my workouts|mijn trainingen) (?:are|is|were"
            r"|zijn) (?:\w+ ){0,2}(?:in|there|saved|te vinden)",
            r"(?:gewicht\w*|weights?|pesos|poids) (?:\w+ ){0,6}(?:0|zero|nul)\b",
            rf"(?:{NEG}) (?:\w+ )?(?:{SAVE}) (?:\w+ ){{0,2}}(?:workouts?|training|sets|session)",
            rf"(?:{NEG}) (?:\w+ )?(?:put|get|store|keep) (?:my |the |any )?(?:\w+ )?(?:workouts?"
            r"|trainings?|sessions?|sets|runs|lifts|exercises)",
        ),
        categories=frozenset({Category.WORKOUT_LOG_SUBMIT}),
    ),
    Floor(
        Priority.P2,
        CANNOT_LOG_WORKOUTS,
        # The app closes when the workout is saved: nothing gets logged, unless the customer
        # found a way round it ("if I split the superset it saves").
        rx(
            r"(?:app|it) (?:\w+ )?(?:closes|close|closed|crashes|crash|crashed|quits|shuts down"
            r"|force closes)(?: itself| down)? (?:\w+ ){0,2}(?:when|whenever|every time|each time"
            r"|as soon as|after) (?:i )?(?:\w+ ){0,2}(?:save|saving|finish|finishing|submit"
            r"|submitting|log|logging)",
        ),
        unless=SEVERITY_WORKAROUND,
        categories=frozenset({Category.WORKOUT_LOG_SUBMIT}),
    ),
    Floor(
        Priority.P2,
        BOOKING_LOST,
        rx(
            r"(?:we|i|eu) (?:didnt|did not|never|havent|nao) cancel\w*",
            r"cancel\w* (?:sozinha|sozinho|by itself|on its own|sola|solo|automatically)",
            r"(?:spot|place|seat) (?:\w+ ){0,3}(?:went|was given|given) to (?:someone|somebody)"
            r" else",
            r"nobody (?:\w+ ){0,3}(?:waitlist|wait list) (?:gets|is|was|got) (?:moved|promoted)",
            r"book(?:ing)? button (?:\w+ ){0,2}(?:gr[ae]y\w*|disabled|dead)",
            r"(?:fehler|error|erreur|errore|erro|blad|fout) \d{3}",
        ),
        categories=frozenset({Category.CLASS_BOOKING_WAITLIST}),
    ),
    Floor(
        Priority.P2,
        LEGAL_PRIVACY,
        rx(
            r"gdpr|dsgvo|rgpd|lgpd|ccpa|cpra|the law|by law|legal right|legally|statutory",
            r"subject access request|right (?:to|of) (?:erasure|be forgotten|access)",
            r"art(?:icle)? 1[57]",
        ),
        also=rx(
            _NO_RESPONSE,
            rf"(?:{_OVERDUE}) ago",
            r"(?:please|i want|i demand|i request|hereby|we request|kindly|i would like|quero"
            r"|exijo|verlange) (?:\w+ ){0,3}(?:delete|erase|remove|close|excluir|loschen)",
        ),
    ),
    Floor(
        Priority.P2,
        LEGAL_PRIVACY,
        rx(
            r"(?:requested|asked for|submitted|filed|sent|made) (?:\w+ ){0,4}?(?:deletion|erasure"
            r"|export|removal|data request|access request|deleted|erased)",
        ),
        also=rx(
            rf"(?:{_OVERDUE}) ago",
            # "My profile is still visible", not "will my posts still be visible?".
            r"(?:is|are) still (?:visible|there|online|active|showing|searchable)|still"
            r" (?:receiv\w*|getting)",
        ),
        categories=frozenset({Category.PRIVACY_REQUEST_STATUS}),
    ),
    Floor(
        Priority.P2,
        LEGAL_PRIVACY,
        rx(
            r"cancel\w* (?:\w+ ){0,2}deletion|undo (?:\w+ ){0,3}deletion|(?:dont|do not) delete",
            r"deletion by mistake",
        ),
        categories=frozenset({Category.PRIVACY_REQUEST_STATUS}),
    ),
    Floor(
        Priority.P2,
        NO_WORKAROUND,
        rx(
            r"(?:disconnected|reconnected|unlinked|relinked|reinstall\w*|neu installiert"
            r"|rozlaczalem|restarted|neu gestartet)(?: \w+){0,8}? (?:still nothing|nothing|nic"
            r"|nada|nichts|rien|niente|no luck|es hilft nichts|hilft nichts|didnt help)",
            r"(?:kann|konnen) (?:\w+ ){0,2}(?:gar )?nicht (?:benutzen|nutzen|offnen|starten)",
            r"sturzt (?:\w+ ){0,6}ab",
            r"(?:again|ponownie|de novo|otra vez|erneut|nochmal|di nuovo|a nouveau) (?:and |but "
            r"|y |e |und |et |i )?(?:still )?(?:nothing|nic|nada|nichts|rien|niente)",
        ),
    ),
)

# The ticket asks about an export or deletion request it already made.
EXISTING_PRIVACY_REQUEST = rx(
    r"(?:my|the|our|a|this) (?:\w+ ){0,2}(?:deletion|export|erasure|privacy|data|access|gdpr"
    r"|lgpd|ccpa|removal) request",
    r"(?:requested|submitted|asked for|asked you|asked to|sent|made|filed|pedi|solicite"
    r"|beantragt|demande|richiesto) (?:\w+ ){0,6}(?:deletion|deleted|delete|export|erasure"
    r"|erase|copy|data|request|removed|removal|exclusao|loschung)",
    r"status (?:of|do|del|de)|any (?:update|news)|pedido|solicitud|antrag|richiesta",
    r"(?:export|deletion|archive|request|download) (?:\w+ ){0,2}(?:is |was |has been )?"
    r"(?:ready|pending|in progress|completed|complete|done|stuck|scheduled|processing"
    r"|expired|confirmed)",
    r"(?:deleted|closed) (?:my )?account|will be (?:deleted|erased)|(?:still|yet) (?:not )?"
    r"(?:deleted|erased|received)|confirmation (?:email|mail)|download link|reference|protocol"
    r"|case number|krx-pr|\bpr-\d+",
    r"cancel\w* (?:\w+ ){0,2}deletion|deletion by mistake",
    r"(?:export|deletion|archive|copy|data) (?:\w+ ){0,4}(?:i|we) (?:asked for|requested"
    r"|submitted|ordered)",
    r"(?:where is|wheres|what happened to|when will i get) (?:\w+ ){0,3}(?:export|deletion"
    r"|archive)",
)


def policy_view(subject: str, body: str) -> bytes:
    """What the policy reads: the rules' view of the ticket, instructions to the bot cut out."""
    subject_view, _ = strip_injections(view(subject))
    body_view, _ = strip_injections(view(body))
    return subject_view + b"\n" + body_view


def floor_of(text: bytes, category: Category) -> tuple[Priority | None, list[str]]:
    """The highest floor the text reaches and every reason found, most severe first.

    Args:
        text: the ticket as :func:`policy_view` returns it.
        category: the triager's category; some floors count only in theirs.
    """
    found = [
        floor
        for floor in FLOORS
        if (not floor.categories or category in floor.categories)
        and floor.pattern.search(text) is not None
        and (floor.also is None or floor.also.search(text) is not None)
        and (floor.unless is None or floor.unless.search(text) is None)
    ]
    if not found:
        return None, []
    found.sort(key=lambda floor: floor.priority.rank)
    labels = list(dict.fromkeys(floor.label for floor in found))
    return found[0].priority, labels


def privacy_confidence(text: bytes, category: Category, confidence: float) -> float:
    """The confidence, capped for a privacy ticket that asks about no existing request."""
    if category is not Category.PRIVACY_REQUEST_STATUS:
        return confidence
    if EXISTING_PRIVACY_REQUEST.search(text) is not None:
        return confidence
    return min(confidence, PRIVACY_HOW_TO_CONFIDENCE_CAP)


def apply_triage_policy(inp: TriageInput, result: TriageResult) -> TriageResult:
    """Any triager's result with the policy applied: the severity never below its floor, the
    floors' reasons recorded, a privacy how-to sent to a person. Applying it twice changes
    nothing more."""
    text = policy_view(inp.subject, inp.body)
    floor, reasons = floor_of(text, result.category)
    severity = result.severity
    if floor is not None and floor.rank < severity.rank:
        severity = floor
    return result.model_copy(
        update={
            "severity": severity,
            "severity_floor_reasons": reasons,
            "confidence": privacy_confidence(text, result.category, result.confidence),
        }
    )
