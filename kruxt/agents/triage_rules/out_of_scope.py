"""What speaks for ``other``: requests that are not app support, and app areas no playbook covers.

Both compete with the categories' scores; ``TEXT`` is what the triager writes for ``other``.
"""

from __future__ import annotations

from kruxt.agents.triage_rules.rules import CategoryText, Rule, rule

__all__ = ["NO_PLAYBOOK_RULES", "OUT_OF_SCOPE_RULES", "TEXT"]

# Other companies' paid apps and services (not the integrations KRUXT syncs with).
_OTHER_APPS = (
    r"myfitnesspal|my fitness pal|peloton|fitbit|whoop|zwift|noom|oura|nike (?:run|training)"
    r" club|apple (?:fitness|one)|spotify|netflix|youtube"
)

# Requests that are not app support at all: no playbook can help and the severity is P4. They
# compete with the categories, so "my Garmin screen cracked" is a repair request, not a sync one.
OUT_OF_SCOPE_RULES: tuple[Rule, ...] = (
    # Hardware damage and repairs.
    rule(2.5, r"warranty|garantia|garantie|garanzia"),
    # A device that will not even start is a hardware fault, whatever app it syncs with.
    rule(
        4.0,
        r"(?:wont|doesnt|does not|will not) (?:turn|switch|power) on|bricked|wont charge",
        r"not charging|(?:wont|doesnt) boot",
    ),
    rule(
        3.0,
        r"crack(?:ed|s)?|shattered|screen (?:is )?(?:broke|broken|smashed)|water damage",
        r"battery (?:died|dies|swollen|wont charge)",
        r"(?:strap|band|charger|cable|buckle) (?:\w+ )?(?:broke|broken|snapped|stopped working)",
        r"touch ?screen (?:is )?(?:frozen|broken|dead|unresponsive|black)",
        r"send (?:me )?(?:a )?(?:new|replacement) (?:\w+ ){0,2}(?:strap|watch|device|unit|band"
        r"|charger|cable|sensor|monitor)",
    ),
    rule(
        2.0,
        r"repairs?|repaired|reparac\w*|reparatur|reparation|riparazion\w*|dropped (?:it|my)",
        r"send (?:me )?a (?:new|replacement) one|replacement (?:watch|device|unit|strap|band)",
        r"mine (?:\w+ )?(?:stopped working|broke|died)",
        r"power button|unplug\w*|firmware",
    ),
    # Writing and homework requests.
    rule(
        3.0,
        r"write (?:me |us )?(?:a|an|my|the|some)(?: \w+){0,3} (?:toast|poem|essay|speech|story"
        r"|song|letter|cover letter|caption|bio|homework|article|blog post|limerick)",
        r"essay|homework|poem|toast for|wedding speech",
    ),
    # Sales, partnerships, jobs, research.
    rule(
        3.0,
        r"partnerships?|collaborat\w*|collab|sponsored placements?|co-?branded|affiliate program",
        r"business proposal|(?:jump|hop) on a (?:quick )?call|schedule a call",
        r"best person to (?:chat|talk|speak|contact)|decision maker|seo|page (?:1|one) of google",
        r"first page of google|free audit|affordable packages?|guaranteed results",
        r"lead generation|marketing services|development services|franchise\w*|investment",
        r"investors?|roi|royalt(?:y|ies)|reseller|wholesale|distributor",
    ),
    rule(
        2.5,
        r"hiring manager|my cv|curriculum|cover letter|job (?:application|opening|offer)",
        r"apply for the (?:position|role|job)|internship",
        r"interview|thesis|dissertation|survey|questionnaire|research project",
        r"masters? student|phd",
    ),
    # Nutrition, supplements and medical advice.
    rule(
        2.5,
        r"supplements?|suplementos?|nahrungserganzung\w*|creatin\w*|whey|sarms|steroids?",
        r"peptides|protein ?(?:powder|pulver|en poudre|in polvere|em po)|proteinpulver",
        r"meal plan|diet plan|macros|lactose|laktose\w*|intoleran\w*|gluten|allerg\w*",
        r"calorie (?:deficit|intake)|lose weight|weight loss|bulking|cutting phase",
    ),
    rule(
        2.5,
        r"doctor|physio\w*|physiotherap\w*|injur\w*|medical|diagnos\w*|prescription",
        r"medication|pregnan\w*|blood pressure|stretch(?:es|ing)? (?:would|should|for|do)",
        r"(?:knee|back|shoulder|hip|wrist|ankle|neck|elbow) (?:pain|hurts|injury)",
        r"(?:my|the) \w+ hurts|pain (?:in|when|on)",
    ),
    # Another company's subscription: KRUXT can neither cancel nor refund it.
    rule(
        4.0,
        rf"(?:{_OTHER_APPS}) (?:\w+ ){{0,2}}(?:premium|subscription|membership|plus|renew\w*"
        r"|refund\w*|charg\w*|bill\w*)",
        rf"(?:premium|subscription|membership) (?:\w+ ){{0,2}}(?:for|to|with|on|at|from)"
        rf" (?:{_OTHER_APPS})",
    ),
    # Legal, tax, landlord and shopping questions; gym opening hours.
    rule(
        2.5,
        r"landlord|rent (?:increase|is)|raise the rent|lease|lawyer|legal advice",
        r"is (?:that|it|this) (?:even )?legal|my rights|taxes",
        r"where can i buy|do you sell|vendem|venden|verkaufen sie|vendez|vendete|shipping",
        r"entregam|deliver to",
        r"(?:what time|when) (?:does|do|is) the gym (?:open|close)|opening hours|gym hours",
    ),
)

