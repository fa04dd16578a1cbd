"""The reply guard: what every automatic reply must pass before a customer sees it.

Pure, and shared: the worker builds it from ``KRUXT_HELP_DOMAINS`` (validated by the settings,
an adapter), the LLM reply writer (an adapter) and the Knowledge agent's activity apply it.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_HELP_DOMAINS",
    "HELP_DOMAINS_SETTING",
    "PROMISE_REFUSAL",
    "ReplyGuard",
    "outside_links",
    "parse_help_domains",
    "promises_unapproved_action",
]

_SPACES = re.compile(r"\s+")

# --- the reply guard -----------------------------------------------------------------------
# Every pattern below reads text after _guard_text: every run of whitespace is one space, so
# each alternative matches a bounded number of characters from where it starts, and a search
# is linear in the text's length.

# Where a reply may send a customer when KRUXT_HELP_DOMAINS is not set: the domain the
# articles of knowledge/ already name (privacy@kruxt.app, billing@kruxt.app).
DEFAULT_HELP_DOMAINS = ("kruxt.app",)
HELP_DOMAINS_SETTING = "KRUXT_HELP_DOMAINS"
PROMISE_REFUSAL = "promises an action that was not approved"

# Rendered as nothing (or as a blank) but not of category Cf, so dropped by name: the
# combining grapheme joiner, Hangul and Khmer fillers, the braille blank.
_INVISIBLE = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u2800\u3164\uffa0")
# Apostrophes and dots that look like the ASCII ones; IDNA treats these dots as dots.
_FOLD = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u02bc": "'",
        "\u2032": "'",
        "`": "'",
        "\u3002": ".",
        "\uff61": ".",
        "\u2024": ".",
    }
)
# Letters of other scripts that pass for Latin ones: "unlocked" with a Cyrillic o.
_HOMOGLYPHS = str.maketrans(
    "\u0430\u0435\u043e\u0440\u0441\u0443\u0445\u0456\u0458\u0455\u0501\u04bb\u04cf\u051b\u051d"
    "\u043a\u043c\u0442\u0432\u043d"  # Cyrillic
    "\u03b1\u03bf\u03b5\u03b9\u03ba\u03bd\u03c1\u03c4\u03c5\u03c7"  # Greek
    "\u0131\u0251\u0261",  # Latin dotless i, alpha, script g
    "aeopcyxijsdhlqwkmtbhaoeikvptuxiag",
)
# Defanged addresses ("evil[.]com", "hxxps[:]//") are still addresses.
_DEFANGED = (("[.]", "."), ("(.)", "."), ("{.}", "."), ("[dot]", "."), ("(dot)", "."), ("[:]", ":"))

_ADV = r"(?:(?:already|now|just|also|successfully|finally|gone ahead and|went ahead and) ){0,2}"
_DONE = (
    r"(?:unlocked|unblocked|unbanned|unsuspended|restored|refunded|reimbursed|reset|fixed|"
    r"deleted|removed|erased|re-?enabled|re-?activated|re-?sent|reinstated|replayed|promoted|"
    r"credited|cancell?ed|repaired|revoked|reconnected|resolved|processed|issued|approved|"
    r"waived|upgraded|sorted out)"
)
_DO = (
    r"(?:unlock|unblock|unban|restore|refund|reimburse|reset|fix|delete|remove|erase|"
    r"re-?enable|re-?activate|re-?send|reinstate|replay|promote|credit|cancel|repair|revoke|"
    r"reconnect|process|issue|approve|waive|upgrade)"
)
_WE = r"(?:we|i|our team|the team|support)"
# What a reply could say was changed: "your account", "the duplicate workout", "it". Not "you"
# ("so you hear when you are promoted") or a bare plural ("issues are fixed in updates").
_THING = r"(?:it|this|that|everything|(?:your|the) [a-z-]+(?: [a-z-]+)?)"
# Spanish, Portuguese, French, Italian and German: the languages customers mix in. Accents are
# stripped before matching.
_ES_PT = (
    r"(?:desbloquead|restablecid|restaurad|reembolsad|eliminad|borrad|cancelad|reactivad|"
    r"procesad|devuelt|excluid|apagad|reativad|processad|redefinid)[oa]s?"
)
_FR = r"(?:debloque|retabli|restaure|rembourse|supprime|annule|reactive|traite|reinitialise)e?s?"
_IT = r"(?:sbloccat|ripristinat|rimborsat|eliminat|cancellat|annullat|riattivat|elaborat)"
_DE = (
    r"(?:entsperrt|wiederhergestellt|erstattet|zuruckerstattet|zuruckgesetzt|geloscht|"
    r"storniert|reaktiviert|bearbeitet|freigeschaltet)"
)
_PROMISES = re.compile(
    rf"\b{_WE}(?:'ve| have| has|'d| had)? {_ADV}{_DONE}\b"
    rf"|\b(?:has|have|had) {_ADV}been {_ADV}{_DONE}\b"
    rf"|\b{_THING}(?:'s| is| are| was| were) {_ADV}(?:being )?{_DONE}\b"
    rf"|\b{_WE}(?:'ll| will|'re going to| are going to| am going to|'m going to| shall) "
    rf"{_ADV}{_DO}\b"
    r"|\byou(?:'ll| will) (?:get|receive|see) (?:a |your )?(?:full )?"
    r"(?:refund|money back|credit|reimbursement)\b"
    r"|\b(?:refund|money|credit|reimbursement|fix|replacement)s? (?:is|are|'s) "
    r"(?:already |now )?(?:on (?:its|it's|the|their) way|underway|under way|in progress)\b"
    r"|\byou(?:'re| are) all set\b"
    r"|\bwe guarantee\b"
    # es/pt: "hemos desbloqueado", "ha sido reembolsado", "foi restaurada", "ya está resuelto".
    rf"|\b(?:ha|han|fue|fueron|foi|foram|esta|estan|esta ya|ja esta) (?:sido )?{_ES_PT}\b"
    r"|\b(?:hemos|he|ya|nos|ja) (?:ya )?(?:desbloqueado|restablecido|restaurado|reembolsado|"
    r"eliminado|cancelado|reactivado|procesado|desbloqueamos|restauramos|reembolsamos|"
    r"excluimos|cancelamos|reativamos|processamos|redefinimos)\b"
    r"|\breembolso (?:esta|va|ja esta) (?:en camino|a caminho|processado)\b"
    # fr: "nous avons débloqué", "a été remboursé", "j'ai réinitialisé".
    rf"|\b(?:nous avons|j'ai|on a) (?:deja )?{_FR}\b|\b(?:a|ont) ete {_FR}\b"
    r"|\bremboursement (?:est|a ete) (?:en cours|effectue|envoye)\b"
    # it: "abbiamo sbloccato", "è stato rimborsato".
    rf"|\b(?:abbiamo|ho) (?:gia )?{_IT}o\b|\b(?:e|sono) stat[oaie] {_IT}[oaie]\b"
    # de: "wir haben Ihr Konto entsperrt", "wurde erstattet", "ist jetzt entsperrt".
    rf"|\bwir haben (?:[a-z]+ ){{0,4}}{_DE}\b"
    rf"|\b(?:wurde|wurden|ist|sind) (?:jetzt |nun |bereits )?{_DE}\b",
    re.IGNORECASE,
)
# A token: a run of characters an address can be made of. Everything else ends an address.
_LINK_TOKEN = re.compile(r"[^\s<>\"'()\[\]{}|\\^*,;!=&]+")
_AUTHORITY_END = re.compile(r"[/?#]")
_PIECE_SPLIT = re.compile(r"[/?#:@%]")
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789+.-")
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")
_LABEL_EXTRA = frozenset("-_")
_WEB_SCHEMES = frozenset({"http", "https", ""})
_DOMAIN_SETTING = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)+")


def _guard_text(text: str) -> str:
    """The text as a reader sees it: format characters (zero-width spaces and joiners, bidi
    controls, soft hyphens) and invisible fillers dropped, NFKC (fullwidth letters become
    ASCII), look-alike apostrophes and dots folded, every run of whitespace one space."""
    visible = "".join(
        ch for ch in text if ch not in _INVISIBLE and unicodedata.category(ch) != "Cf"
    )
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", visible).translate(_FOLD))


def _promise_text(text: str) -> str:
    """The guard's text lower-cased, without accents and with look-alike letters as Latin."""
    decomposed = unicodedata.normalize("NFKD", _guard_text(text))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return bare.translate(_HOMOGLYPHS).lower()


