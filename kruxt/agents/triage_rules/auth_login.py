"""The ``auth_login`` category: its weighted patterns and the texts it writes."""

from __future__ import annotations

from kruxt.agents.patterns import Guard
from kruxt.agents.triage_rules.fragments import ACCOUNT, CREDENTIAL, ENTER, LOGIN, NEG
from kruxt.agents.triage_rules.rules import CategoryText, Hint, Rule, rule, rx

__all__ = ["RULES", "TEXT"]

RULES: tuple[Rule, ...] = (
    # German/Dutch/Polish sign-in words customers mix in.
    rule(
        2.5,
        r"(?:nicht mehr |nicht )?einloggen|anmelden (?:geht|klappt) nicht|inloggen lukt niet",
        r"kann mich nicht (?:mehr )?(?:einloggen|anmelden)|nie moge sie zalogowac",
    ),
    rule(3.0, rf"(?:{NEG})\s+(?:\w+\s+)?(?:{LOGIN})"),
    rule(
        3.0,
        rf"(?:{NEG}) (?:{ENTER}) (?:my |our |the |minha |mi |la |meu |mein |mon )?"
        rf"(?:{ACCOUNT}|app|kruxt)",
    ),
    rule(
        3.0,
        r"locked out|lock(?:ed)? me out|lockout",
        rf"(?:{ACCOUNT}) (?:is |got |was |has been |esta |ist |est )?"
        r"(?:locked|lock|bloquead[oa]|gesperrt|bloquee?|bloccat[oa])",
    ),
    rule(2.5, r"too many (?:failed |wrong )?(?:attempts|tries|login attempts|requests)"),
    rule(
        2.0,
        rf"(?:try|trying|tried|when|whenever) (?:i )?(?:\w+ )?(?:to )?(?:{LOGIN})",
    ),
    rule(
        3.0,
        r"(?:forgot|forgotten|reset|resetting|change|changing|wrong|incorrect|new|olvide"
        r"|olvidado|esqueci|esquecido|redefinir|restablecer|zurucksetzen|reinitialiser"
        r"|oublie|oubliee|dimenticato|dimenticata|cambiar|alterar|mudar|andern|changer"
        r"|cambiare|modificar|recuperar)\s+(?:\w+\s+)?"
        rf"(?:{CREDENTIAL})",
        rf"(?:{CREDENTIAL}) (?:vergessen|oublie|dimenticata|incorrecta|errada|falsch)",
    ),
    rule(2.0, CREDENTIAL, r"credenciales|credenciais|credenziali|zugangsdaten|identifiants"),
    rule(
        2.5,
        rf"(?:{LOGIN})[\s-]*(?:issue|problem|error|fail\w*|loop|broken|page|screen|spins)",
        rf"(?:{LOGIN}) (?:is )?not working",
        r"invalid (?:credentials|login|email or password)|incorrect (?:email|credentials)",
    ),
    rule(
        2.0,
        r"verification (?:email|code|link|mail)|verify (?:my )?(?:email|account)",
        r"confirm(?:ation)? (?:my )?email|email (?:not )?verified|unverified",
        r"2fa|two[\s-]?(?:factor|step)|2[\s-]?step|mfa|otp|one[\s-]?time (?:code|password)",
        r"authenticator|double auth\w*|authentificat\w*|autenticac\w*|autenticazion\w*",
        r"authentifizierung|zwei-?faktor|2-?faktor",
        r"(?:6|six)[\s-]?digit code|sms code|security code|login code|sign[\s-]?in code",
        r"magic link|reset link|codigo de verificacao|codigo de verificacion",
        r"resend|resent|send again|sent again|reenviar|erneut senden|renvoyer",
        r"code de verification|codice di verifica|bestatigungs(?:code|mail|link)",
        r"(?:codes?|codigo|codice|sms|text message)s? (?:\w+ ){0,6}?(?:never|not|doesnt|didnt"
        r"|isnt|dont|no|nao|non|nicht|pas|jamais|mai) (?:\w+ )?(?:arriv\w*|com\w*|show\w* up"
        r"|llega\w*|chega\w*|kommt)",
    ),
    rule(
        1.5,
        r"(?:e-?mails?|correo|mail) (?:\w+ ){0,6}?(?:never|not|doesnt|didnt|isnt|dont|no|nao"
        r"|non|nicht|pas) (?:\w+ )?(?:arriv\w*|com\w*|show\w* up|llega\w*|chega\w*|kommt)",
        r"no me llega|nao (?:me )?chega|nao recebi|kommt nicht an|ne recois pas",
        r"non (?:mi )?arriva",
    ),
    rule(
        3.0,
        Guard(
            r"(?:cant|cannot|can not|couldnt|unable to) get (?:back )?in",
            not_after=r" (?:to )?(?:the |a |my )?(?:class|session|waitlist|spot)",
        ),
    ),
    rule(
        2.0,
        r"(?:lost|lose|losing|no longer have|dont have|without) access to (?:\w+ ){0,2}"
        r"(?:email|phone|number|account)",
        r"get back in(?:to)?|sign back in|log back in|(?:login|sign-in|usual) details",
        r"credentials",
    ),
    rule(
        2.5,
        r"remember me|(?:not|doesnt|dont|wont|never) remember\w* me",
        r"remember (?:this|my) (?:device|phone|browser)|se souvenir|lembrar (?:de )?(?:mim"
        r"|este)|recordar(?:me)?|ricordami|angemeldet bleiben",
        r"(?:stay|keep me|keeps me) (?:logged|signed) in",
        rf"(?:log|sign) ?in again|(?:{CREDENTIAL}) (?:\w+ )?(?:again|every ?time|each time)",
        r"(?:signed|logged) in on (?:two|2|both|multiple|several|another|other|a second)"
        r" (?:phones?|devices?|tablets?|ipads?)",
        r"(?:two|2|multiple|several) (?:phones|devices) at (?:the same time|once)",
    ),
    rule(
        2.5,
        r"(?:google|apple|facebook) (?:sign|log)[\s-]?in|sso|single sign-on",
        r"sign in with (?:apple|google|facebook)",
    ),
    rule(2.0, r"face ?id|touch ?id|biometric\w*|fingerprint"),
    rule(
        3.0,
        r"(?:email|account|user|username) (?:\w+ )?(?:is )?(?:not|isnt|wasnt) (?:recogni[sz]ed"
        r"|found|registered)|(?:unknown|unrecogni[sz]ed) (?:email|user)",
        r"(?:doesnt|does not|dont|wont) recogni[sz]e (?:my )?(?:email|account|details)",
    ),
    rule(
        2.0,
        r"switch (?:between )?accounts|multiple accounts|second account|another account",
        r"share (?:an? |one |the )?(?:ipad|phone|tablet|device)",
    ),
    rule(
        1.5,
        r"no account (?:found|exists)|account (?:not found|doesnt exist|does not exist)",
        r"(?:change|changing|update|updating|switch|switching) (?:the |my )?"
        r"(?:login |sign-?in )?(?:email|e-mail|username|login)",
        r"(?:login|sign-?in) (?:email|e-mail|username)",
        r"(?:email|address|username) i (?:sign|log) ?in with",
        r"sign[\s-]?up|registration|register(?:ed)?|cadastr\w*|me registre",
    ),
    rule(
        2.0,
        r"(?:confirm|verify|activate) (?:my )?account|activation (?:email|link|code)",
        r"(?:email|correo|e-mail|mail) (?:\w+ ){0,3}(?:to |para |for )?"
        r"(?:confirm|verif|activ)\w*",
    ),
    rule(
        3.0,
        r"(?:landed|ended up|logged into|logged in to|signed into|showed me|got|see|seeing)"
        r" (?:\w+ ){0,3}(?:a strangers|someone elses|somebody elses|another (?:persons?|users?"
        r"|members?)|a different (?:persons?|users?|members?)|the wrong|wrong) (?:account"
        r"|profile)",
    ),
    rule(
        2.5,
        r"(?:keeps?|kept) (?:logging|signing|kicking) me out",
        r"(?:logs|logged|signs|kicks) me out",
        r"(?:getting|got|get|gets|being) (?:logged|signed|kicked) out",
    ),
    rule(1.5, r"session (?:expired|ended|timed out|keeps expiring|invalid|expires)"),
    rule(
        2.0,
        r"hacked|unknown (?:device|login)",
        r"someone (?:else )?(?:logged|signed) in(?:to)?",
        r"someone (?:else )?(?:is )?using my account",
    ),
    rule(1.0, LOGIN),
)

