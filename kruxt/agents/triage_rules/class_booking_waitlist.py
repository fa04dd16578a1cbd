"""The ``class_booking_waitlist`` category: its weighted patterns and the texts it writes."""

from __future__ import annotations

from kruxt.agents.patterns import Guard
from kruxt.agents.triage_rules.fragments import BOOK, GONE
from kruxt.agents.triage_rules.rules import CategoryText, Rule, any_of, raw_rule, rule

__all__ = ["RULES", "TEXT"]

_WAITLIST = any_of(
    r"wait[\s-]?list\w*|waitlsit|waitlits|wiatlist|watilist|waitinglist|waiting list",
    r"lista de espera|fila de espera|warteliste|liste d ?attente|lista d ?attesa",
)
_CLASS = any_of(
    r"class(?:es)?|clases?|aulas?|kurs(?:e|en|es)?|cours|corsi|corso|lezion[ei]",
    r"spin(?:ning)?|yoga|hiit|bootcamp|pilates|barre|zumba|boxing|kickboxing|body ?pump",
)

RULES: tuple[Rule, ...] = (
    # Dutch/Polish waitlist and class words.
    rule(2.5, r"wachtlijst|lista (?:oczekujacych|rezerwowa)|van de wachtlijst"),
    rule(3.0, _WAITLIST),
    rule(
        3.0,
        rf"(?:{BOOK}) (?:(?:a|the|my|this|that|into|in|for|o|la|el|um|uma|une|un|einen|eine"
        rf"|den|die|une|il|lo) )?(?:\w+ ){{0,2}}?(?:{_CLASS}|spots?|sessions?|slots?|places?"
        r"|lugar|vaga|platz|bikes?|mats?|bicis?|bicicletas?|velo)",
        rf"(?:{_CLASS}|sessions?) (?:booking|reservation|is full|was full|shows full|full"
        r"|roster|capacity|cancell?ed)",
    ),
    rule(
        2.5,
        r"cancel(?:led|ed|ing|lation)? (?:my |a |the |of )?(?:\w+ )?"
        r"(?:class|booking|reservation|spot|reserva|buchung|session)",
        r"double[\s-]?booked|overbooked|not booked|unbooked|extra booking",
        r"(?:add|put|get|sign) me (?:in|into|on|onto|to) (?:the |a |my |this |that )?"
        r"(?:\w+ ){0,2}(?:class|session|waitlist|list)",
        r"spot (?:was |got )?(?:taken|given|went)|(?:took|gave|given) (?:away )?(?:my|the) "
        r"spot|(?:two|2) classes at (?:once|the same time)",
    ),
    rule(
        2.0,
        r"(?:got |was |been )?promoted|position (?:in|on) (?:the )?(?:list|queue)",
        r"first in line|in line for|jump(?:ed)? (?:ahead|the queue|over)",
        r"(?:class|session) (?:times?|schedule|timetable|hours|list|calendar)",
        r"(?:next|this|following) (?:weeks? |months? )?(?:classes|sessions|schedule)",
        r"upcoming (?:classes|sessions)",
        r"moved (?:me )?(?:up|in|down)|(?:joined|on|off) (?:the |her |his |their )?list",
    ),
    raw_rule(
        2.0,
        Guard(r"(?:#|\bno\.?\s?|\bnumber\s)\d{1,3}\b", not_after=r"\s?(?:kg|lbs|%)"),
    ),
    rule(
        2.5,
        r"late[\s-]?cancel\w*|late[\s-]?fee|no[\s-]?show|cancellation (?:fee|window|policy)",
        r"cut-?off",
        r"(?:cancel\w*|drop out) (?:\w+ ){0,2}(?:without|before) (?:a |the |any |my |getting )?"
        r"(?:fee|penalty|charge|class|session)",
    ),
    rule(
        2.0,
        rf"(?:{_CLASS}|bookings?|reservations?|reservas?|buchung) (?:\w+ ){{0,3}}?(?:{GONE})",
    ),
    rule(1.5, BOOK),
    rule(1.5, _CLASS, r"capacity|spots? (?:left|open|available)|full"),
    rule(
        1.5,
        r"(?:says|shows|showing|showed|is|was) (?:as )?full|fully booked|sold out|ausgebucht",
        r"llen[oa]|lotad[oa]|complet|pien[oa]",
    ),
    rule(
        1.0,
        r"roster|attendance|instructor|timetable|schedule|horarios?|stundenplan|planning",
        r"front desk|class pack|drop[\s-]?in|check[\s-]?in|agenda|guest pass",
        r"bring a (?:friend|guest)|(?:to|for|in|into) (?:a|the|my|this|that) (?:\w+ )?class",
    ),
)

TEXT = CategoryText(
    "Class booking or waitlist inconsistency",
    "Waitlist order or booking count out of step with class capacity after a cancellation",
    "Compare bookings and waitlist positions with capacity; propose a waitlist repair or "
    "promotion for approval",
)
