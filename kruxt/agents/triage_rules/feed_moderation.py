"""The ``feed_moderation`` category: its weighted patterns and the texts it writes."""

from __future__ import annotations

from kruxt.agents.patterns import Guard
from kruxt.agents.triage_rules.fragments import ACCOUNT, GONE, MODERATED, NEG, POST_VERB
from kruxt.agents.triage_rules.rules import CategoryText, Hint, Rule, any_of, rule, rx

__all__ = ["RULES", "TEXT"]

_POST = any_of(
    r"posts?|photos?|pics?|pictures?|videos?|comments?|stor(?:y|ies)|reels?|content",
    r"publicac\w*|publicacion\w*|beitrag|beitrage|kommentare?|commentaires?|comentarios?",
    r"comment[io]|fotos?",
)

RULES: tuple[Rule, ...] = (
    # Comments, restrictions and blocks, however they are spelled.
    rule(
        2.5,
        r"hate?ful+ co?m+ents?|co?m+ents? (?:on|under) (?:my|a|every|all my) (?:\w+ )?posts?",
        r"turn off comments|restricted from (?:posting|commenting)|posting privileges",
        r"blockiert|geblokkeerd|zablokowa\w*",
    ),
    rule(
        3.0,
        rf"(?:{_POST})\s+(?:\w+\s+){{0,2}}?"
        r"(?:was |were |got |get |gets |getting |has been |have been |been |keeps? getting |"
        rf"is |are |foi |fue |wurde |a ete )?(?:{MODERATED})",
        r"(?:removed|hid|deleted|took down|flagged|blurred|hiding|restricted|censored)"
        rf" (?:my|his|her|their|the|our) (?:\w+ )?(?:{_POST})",
    ),
    rule(
        3.0,
        r"shadow[\s-]?bann?(?:ed)?|shadowban\w*|sensitive content|content warning",
        r"(?:pending|under|in|awaiting) review",
        r"community (?:guidelines|rules|standards)|moderat(?:or|ors|ion|ed)",
        r"violat\w* (?:our |the |your )?(?:guidelines|rules|policy|policies|terms)",
    ),
    rule(
        2.5,
        r"report(?:ed|ing)? (?:a |this |the |his |her |their |that )?"
        r"(?:post|user|comment|account|profile|person|photo|him|her|them|guy|man|woman)",
        r"report(?:ed)? against|denunci\w*|signaler|signale|gemeldet|segnal\w*|reportar",
        r"reportei|(?:melden|reportar|signaler) (?:\w+ )?(?:usuario|nutzer|utilisateur|utente)",
    ),
    rule(
        2.5,
        r"block(?:ed|ing)? (?:a |this |the |that |my )?"
        r"(?:user|person|someone|him|her|them|me|account|guy|man|woman|sister|brother|ex)",
        r"(?:i|we) block(?:ed)?|blocked (?:user|list|people)|unblock\w*",
        r"(?:bloquei|bloquee|bloque|blockiert|blockiere|ho bloccato|bloqueado) (?:a |o |al |el"
        r" |la |le |il |ihn|sie|esse|este|ese|cette|diese\w*|questo|questa)",
        r"(?:desbloque\w*|entsperr\w*|debloqu\w*|sbloccar\w*) (?:a |o |al )?(?:una? |esta "
        r"|essa |uma )?(?:persona|pessoa|alguien|alguem|usuario|utilisateur|utente|nutzer"
        r"|person|personne|ele|ela|ella|el)",
    ),
    rule(
        2.0,
        r"harass\w*|bully\w*|abusive|inappropriate|offensive|hate speech|nudity",
        r"ofensiv\w*|offensant\w*|offensiv\w*|beleidigend\w*",
        Guard(
            r"spam()\w*",
            not_before=("in ", "in my ", "in the "),
            not_after=r"\s*(?:folder|box|filter)",
        ),
        r"creep\w*|stalk\w*|threat\w*|rude|insult\w*|nasty|body[\s-]?sham\w*|troll\w*",
        r"acos\w*|assedi\w*|belastig\w*|harcel\w*|molest\w*|beleidig\w*|mechants?",
        r"impersonat\w*|fake (?:account|profile)s?|(?:with|on|from) a new account",
        r"mean (?:comments?|messages?|replies)|pretending to be",
        rf"(?:comments?|commenting|messages?) (?:\w+ ){{0,2}}(?:under|on|about) (?:all )?my "
        rf"(?:\w+ )?(?:{_POST}|body|profile)",
    ),
    rule(
        2.5,
        r"stop (?:\w+ ){0,3}from seeing|hide (?:\w+ ){0,3}from|who can see (?:my|what)",
        r"(?:can|cant|can still) see my (?:posts?|profile|photos?|pics?|videos?|stuff)",
        r"what i (?:share|post)|(?:private|public) (?:profile|posts?)",
        r"profile (?:is )?(?:private|public)",
        r"(?:page|profile|account) (?:\w+ ){0,4}?(?:is |was |got |has been )?(?:suspended"
        r"|limited|restricted|hidden|banned|taken down)",
        rf"(?:{NEG}|not allowed to) (?:\w+ )?(?:{POST_VERB})",
        rf"(?:{ACCOUNT}) (?:\w+ )?(?:limitad[ao]|restringid[ao]|eingeschrankt|limitee"
        r"|limitat[ao])",
        r"(?:posting|stealing|using|reposting|reposted|sharing|shared|stole|screenshot\w*)"
        r" my (?:\w+ )?(?:photos?|pics?|pictures?|videos?|content)",
        r"take (?:them|it|this|that|those|these) down",
    ),
    rule(2.0, r"feed|timeline|for you page|explore page|content policy"),
    rule(
        2.0,
        r"follower count|lost (?:\w+ )?followers|followers? (?:\w+ )?(?:dropped|drop|went down"
        r"|disappeared|gone)",
    ),
    rule(
        3.0,
        r"kill (?:myself|yourself|urself|themselves)|kys|telling me to die|self[\s-]?harm",
        r"suicide|suicidal",
    ),
    rule(
        2.0,
        r"flagg(?:ed|ing)|flags|restored|taken down",
        rf"(?:{_POST}) (?:\w+ )?(?:is |was |got |ist |esta |est )?(?:{GONE})",
        r"(?:everything|things?|stuff) i (?:share|post|put up|upload)",
    ),
    rule(
        1.5,
        r"(?:posts?|comments?) (?:are |is )?(?:not )?(?:visible|showing|public|private)",
        r"visibility|followers?|follow(?:ing|s)?|unfollow\w*|kudos|likes|liked my|mute[ds]?",
    ),
    rule(1.0, r"reported|reports?"),
    rule(1.0, _POST),
)

TEXT = CategoryText(
    "Feed visibility or moderation dispute",
    "Post hidden by a report or moderation rule, or visibility limited by a block",
    "Review post visibility, reports and moderation history; escalate policy calls to a "
    "moderator; blocks between users are never changed",
    (
        Hint(
            rx(r"harass\w*|bully\w*|abusive|stalk\w*|creep\w*|threat\w*|hate speech"),
            "Reported abuse from another member awaiting moderator review",
            "Send to a moderator with the reports and history; point the member to block and "
            "report; no automated change",
        ),
        Hint(
            rx(r"block\w*"),
            "A block between the members shaping what each one sees",
            "Explain how blocks affect visibility; review reports if abuse is alleged; blocks "
            "between users are never changed by support",
        ),
    ),
)