def promises_unapproved_action(text: str) -> bool:
    """True when the text says an action was taken or will be taken ("we've unlocked ...").

    The check for replies drafted before anyone approved anything: by the template or the LLM.
    It reads the text as a customer would (see :func:`_guard_text`, plus accents and
    look-alike letters of other scripts folded) and errs on the side of caution: a reply it
    flags goes to a person, never to the customer.
    """
    return _PROMISES.search(_promise_text(text)) is not None


def parse_help_domains(value: str) -> tuple[str, ...]:
    """The domains of a ``KRUXT_HELP_DOMAINS`` setting: comma-separated, subdomains included.

    Raises:
        ValueError: an entry is not a plain domain name (no scheme, path or wildcard).
    """
    domains: list[str] = []
    for entry in value.split(","):
        domain = entry.strip().lower().rstrip(".")
        if not domain:
            continue
        labels = domain.split(".")
        if not _DOMAIN_SETTING.fullmatch(domain) or any(
            label.startswith("-") or label.endswith("-") for label in labels
        ):
            raise ValueError(
                f"{HELP_DOMAINS_SETTING}: {entry.strip()!r} is not a domain name such as "
                f"{DEFAULT_HELP_DOMAINS[0]}"
            )
        domains.append(domain)
    return tuple(dict.fromkeys(domains))


