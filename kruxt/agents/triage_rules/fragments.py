"""Regex fragments more than one table spells: negations, sign-in, workouts, charges ...

A fragment used by one category's table only lives in that category's module.
"""

from __future__ import annotations

from kruxt.agents.triage_rules.rules import any_of

# Fragments shared by the tables. The text is accent-folded ("exclusão" -> "exclusao") and
# apostrophes are removed ("can't" -> "cant") before matching, so the patterns spell words
# without accents or apostrophes. "could have" is matched as "could_ have" (see text.py):
# "nobody could have known" is no report that nobody can.
NEG = any_of(
    r"cant|cannot|can not|cnat|cannt|couldnt|could not|unable to|not able to|impossible to",
    r"impossibile|imposible|impossivel",
    r"(?:wont|doesnt|does not|didnt|will not) let (?:me|us|them)",
    r"(?:nobody|no one|noone|none of)(?: \w+){0,3} (?:can|could|is able to|are able to)",
    r"members cant",
    # Spanish, Portuguese, German, French, Italian.
    r"(?:ya )?no puedo|no me deja|nao consigo(?: mais)?|nao da (?:mais )?para|nao deixa",
    r"(?:kann|kannst|konnen|konnte|kan) (?:\w+ ){0,3}?(?:nicht|niet)",
    r"geht nicht|je ne peux (?:pas|plus)|je n ?arrive (?:pas|plus) a|impossible de",
    r"non riesco (?:piu )?ad?|non posso(?: piu)?",
)
LOGIN = any_of(
    r"log+(?:ing|ed)?[\s-]*(?:in|on)|log+in|logon",
    r"sign(?:ing|ed)?[\s-]*(?:in|on)|signin|sing[\s-]?in",
    r"anmelden|anmeldung|einloggen|eingeloggt|iniciar sesion|inicio de sesion|fazer login",
    r"connexion|me connecter|se connecter|accedere|accesso",
)
WORKOUT = any_of(
    r"workouts?|wor?kouts?|wokrouts?|workuots?|wrkouts?|work outs?|workots?|workuts?",
    r"trainings?|training sessions?|exercises?|lifts?|supersets?|drop ?sets?|circuits?",
    r"amraps?|emoms?|tabatas?|routines?|templates?|rutinas?|rotinas?",
    r"einheit(?:en)?|trainingseinheit\w*",
    r"entrenamientos?|entrenos?|treinos?|allenament[oi]|ejercicios?|exercicios?|esercizi",
    r"ubungen|seances? dentrainement|seances?",
)
# What a member does to a workout: save it, submit it, log it, in the languages they mix in.
SAVE = any_of(
    r"save[ds]?|saving|submit\w*|sumbit\w*|submti\w*|log(?:ged|ging|gin)?|record\w*",
    r"finish(?:ed|ing)?|upload(?:ed|ing|s)?|enter(?:ed|ing)?|add(?:ed|ing)?",
    r"guardar|guardo|guarda|salvar|salvo|salva|salvare|salvato|registrar|registro",
    r"speichern|speichert|gespeichert|enregistrer|enregistre|sauvegarder|sauvegarde",
    r"eintragen|nachtragen|erfassen|loggen|anotar|inserire|saisir|ajouter",
    r"finaliz\w*|termin(?:o|ar|e)|envi(?:ar|o)|absenden|abschliessen|terminer",
)
CREDENTIAL = any_of(
    r"password|pasword|passwrod|passowrd|passwd|paswrd|pwd|pword|pw|passcode|pin code",
    r"passwort|kennwort|senha|contrasena|mot de passe|mdp|wachtwoord|passkeys?|passwordless",
)
ACCOUNT = r"account|acct|conta|cuenta|konto|compte|profilo|profile|perfil|profil"
# Getting into an account: "get into", "entrar a", "acceder a", "accedere al".
ENTER = any_of(
    r"get into|get in to|access|enter|sign into|log into|into",
    r"entrar (?:a|na|en|no|em)|acceder a|acessar|accedere (?:a|al)|zugreifen auf",
)
BOOK = any_of(
    r"book(?:ed|ing|ings|s)?|reserv\w*|buch(?:en|ung|ungen|te)|gebucht|prenot\w*",
    r"agend(?:ar|ei|ado|amento)|inscri(?:bir|bi|cao|ption|re)|signed up for|sign up for",
)
GARMIN = any_of(
    r"garmin|garmn|garmim|gramin|garmon|garmen|forerunner|fenix|venu|vivoactive|vivosmart",
    r"epix|instinct|enduro|edge \d{3,4}",
)
APPLE_HEALTH = any_of(
    r"ap+le?[\s-]*(?:heal?th|salud|saude|sante|salute|gesundheit)|health[\s-]?kit",
    r"health app|app (?:salud|saude|sante|salute|health)|apple fitness|health sharing",
)
NOT_FLOWING = (
    r"(?:not|arent|isnt|wont|dont|doesnt|didnt|havent|hasnt|never|stopped|no longer|no|nao"
    r"|nicht|pas|non)"
    r"\s+(?:\w+\s+)?"
    r"(?:show(?:ing)?(?: up)?|appear(?:ing)?|import(?:ing)?|sync(?:ing)?|transfer(?:ring)?"
    r"|com(?:e|ing)(?: through| thru| across| over| in)?|pull(?:ing)?|updat(?:e|ing)"
    r"|upload(?:ing)?|arriv(?:e|ing)|count(?:ing)?|aparecen?|aparecem|erscheinen|apparaissent"
    r"|appaiono|sincroniza\w*|synchronis\w*)"
)
SYNC = r"sync(?:s|ed|ing)?|synch\w*|sinc|sincing|synk\w*|sincroniz\w*|synchronis\w*|sincron\w*"
GONE = any_of(
    r"gone|lost|deleted|missing|disappeared|vanish(?:ed|es)?|wiped|erased|empty|blank",
    r"desaparec\w*|sumiu|sumiram|perdi\w*|verschwunden|weg|disparu\w*|scompars\w*|spariti",
    r"dropped|cleared|perso|perse|persi|not there|no longer there|nowhere to be found",
    r"borrad[oa]s?|apagad[oa]s?|geloscht|supprimee?s?|cancellat[oa]|eliminad[oa]s?",
    r"cut off|truncated|chopped(?: off)?",
)
TWICE = r"twice|(?:\d|two|three|four|several|multiple) times|double|dos veces|duas vezes"
TWICE_MORE = r"zweimal|doppelt|deux fois|due volte|2x|x2"
CHARGE = any_of(
    r"charged?|charges|charging|cobr(?:ar|aram|aron|ado|ada|o|ou|anca)|cargos?",
    r"abgebucht|abbuchung\w*|abgezogen|belastet|debited|debito|debite|preleve\w*",
    r"prelevement|addebit\w*|deducted|withdr[ae]w\w*|took \S+ from",
)
# "charged me after I cancelled", "me cobraron despues de cancelar", "nach der Kundigung".
CHARGED_AFTER_CANCEL = (
    rf"(?:{CHARGE}) (?:\w+ ){{0,6}}?(?:after|depois|despues|nach|nachdem|apres|dopo)"
    r" (?:\w+ ){0,3}?(?:cancel\w*|kundig\w*|annul\w*|resili\w*|disdic\w*|disdett\w*)"
)
# "took $29.99 but my plan is $9.99".
CHARGED_NOT_PRICE = (
    rf"(?:{CHARGE}) (?:\w+ ){{0,6}}?(?:but|while|although|even though) (?:my |the |our )?"
    r"(?:plan|price|subscription|membership) (?:is|was|costs?)"
)
POST_VERB = any_of(
    r"post|comment|share|like|follow|publicar|comentar|postar|posten|kommentieren|publier",
    r"commenter|pubblicare|commentare",
)
MODERATED = any_of(
    r"removed|hidden|deleted|taken down|took down|flagged|hid|blurred|blur|under review",
    r"in review|restricted|limited|suspended|reported|banned|censored|shadow[\s-]?bann?ed",
    r"eliminad[oa]s?|removid[oa]s?|apagad[oa]s?|borrad[oa]s?|geloscht|entfernt|gesperrt",
    r"supprimee?s?|retiree?s?|masquee?s?|rimoss[oaie]|nascost[oaie]|ocult[oa]s?",
)