# App areas no playbook covers: ``other`` with the usual severity, for a human to pick up.
NO_PLAYBOOK_RULES: tuple[Rule, ...] = (
    # Feature requests.
    rule(
        3.0,
        r"feature request|would you (?:consider|think about) adding|wish (?:list|there was)",
        r"(?:please|pls|could you|can you) add (?:a|an|more|some|support|the option|an option"
        r"|the ability|a way)",
        r"(?:any plans|do you plan|are you planning|will you ever) to (?:add|support|integrate)",
        r"(?:add|adding) (?:\w+ )?support for",
    ),
    # Politer or vaguer: a bug report may say "it would be great if you fixed it".
    rule(
        2.0,
        r"roadmap|suggestion|any plans to|(?:other|some) apps (?:have|do)|wish you had",
        r"it would be (?:great|nice|amazing|awesome|cool|helpful) (?:if|to)",
        r"would be (?:amazing|great|nice|awesome|cool)",
    ),
    rule(
        3.0,
        r"crash(?:es|ing)? (?:immediately |right away |straight away )?(?:on|at|after) (?:launch"
        r"|start\w*|open\w*)|wont (?:open|launch|start up)|(?:doesnt|does not) (?:open|launch)",
    ),
    rule(
        2.5,
        r"exercise library|demo videos?|how-?to videos?|exercise (?:videos?|demos?)",
        r"profile (?:picture|photo|pic)|avatar|leaderboard|age group|badges?|achievements?",
        r"app icon|widget|dark mode|light mode",
    ),
    rule(
        2.0,
        r"notifications?|push (?:notifications?|alerts?)|reminders?",
        r"(?:switch|change|set) (?:\w+ )?(?:from )?(?:kg|lbs|kilos|pounds|units?|metric|imperial)",
        r"translation|traduc\w*|ubersetz\w*|traduz\w*|typo|spelling|misspel\w*",
        r"theme|font|contrast|unreadable|charts?|graphs?",
    ),
    rule(
        1.5,
        r"thanks? (?:a lot|so much|team|guys)|just wanted to say|love the app|keep it up",
        r"great job|well done",
    ),
)

TEXT = CategoryText(
    "Uncategorized request",
    "No known playbook matches; the ticket may be out of scope or need more detail",
    "Route to a human for manual triage and acknowledge the customer",
)
