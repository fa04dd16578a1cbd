"""The ``workout_log_submit`` category: its weighted patterns and the texts it writes."""

from __future__ import annotations

from kruxt.agents.triage_rules.fragments import GONE, NEG, SAVE, WORKOUT
from kruxt.agents.triage_rules.rules import CategoryText, Hint, Rule, any_of, rule, rx

__all__ = ["RULES", "TEXT"]

_ARTICLE = any_of(
    r"my|a|an|the|this|that|todays|last|each|every|o|meu|minha|mi|el|la|il|mio|l|lo",
    r"mon|ma|le|mein|meine|das|den|der|die|mes|meus|mis|os|as|los|las|gli|i|ein|eine",
    r"einen|un|una|uma|une",
)

RULES: tuple[Rule, ...] = (
    # Polish/Dutch "saving the workout" wordings.
    rule(2.5, r"zapis\w* trening\w*|trening\w* (?:nie )?zapis\w*|training opslaan"),
    rule(
        3.0,
        rf"(?:{WORKOUT}|sessions?|sets|logs?)\s+(?:\w+\s+){{0,3}}?"
        r"(?:wont|will not|doesnt|does not|didnt|did not|isnt|is not|arent|are not|not"
        r"|never|failed to|fails to|cant|wouldnt|no|nao|nicht|pas|non)\s+(?:\w+\s+){0,2}?"
        r"(?:save[ds]?|saving|submit\w*|sumbit\w*|log(?:ged|ging)?|record\w*|finish\w*"
        r"|post\w*|upload\w*|stick|stay|guard\w*|salv\w*|speicher\w*|gespeichert"
        r"|enregistr\w*|registr\w*|sauvegard\w*)",
    ),
    rule(
        3.0,
        rf"(?:{NEG})\s+(?:\w+\s+)?(?:{SAVE})\s+(?:\w+\s+)?"
        rf"(?:{WORKOUT}|sets?|reps|sessions?|training)",
    ),
    rule(
        2.0,
        rf"(?:{SAVE})\s+(?:(?:{_ARTICLE})\s+)?(?:{WORKOUT}|session)",
        rf"(?:{WORKOUT}|session) (?:for|from|de|von|du|di) (?:yesterday|last \w+|ayer|ontem"
        r"|gestern|hier|ieri)",
    ),
    rule(
        2.0,
        r"(?:failed|error|problem|stuck) (?:to |when |while |on )?(?:sav|submitt|upload)ing",
        r"(?:save|submit|submission|upload|finish) (?:failed|fails|error|button)",
        r"stuck on (?:saving|submitting|finishing|uploading)",
        r"(?:taps?|tapped|press|pressed|click|clicked|hit) (?:on )?(?:save|finish|submit|done"
        r"|complete|speichern|guardar|salvar|terminer|enregistrer|salva)",
        r"offline (?:queue|mode)|pending upload|(?:doesnt|wont|didnt|not) upload\w*",
        r"(?:no|without) (?:signal|reception|internet|connection|wifi)",
        r"(?:app|it) (?:forgot|lost|didnt keep|did not keep) (?:my )?(?:\w+ )?"
        r"(?:workout|session|training|sets)",
        r"mid[\s-]?(?:workout|session|set)|(?:during|in the middle of) (?:a |my |the )?"
        r"(?:workout|session|set|training)",
        r"lose (?:what|everything) i (?:entered|logged|typed|did)",
        r"(?:logging|log|logged|entered|entering) (?:in|as) (?:pounds|lbs|kg|kilos|kilograms)",
    ),
    rule(
        3.0,
        rf"(?:{WORKOUT}|sets|reps|series|serie|satze|history|historial|historico|verlauf"
        r"|historique|storico|logs?|progress|prs?|notes|sessions?)\s+(?:\w+\s+){0,5}?"
        rf"(?:are |is |were |was |have |has |esta |ist |est )?(?:been )?(?:{GONE})",
        r"history (?:\w+ )?(?:starts|begins) (?:from |at )?today",
    ),
    rule(
        2.5,
        rf"(?:lost|perdi|perdu|perso|verloren) (?:my |all (?:of )?my |todays |tutte le |todas "
        rf"as |todos los |toutes mes |alle )?(?:\w+ )?(?:{WORKOUT}|sets|logs|history|series"
        r"|serie|sessions)",
    ),
    rule(
        2.0,
        r"(?:edit|change|fix|correct|delete|deleted|remove|undo|copy|repeat|duplicate|reuse"
        r"|recover|restore|get back|editar|borre|borrar|apague|apagar|recuperar|bearbeiten"
        r"|loschen|wiederherstellen|modifier|recuperer|modificare|recuperare)"
        rf" (?:(?:{_ARTICLE}) )?(?:\w+ )?(?:{WORKOUT}|session|set|entry|log)",
        rf"(?:{WORKOUT}|sessions?) (?:\w+ ){{0,2}}(?:logged|saved|recorded|submitted"
        r"|finish|finished|eintragen|nachtragen|speichern|loggen|erfassen)",
        rf"(?:{WORKOUT}|sessions?|entries|sets) (?:\w+ ){{0,4}}(?:appears?|shows? up|saved"
        r"|logged|listed|counted) (?:twice|double|two times|duplicated)",
        rf"duplicated? (?:{WORKOUT}|sessions?|entries|sets)",
        r"(?:logged|saved|recorded|entered) (?:every|each|all|my)? ?(?:sets?|reps?|exercises?)",
        r"(?:logged|saved|entered|added|recorded) (?:\w+ ){0,6}(?:by mistake|accidentally)",
    ),
    rule(
        2.5,
        r"(?:prs?|personal (?:records?|bests?)|pbs?) (?:\w+ ){0,3}"
        r"(?:not|isnt|wasnt|arent|never) (?:being )?"
        r"(?:counted|recogni[sz]ed|detected|showing|updated|saved)",
    ),
    rule(
        2.0,
        r"workout (?:log|logger|history|summary|screen)|training (?:log|history|record)",
        r"(?:session|workout) summary|total volume|tonnage|one rep max|1rm|e1rm",
        r"program tracking|logbook|(?:workout|training) data",
    ),
    rule(
        2.0,
        rf"(?:weights?|kg|lbs|kilos|pounds) (?:\w+ ){{0,4}}(?:{SAVE}|shows?) as",
        r"(?:date|time|weight|reps|sets) (?:\w+ )?(?:is |fica |esta |ist )?"
        r"(?:wrong|errad[oa]|falsch|incorrect\w*)",
    ),
    rule(1.0, WORKOUT),
    rule(1.0, r"history|historial|historico|verlauf|historique|storico|on behalf of"),
    rule(
        0.5,
        r"sets?|reps|personal (?:record|best)|prs?|1rm|bench|squat|deadlift|rpe|notes",
    ),
)

TEXT = CategoryText(
    "Workout log submit failure",
    "Workout submission rejected by the API or stuck in the app's offline queue",
    "Check recent failed submissions and their errors; propose a replay for approval",
    (
        Hint(
            rx(r"all (?:of )?my|wiped|lost (?:all|everything)"),
            "Workouts missing from the account: failed submissions, or a sync/data-loss bug",
            "Count stored vs. failed submissions for the account; raise an incident if other "
            "users are hit; propose replays for approval",
        ),
    ),
)
