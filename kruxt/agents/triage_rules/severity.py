"""Severity signals: the tables of the P1-P4 ladder, and the ladder that reads them.

The first step whose table matches decides; see :func:`severity_of`.
"""

from __future__ import annotations

from kruxt.agents.patterns import Guard, Pattern
from kruxt.agents.triage_rules.fragments import (
    ACCOUNT,
    BOOK,
    CHARGE,
    CHARGED_AFTER_CANCEL,
    CHARGED_NOT_PRICE,
    ENTER,
    GONE,
    LOGIN,
    MODERATED,
    NEG,
    NOT_FLOWING,
    POST_VERB,
    SAVE,
    SYNC,
    TWICE,
    TWICE_MORE,
    WORKOUT,
)
from kruxt.agents.triage_rules.rules import rx, words
from kruxt.models.enums import Priority

__all__ = [
    "SEVERITY_FAILURE",
    "SEVERITY_HARD_FAILURE",
    "SEVERITY_MANY_USERS",
    "SEVERITY_NO_WORKAROUND",
    "SEVERITY_P1",
    "SEVERITY_P2",
    "SEVERITY_QUESTION",
    "SEVERITY_WORKAROUND",
    "severity_of",
]

# Severity is a ladder (see severity_of): the first step whose table matches decides.
# P1: an outage, data loss, a security, privacy or safety exposure.
SEVERITY_P1 = rx(
    # Outage.
    r"(?:app|site|website|server|servers|service|kruxt|api|platform|dashboard) "
    r"(?:is |seems |looks )?(?:completely |totally )?(?:down|offline)",
    r"outage|down for (?:everyone|all)",
    # Data loss.
    r"all (?:of )?my (?:workouts?|data|history|progress|logs|posts|records|prs|sessions|training)"
    rf" (?:\w+ )?(?:are |is |were |was |have |has )?(?:been )?(?:{GONE})",
    r"lost (?:all|years|months|everything)|data loss",
    r"(?:history|data|account) (?:is |was |got |has been )?(?:wiped|erased|empty)",
    r"everything (?:\w+ ){0,5}(?:is |was |has been |are )?(?:gone|lost|deleted|wiped|missing)",
    r"history (?:\w+ )?(?:starts|begins) (?:from |at )?today",
    # Security or privacy exposure.
    r"(?:can )?see (?:another|other|someone elses|somebody elses|other peoples|a strangers"
    r"|other users|other members)",
    r"(?:see|seeing|saw|shows?|showing|visible|displays?) (?:\w+ ){0,4}"
    r"(?:another|a different|other|someone elses|somebody elses|a strangers) "
    r"(?:gyms?|users?|members?|persons?|accounts?|clubs?|customers?|athletes?|clients?)",
    r"someone elses (?:data|account|workouts?|invoices?|info|information|profile|messages)",
    r"hacked|compromised|account takeover|data (?:breach|leak)|leak(?:ed|ing)|exposed",
    r"took over my|taken over|new (?:sign-?in|login) from|(?:wasnt|was not|it wasnt) me",
    r"someone (?:else )?changed (?:my|the) (?:email|password|phone)",
    r"(?:another|other|a strangers|strangers) (?:persons?|peoples?|users?|members?)?\s?"
    r"(?:data|workouts?|info\w*|profile|history|runs|activities)",
    r"(?:arent|are not|isnt|is not|not) mine",
    r"security (?:issue|hole|bug|vulnerability|breach)",
    r"unauthori[sz]ed (?:access|login|log in)",
    r"someone (?:else )?(?:logged|signed) in(?:to)?",
    r"someone (?:else )?(?:is )?using my account",
    r"private (?:data|info|information|posts?|profile) (?:is |are |was |were )?"
    r"(?:public|visible|exposed)",
    # Personal safety.
    r"scared for my (?:safety|life)|afraid for my safety|feel unsafe|in danger|stalking me",
    r"stalker|threatening|threatened (?:me|to)|knows where i live|suicid\w*|self[\s-]?harm",
    r"kill (?:myself|yourself|urself|themselves)|kys|telling me to die",
    r"(?:has|knows|found|sent me|posted) (?:\w+ ){0,4}my (?:home )?address",
)
# P1 too when many users are hit, unless the ticket says it is only a nuisance for them.
SEVERITY_MANY_USERS = Pattern(
    words(
        r"everyone|everybody",
        r"all (?:of )?(?:our |the |my )?(?:members|users|clients|athletes|customers|accounts"
        r"|coaches|staff|students)",
        r"(?:whole|entire) (?:gym|box|studio|team|club|community)",
        r"all (?:of )?(?:our|the) (?:gyms|locations|studios)",
        r"(?:nobody|no one|noone|none of)(?: \w+){0,3} (?:can|could|is able|are able)",
        r"every (?:one of (?:our|my|the) )?(?:\w+ )?(?:member|user|athlete|client|customer)s?",
        r"not (?:just|only) me|(?:other|more) (?:members|users|people) (?:too|also|as well)",
    )
    + r"|\b\d{2,}\+?\s+(?:\w+\s+)?(?:people|members|users|athletes|clients|customers)\b",
    Guard(
        r"\b(?:many|multiple|several|lots of|a lot of|dozens of|hundreds of) (?:\w+ )?"
        r"(?:users|members|people|clients|athletes|customers)\b",
        not_before=("how ",),
    ),
)
# The customer says there is a workaround or it is only a nuisance: P3.
SEVERITY_WORKAROUND = rx(
    r"workaround|work-around|for now|in the meantime|meanwhile",
    r"i can (?:still )?(?:manage|type|enter|add|log|change|edit|see|use|fix|book|download|get"
    r"|open|access|do)",
    r"can still (?:see|tap|use|access|book|log|type|enter|download)|(?:can|could) manage",
    r"(?:so )?(?:its|it is|thats) (?:fine|ok|okay)|not (?:urgent|a big deal|a huge deal|critical"
    r"|a priority|a big problem)|no big deal|no rush|minor",
    r"rien de grave|nada grave|nichts schlimmes|niente di grave|sin prisa|sem pressa",
    r"just (?:wanted|thought) (?:to|id)|just (?:so you know|fyi|letting you know)|fyi",
    r"by hand|manually|manual entry|eventually|after a (?:while|few hours)",
    r"(?:does|did|do) (?:\w+ )?get (?:saved|synced|posted|uploaded|through)|(?:gets?|got)"
    r" (?:saved|synced|posted|uploaded) (?:in the end|after all)",
    r"still works|works (?:fine|ok|perfectly|normally) (?:on|in|from|with|if|when)|works but",
    r"which works|everything else works|nothing else (?:is )?affected|works again",
    r"(?:force[\s-]?clos\w*|restart\w*|refresh\w*|logging out and (?:back )?in)"
    r" (?:\w+ ){0,3}(?:fixes|fixed|helps|helped|works|does|push|pushes|solves)",
    r"(?:i have|i need|have|need) to (?:fix|correct|edit|re-?enter|redo|retype)",
)
# The customer says there is no workaround: P2 even if a workaround word appears.
SEVERITY_NO_WORKAROUND = rx(
    r"no workaround|tried everything|nothing (?:works|helps|helped)",
    r"(?:cant|cannot|can not|no way to) (?:\w+ ){0,2}(?:by hand|manually)",
    r"unusable|basically (?:blind|useless|unusable|stuck)",
    r"missed (?:the|my) (?:\w+ )?(?:class|session|workout)|at all",
    r"(?:reinstall\w*|cleared (?:the )?cache|restart\w*) (?:\w+ ){0,3}(?:didnt|doesnt|did not"
    r"|does not|no|wont) (?:help|work|fix|change|bring)",
)
# A core function broken for one user: P2.
SEVERITY_P2 = rx(
    # Cannot sign in, locked, suspended.
    rf"(?:{NEG})\s+(?:\w+\s+)?(?:{LOGIN})",
    rf"(?:{NEG}) (?:{ENTER}) (?:my |our |the |minha |mi |la |meu |mein |mon )?"
    rf"(?:{ACCOUNT}|app|kruxt)",
    rf"locked out|(?:{ACCOUNT}) (?:is |got |was |has been )?(?:locked|blocked|suspended"
    r"|disabled|bloquead[oa]|gesperrt)",
    # Cannot log workouts, book classes, sync.
    rf"(?:{NEG})\s+(?:\w+\s+)?(?:{SAVE}|{BOOK}|{SYNC}|{POST_VERB}|connect|reconnect"
    r"|re-?auth\w*|link|pair)",
    r"(?:page|profile|account) (?:\w+ ){0,4}?(?:is |was |got |has been )?(?:suspended|banned"
    r"|disabled|restricted|limited)",
    rf"(?:{WORKOUT}|sessions?|logs?)\s+(?:\w+\s+){{0,3}}?(?:wont|will not|doesnt|does not"
    r"|never|cant|not)\s+(?:getting\s+)?(?:save|saved|submit|sumbit|log|getting saved)",
    r"nothing happens|nothing (?:synced|syncs|arrives|arrived|came|comes)|does nothing",
    r"(?:wont|doesnt|will not|does not) let me",
    rf"(?:{NEG}) (?:\w+ ){{0,2}}?(?:receive|get) (?:the |my |any )?(?:\w+ )?"
    r"(?:code|sms|email|link)",
    r"(?:havent|hasnt|not|never) (?:\w+ )?(?:received|got|gotten) (?:\w+ ){0,3}?(?:payouts?"
    r"|payments?|money|refund|transfer)",
    r"past (?:the )?(?:\w+ )?deadline|legal deadline",
    r"perdo tutto|pierdo todo|perco tudo|verliere alles|je perds tout|lose everything",
    r"(?:paid|pague|paguei|bezahlt|paye) (?:\w+ ){0,6}?(?:still|todavia|ainda|immer noch"
    r"|toujours)(?: \w+){0,4} (?:free|gratis|gratuit\w*|kostenlos)",
    r"(?:app|it) (?:forgot|lost|didnt keep|did not keep) (?:my )?(?:\w+ )?(?:workout|session"
    r"|training|sets)|(?:its|it is|its just|it was) (?:just )?(?:gone|lost|deleted)",
    r"lose (?:what|everything) i (?:entered|logged|typed|did)",
    r"zero (?:activities|runs|rides|workouts|data)|(?:wont|wouldnt|didnt) let me in",
    # Charged wrongly.
    rf"(?:{CHARGE}) (?:me )?(?:\w+ ){{0,5}}?(?:{TWICE}|{TWICE_MORE}|again)",
    rf"(?:{TWICE}|{TWICE_MORE}|two) (?:\w+ )?(?:{CHARGE}|payments)",
    r"double[\s-]?charged?|duplicate (?:charge|payment)|wrong amount|falscher betrag",
    r"overcharged|charged (?:me )?(?:the )?wrong(?:ly)?|wrong(?:ly)? charged",
    rf"(?:{CHARGE}) (?:\w+ ){{0,4}}?(?:instead of|statt|anstatt|au lieu de|en vez de|em vez de"
    r"|invece di)",
    CHARGED_AFTER_CANCEL,
    CHARGED_NOT_PRICE,
    r"cancel\w* (?:\w+ ){0,6}but (?:\w+ ){0,3}still",
    r"(?:never|didnt|did not) (?:ordered|order|bought|signed up|subscribed|upgraded"
    r"|authori[sz]ed)",
    r"paid (?:but|and) (?:still |i have )?(?:cant|cannot|no|nothing|dont|do not)",
    r"still (?:getting|receiving|being charged|charging|logs? in|active|works)",
    # Nothing the customer can do about it.
    r"(?:doesnt|does not|isnt|is not|not) work(?:ing)? at all|nothing works|useless",
    r"(?:completely|totally) (?:broken|stuck|unusable)",
    r"crash(?:es|ing)? (?:every ?time|whenever|on (?:launch|start|open))",
    r"(?:white|blank|empty) (?:page|screen)|spinner",
    r"error code|error \w*\d+\w*|\w+-\d{3}|expired every|every single time",
    r"every ?time i (?:\w+ ){0,2}(?:tap|try|press|click|hit)",
    r"reinstall\w*|tried (?:on )?(?:\w+ )?(?:browsers|devices|phones)|cleared (?:the )?cache",
    r"asap|as soon as possible",
    r"deadline (?:\w+ )?(?:exceeded|passed|missed)|overdue|no (?:response|reply|answer)",
    r"(?:period|deadline|timeline|days) (?:\w+ ){0,3}(?:elapsed|expired|passed)",
    r"heard nothing|not even an? \w+|supervisory authority|lodge a complaint",
    r"(?:payout|payment|money|transfer|refund) (?:\w+ ){0,3}(?:never|not|hasnt|has not|didnt)"
    r" (?:\w+ )?(?:reached|arrived|received|come|came|landed)",
    r"(?:we|i) (?:rely|depend) on|still (?:messaging|contacting|harassing|posting|sending)",
    r"(?:cant|cannot) (?:\w+ )?use (?:it|the app|kruxt|anything)",
    r"no way (?:for (?:me|us|them) )?(?:of|to)",
    r"cant access anything|no account (?:found|exists)|account (?:not found|doesnt exist)",
    r"(?:isnt|is not|not) (?:registered|recogni[sz]ed)",
    r"(?:fail\w*|error|fehlgeschlagen|fallid[oa]|falhou|echoue|fallito|crash\w*|se cierra"
    r"|se fecha|schliesst sich|se ferme|si chiude) (?:\w+ ){0,3}?(?:every ?time|always"
    r"|siempre|sempre|immer|toujours)|pasa siempre|acontece sempre",
    r"(?:se cierra|se fecha|schliesst sich|se ferme|si chiude)",
    r"removed (?:me )?from (?:my |the )?(?:\w+ )?(?:class|booking|session|waitlist)",
    # Something the member cannot do without; a hidden post put back is a P3 request.
    r"restore (?:my|our|the) (?:\w+ )?(?:booking|spot|place|seat|account|access|data|workouts?"
    r"|history|streak)",
    rf"(?:{CHARGE}|billed) (?:\w+ ){{0,8}}?but (?:i|we) (?:\w+ )?(?:cancel\w*|never|didnt"
    r"|already|did not)",
    r"(?:second|third|fourth|2nd|3rd|4th|5th) (?:time|one|account)|keeps? happening",
    r"(?:happened|done it|did it) again",
)
# Any sign of something failing: at least P3. None at all: a question or a request, P4.
SEVERITY_FAILURE = rx(
    r"not (?:working|loading|showing|syncing|saving|updating|appearing|arriving|counting)",
    NOT_FLOWING,
    r"doesnt|didnt|isnt|arent|wasnt|werent|wont|cant|cannot|couldnt|unable|stopped|never",
    r"dont (?:get|receive|see|play|work|load|show)",
    r"fail(?:s|ed|ing|ure)?|errors?|bug(?:s|gy)?|broken|crash\w*|glitch\w*",
    r"stuck|frozen|freez\w*|missing|wrong|incorrect\w*|disappeared|vanished|gone|lost",
    r"(?:no|nao|non|nicht|pas) (?:se |si |sich )?(?:\w+ )?(?:guarda\w*|salva\w*|sincroniza\w*"
    r"|carga|abre|funciona\w*|gespeichert|speichert|enregistre\w*|synchronise\w*)",
    r"problem|issue|keeps|declined|removed|hidden|deleted|blocked|harass\w*|rude",
    r"but still|still (?:got|getting|being|shows?|says)",
    r"skipped|jumped (?:ahead|the queue|over)",
    r"(?:took|got|gave|given|went) (?:away )?(?:my|the|to) spot",
    r"not booked|but (?:the app|it) (?:says|shows)|out of (?:order|sync)|doesnt match",
    r"(?:logged|signed|kicked) out|(?:logs|signs|kicks) me out|expired|every ?time|each time",
    r"ogni volta|cada vez|toda vez|jedes mal|chaque fois|corrupt\w*|damaged",
    r"cargando|carregando|chargement|caricamento|(?:stuck|keeps) loading|its been \d+",
    r"cut off|truncated|chopped|twice|duplicat\w*|limited|suspended|doubled|dobro|en double",
    r"(?:asks?|asking) me to (?:reconnect|re-?auth\w*|log ?in|sign ?in)|disconnect(?:s|ed|ing)",
    r"(?:is|are|was) not \w+ing|(?:kindly|please) fix|fix (?:this|it)|havent|hasnt",
    MODERATED,
    r"(?:shows?|showed|says|said) (?:\w+ )?(?:full|empty|zero|nothing|wrong)",
    r"still (?:log ?in|login|access|get|receive\w*|see)",
    r"different\w*|differs|mismatch|off by|instead of|(?:are|is) off|unreadable|blur\w*",
    r"only (?:shows|includes|goes back|the first|has)|half (?:of )?(?:what|the)",
    r"late|slow|delay\w*|(?:takes?|took) (?:\d+|hours|days)",
    r"without|sem|ohne|sans|senza|lacks?|nao tem|no tiene|fehlt",
    r"no funciona|nao funciona|funktioniert nicht|ne marche pas|ne fonctionne pas|non funziona",
    r"errad[oa]|falsch|erreur|errore|fehler|problema|kaputt|kapot",
    # "Nothing happens / arrives" and slowness, in English and the languages customers mix in.
    r"(?:does|did|do) nothing|nothing (?:happens|arrives|shows|comes)|not ready|spinning",
    r"niente|nada|nichts|rien|nulla|niets|nic nie|kommen? nicht|kommt nicht|nao chega\w*",
    r"no llega\w*|non arriva\w*|komt niet|wolno|lent[oa]s?|langsam|traag|froze",
)
# A question, a how-to or a status inquiry: P4 unless a hard failure is reported too.
SEVERITY_QUESTION = Pattern(
    # A sentence or clause that opens like a question: "Does KRUXT ...", "If I close ..., do my".
    r"(?:^|[.!?]\s*|\n\s*|,\s*)(?:do|does|did|will|would|can|could|should|is|are|am)\s+"
    r"(?:i|we|you|u|my|the|it|they|this|that|kruxt|there)\b|"
    + words(
        r"how (?:do|can|should|would|does|long|far|much|many|to)",
        r"is (?:it|there) (?:possible|a way|any way)|can (?:i|we|u)|could (?:i|we)",
        r"what (?:is|are|happens|does)|whats|if i \w+",
        r"when (?:will|does|do|is|can|should)|where (?:can|do|is|are)",
        r"would you consider|status of|any update|any news|please confirm",
        r"wanted to (?:know|ask)|wondering|gostaria de saber|quisiera saber|queria saber",
        r"como (?:faco|puedo|posso|hago)|wie kann ich|kann ich|gibt es|est-ce que",
        r"comment (?:faire|puis-je|je peux)|come (?:posso|faccio)|e possivel|es posible",
        r"est-il possible|ist es moglich|e possibile|se puede|da para",
    )
)
# Failure reports that a polite question at the end does not turn into a P4.
SEVERITY_HARD_FAILURE = rx(
    r"not working|stopped working|isnt working|doesnt work|broken|error|fail\w*|crash\w*",
    r"keeps|still (?:cant|can not|cannot|not|getting|receiving|charg\w*|logs in|works|active"
    r"|log ?in|login|access|get|receive\w*|see|messaging)",
    r"wont|no funciona|nao funciona|funktioniert nicht|ne marche pas|non funziona",
)


def severity_of(text: bytes, out_of_scope: bool) -> Priority:
    """The severity ladder: the first step that applies decides."""
    if out_of_scope:
        return Priority.P4
    workaround = SEVERITY_WORKAROUND.search(text) is not None
    if SEVERITY_P1.search(text) or (SEVERITY_MANY_USERS.search(text) and not workaround):
        return Priority.P1
    no_workaround = SEVERITY_NO_WORKAROUND.search(text) is not None
    core_broken = SEVERITY_P2.search(text) is not None
    # A workaround implies something to work around.
    if not (no_workaround or core_broken or workaround or SEVERITY_FAILURE.search(text)):
        # No failure word: a question or a request is P4; a plain statement about the app
        # is usually a problem described in other words, P3.
        return Priority.P4
    hard_failure = no_workaround or core_broken or SEVERITY_HARD_FAILURE.search(text) is not None
    if SEVERITY_QUESTION.search(text) and not hard_failure:
        return Priority.P4
    if no_workaround:
        return Priority.P2
    if workaround:
        return Priority.P3
    return Priority.P2 if core_broken else Priority.P3