def _on_help_domain(host: str, domains: Sequence[str]) -> bool:
    host = host.rstrip(".")
    if not host or "xn--" in host or not all(ch in _HOST_CHARS for ch in host):
        return False  # punycode, other scripts, IP literals with odd characters: never ours
    return any(host == d or host.endswith("." + d) for d in domains)


def _looks_like_host(piece: str) -> bool:
    """A domain name (its last label letters only, two or more) or an IPv4 address."""
    labels = piece.split(".")
    if len(labels) < 2 or not all(
        label and all(ch.isalnum() or ch in _LABEL_EXTRA for ch in label) for label in labels
    ):
        return False
    tld = labels[-1]
    if len(labels) == 4 and all(label.isascii() and label.isdigit() for label in labels):
        return True
    return (tld.isalpha() and len(tld) >= 2) or tld.startswith("xn--")


def _scheme_before(text: str) -> str:
    """The URL scheme that ends ``text`` ("https" of "see:https"); scanned from the end."""
    start = len(text)
    while start > 0 and text[start - 1] in _SCHEME_CHARS:
        start -= 1
    return text[start:]


def outside_links(text: str, help_domains: Sequence[str]) -> list[str]:
    """Every link, bare domain, e-mail domain or IP address in the text that is not on the
    help domains (or their subdomains), as the guard read it.

    A link with a scheme other than http(s) ("hxxp", "javascript") or with a user part
    ("https://kruxt.app@evil.example") is outside whatever its host. Linear: one pass to cut
    tokens, then constant work per character of each token.
    """
    readable = _guard_text(html.unescape(text)).lower()
    for defanged, plain in _DEFANGED:
        readable = readable.replace(defanged, plain)
    outside: list[str] = []
    for token in _LINK_TOKEN.findall(readable):
        slashes = token.find("//")
        if slashes != -1 and (slashes == 0 or token[slashes - 1] == ":"):
            scheme = _scheme_before(token[: max(slashes - 1, 0)])
            rest = token[slashes + 2 :]
            end = _AUTHORITY_END.search(rest)
            authority = rest[: end.start()] if end else rest
            host = authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority
            if scheme not in _WEB_SCHEMES or "@" in authority:
                outside.append(token)
            elif not _on_help_domain(host, help_domains):
                outside.append(host or token)
            continue
        for piece in _PIECE_SPLIT.split(token):
            host = piece.strip(".-_~+$")
            if _looks_like_host(host) and not _on_help_domain(host, help_domains):
                outside.append(host)
    return outside


@dataclass(frozen=True)
class ReplyGuard:
    """What every automatic reply must pass before a customer sees it.

    It refuses a reply that says an action was taken or will be taken (unless a person
    approved actions for the ticket) and one that links anywhere but the help domains. A
    refused reply is never sent: the ticket goes to a person with the draft as a note.
    """

    help_domains: tuple[str, ...] = DEFAULT_HELP_DOMAINS

    @classmethod
    def from_setting(cls, value: str) -> ReplyGuard:
        """The guard for a ``KRUXT_HELP_DOMAINS`` value (see :func:`parse_help_domains`)."""
        return cls(help_domains=parse_help_domains(value))

    def refusal(self, text: str, *, approved_actions: Sequence[str] = ()) -> str | None:
        """Why the reply may not be sent, or None when it may."""
        reasons: list[str] = []
        if not approved_actions and promises_unapproved_action(text):
            reasons.append(PROMISE_REFUSAL)
        links = outside_links(text, self.help_domains)
        if links:
            reasons.append(f"links to {len(links)} address(es) outside {HELP_DOMAINS_SETTING}")
        return "; ".join(reasons) or None