TEXT = CategoryText(
    "Sign-in problem",
    "Account locked after repeated failed sign-ins, or an unverified email",
    "Diagnose lock state and sessions; propose unlock or verification resend for approval",
    (
        Hint(
            rx(
                r"hacked|compromised|unknown (?:device|login)",
                r"someone (?:else )?(?:logged|signed|is using)",
            ),
            "Possible account takeover: a sign-in or account change the owner did not make",
            "Treat as a security incident: review recent sessions and account changes; "
            "propose revoking sessions for admin approval",
        ),
        Hint(
            rx(
                r"verif\w*|confirm(?:ation)? (?:my )?email|unverified",
                r"magic link|2fa|two[\s-]?factor|otp|login code",
            ),
            "Verification or sign-in email/code not delivered, or the link expired",
            "Check email verification state and delivery; propose a verification resend for "
            "approval",
        ),
        Hint(
            rx(CREDENTIAL, r"reset link|reset email"),
            "Password reset email not delivered or its link expired, or the account is locked",
            "Check lock state, failed sign-ins and reset email delivery; propose an unlock "
            "for approval only if the account is locked",
        ),
        Hint(
            rx(r"(?:logged|signed|kicked) out|(?:logs|signs|kicks) me out|session"),
            "Sessions revoked or expiring early, e.g. after a password change or app update",
            "Review the account's sessions and recent revocations; no change without approval",
        ),
    ),
)
