"""The ``privacy_request_status`` category: its weighted patterns and the texts it writes."""

from __future__ import annotations

from kruxt.agents.triage_rules.fragments import ACCOUNT
from kruxt.agents.triage_rules.rules import CategoryText, Rule, any_of, rule

__all__ = ["RULES", "TEXT"]

_ERASE = any_of(
    r"delete|deleting|deleted|erase|erasing|erased|remove|removing|wipe|wiping|purge|close",
    r"closing|closed",
    r"borrar|eliminar|excluir|apagar|encerrar|loschen|supprimer|effacer|eliminare|cancellare",
)
_PERSONAL_DATA = any_of(
    r"data|information|info|personal \w+|dados|datos|daten|donnees|dati|everything",
)
_POSSESSIVE = r"my|our|her|his|their|meus|mis|meine|mes|i miei|seus|sus|ihre"

RULES: tuple[Rule, ...] = (
    # Deletion and access requests in other words and languages.
    rule(
        2.5,
        r"(?:delete|remove|erase) (?:my |his |her |their )?(?:son|daughter|childs?|kids?)s? "
        r"(?:acc?ount|profile|data)",
        r"(?:requested|asked) (?:to |for )?(?:delete|deletion|remov\w*|erase)\w* (?:of )?"
        r"(?:my )?(?:acc?ount|ac+ount|profile|data)",
        r"article 15|subject access request|everything (?:\w+ ){0,4}(?:hold|holds|have|keep)"
        r" about (?:me|her|him|them)",
        r"verwijder\w*|verzoek\w*|usun\w* (?:konto|dane)",
        r"export (?:done|ready|completed)|download (?:button|link) (?:\w+ ){0,3}export",
    ),
    rule(
        3.0,
        r"privacy request|data request|gdpr|rgpd|dsgvo|lgpd|ccpa|cpra|dsar|pipeda",
        r"subject access request|right to (?:be forgotten|erasure|access|portability)",
        r"data protection|proteccion de datos|protecao de dados|datenschutz\w*",
        r"protection des donnees|protezione dei dati",
    ),
    rule(
        3.0,
        rf"(?:{_ERASE}) (?:\w+ )?(?:my |our |the |mi |minha |a |la |mein |meinen |mon |ma "
        rf"|il mio |il )?(?:whole |entire )?(?:{ACCOUNT})",
        rf"(?:{ACCOUNT}) (?:\w+ )?(?:deletion|loschen|loschung|suppression|exclusao"
        r"|eliminacion|cancellazione)",
        r"(?:account|data) (?:deletion|removal|erasure|closure)",
        r"(?:deletion|delete|removal|erasure) request",
        r"(?:suppression|exclusao|eliminacion|loschung|cancellazione|deletion|removal|closure)"
        r" (?:of |du |de |da |do |del |des |dell |della )?(?:the |my |mon |ma |la |le |o |a "
        r"|mi |minha |mein |meines )?(?:\w+ )?(?:account|compte|conta|cuenta|konto|kontos"
        r"|data|donnees|dados|datos|daten|dati)",
    ),
    rule(
        3.0,
        rf"(?:{_ERASE}) (?:all )?(?:of )?(?:(?:{_POSSESSIVE}) )?(?:{_PERSONAL_DATA})",
        rf"(?:{_POSSESSIVE}|all|the) (?:personal )?(?:data|information|dados|datos|daten"
        r"|donnees|dati) (?:\w+ )?(?:deleted|erased|removed|wiped|apagados|borrados|geloscht"
        r"|supprimees|cancellati)",
        r"(?:asked for|requested|request|requesting|pedi|solicite) (?:a copy of )?(?:all )?"
        r"(?:my |our )?(?:personal )?(?:data|dados|datos|daten|donnees|dati)",
        r"erase|erasure|forget (?:about )?me|everything (?:you have )?(?:on|about) me",
        r"(?:exclusao|eliminacion|loschung|suppression|cancellazione) (?:\w+ )?"
        r"(?:dados|datos|daten|donnees|dati)",
    ),
    rule(
        3.0,
        r"(?:data|information|info|dados|datos|daten|donnees|dati) (?:\w+ ){0,3}(?:has|have"
        r"|hold\w*|stor\w*|keep\w*|collect\w*) (?:on|about) me",
        r"(?:descargar|baixar|herunterladen|telecharger|scaricare|exportar|copia de)"
        r" (?:\w+ ){0,2}(?:datos|dados|daten|donnees|dati)",
        r"(?:share|sell|sells|shared|sold) (?:my |it |the )?(?:data|information)",
        rf"(?:have|get|want|asked|requested) (?:\w+ )?(?:my |all my )?(?:{ACCOUNT}|data)"
        r" (?:\w+ )?(?:removed|deleted|erased|wiped|closed)",
        r"(?:export|download|copy|archive|zip)(?:ed)? (?:of )?(?:all )?(?:my |the |our )?"
        rf"(?:personal )?(?:{_PERSONAL_DATA}|account data|account)",
        r"data (?:export|download|copy|archive|portability)|export request|takeout",
        r"(?:my|the|your) (?:data )?(?:export|archive)(?: file| link)?",
        r"exportar|exportacao|exportieren|telecharger mes donnees|datenexport\w*",
        r"datenauskunft|export de (?:mes )?donnees|esportazione dei dati",
    ),
    rule(
        2.0,
        r"personal (?:data|information|info)|datos personales|dados pessoais",
        r"personenbezogene\w*|donnees personnelles|dati personali|privacy|privacidade",
        r"privacidad|confidentialite|download link",
    ),
    rule(
        2.5,
        r"status of (?:my|the) (?:\w+ )?(?:request|deletion|export)",
        r"my (?:\w+ )?(?:deletion|export|erasure|privacy) request",
        r"(?:deletion|export|erasure|removal) (?:request|pending|status|is ready)",
        r"pending deletion|scheduled (?:for )?deletion|will be (?:deleted|erased|wiped)",
        r"cancel(?:led)? (?:the |my )?deletion",
        r"(?:export|deletion|archive|request|auskunft) (?:\w+ ){0,2}?(?:is |wird |esta |est "
        r"|e )?(?:ready|pending|preparing|vorbereitet|in bearbeitung|in progress|processing"
        r"|stuck|en cours|em andamento|en proceso|in lavorazione)",
    ),
    rule(
        1.0,
        r"my data|deletion|exports?|archive|zip|marketing emails|protocol\w*|dossier",
        r"case number|reference number|aktenzeichen",
        r"wipe|wiping|delete my",
    ),
)

TEXT = CategoryText(
    "Privacy request status inquiry",
    "Export or deletion request still within its processing window, or its notice not seen",
    "Look up the request and its due date; answer from the knowledge base; privacy state "
    "is never changed by automation",
)
