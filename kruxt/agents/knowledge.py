"""The Knowledge agent's drafting: help articles from ``knowledge/`` and replies built from them.

An article is a markdown file with YAML front matter (``id``, ``title``, ``category``,
``keywords``) and exactly four sections, in this order: ``## Summary``, ``## What you can try``
(a numbered list), ``## What our team will do`` and ``## Reply`` (the customer-facing template;
``{name}`` is its only placeholder). A reply's last paragraph is its sign-off when it starts
with an em dash; the self-help steps go just before it.

Parsing and drafting are pure; only :func:`load_articles` reads files.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kruxt.models.enums import Category
from kruxt.models.records import DraftReply

__all__ = [
    "DEFAULT_HELP_DOMAINS",
    "PROMISE_REFUSAL",
    "SECTIONS",
    "Article",
    "ReplyGuard",
    "draft_reply",
    "load_articles",
    "outside_links",
    "parse_article",
    "parse_help_domains",
    "promises_unapproved_action",
    "sanitize_name",
]

SECTIONS = ("Summary", "What you can try", "What our team will do", "Reply")
NAME_PLACEHOLDER = "{name}"
NAME_FALLBACK = "there"
MAX_NAME_CHARS = 40
STEPS_INTRO = "In the meantime, here's what you can try:"
SIGN_OFF_MARK = "—"

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)(.*)\Z", re.DOTALL)
_ID = re.compile(r"^kb-[a-z0-9]+(?:-[a-z0-9]+)*$")
# The closing "#"s of a heading are cut in Python: a pattern for them would put ambiguous
# quantifiers side by side.
_HEADING = re.compile(r"^(#{1,6})[ \t]+(\S.*)$", re.MULTILINE)
_NUMBERED = re.compile(r"^\s*\d+[.)]\s+(.*)$")
_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(.*)$")
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
_NOT_NAME = re.compile(r"[^\w\s'\-]|[\d_]")
_SPACES = re.compile(r"\s+")
_REQUIRED_KEYS = frozenset({"id", "title", "category", "keywords"})

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


@dataclass(frozen=True)
class Article:
    """A help article of ``knowledge/``: what the Knowledge agent answers from."""

    id: str
    title: str
    category: Category
    keywords: tuple[str, ...]
    summary: str
    try_steps: tuple[str, ...]
    team_steps: tuple[str, ...]
    reply_template: str
    path: str
    # The whole markdown file, as parsed: what the search index stores and re-parses.
    source: str = field(default="", repr=False, compare=False)


def _front_matter(raw: str, path: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: front matter is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: front matter must be a mapping of keys to values")
    missing = _REQUIRED_KEYS - data.keys()
    if missing:
        raise ValueError(f"{path}: front matter is missing {', '.join(sorted(missing))}")
    unknown = data.keys() - _REQUIRED_KEYS
    if unknown:
        raise ValueError(f"{path}: front matter has unknown keys {', '.join(sorted(unknown))}")
    return data


def _text_value(data: dict[str, Any], key: str, path: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{path}: front matter {key!r} must be a non-empty string")
    return value.strip()


def _heading_title(match: re.Match[str]) -> str:
    """A heading's text without the optional closing sequence of "#"s."""
    text = match.group(2).rstrip(" \t")
    return text.rstrip("#").rstrip(" \t") or text[:1]


def _sections(body: str, path: str) -> dict[str, str]:
    """The body's ``##`` sections by title; exactly SECTIONS, in order."""
    headings = list(_HEADING.finditer(body))
    titles = [_heading_title(m) for m in headings]
    levels = {len(m.group(1)) for m in headings}
    if titles != list(SECTIONS) or levels != {2}:
        raise ValueError(
            f"{path}: the body must have exactly the sections "
            f"{', '.join('## ' + s for s in SECTIONS)} in that order; found "
            f"{', '.join(m.group(0).strip() for m in headings) or 'none'}"
        )
    if body[: headings[0].start()].strip():
        raise ValueError(f"{path}: text before '## {SECTIONS[0]}'")
    sections: dict[str, str] = {}
    for i, match in enumerate(headings):
        end = headings[i + 1].start() if i + 1 < len(headings) else len(body)
        content = body[match.end() : end].strip()
        if not content:
            raise ValueError(f"{path}: section '## {titles[i]}' is empty")
        sections[titles[i]] = content
    return sections


def _list_items(content: str, item: re.Pattern[str]) -> list[str] | None:
    """The items of a markdown list (continuation lines joined); None if it is not a list."""
    items: list[str] = []
    for line in content.splitlines():
        if not line.strip():
            continue
        match = item.match(line)
        if match:
            items.append(match.group(1).strip())
        elif items and line[:1].isspace():
            items[-1] = f"{items[-1]} {line.strip()}"
        else:
            return None
    return items


def parse_article(text: str, path: str) -> Article:
    """Parse one article.

    Args:
        text: the file's content.
        path: where it came from, for error messages and :attr:`Article.path`.

    Returns:
        The article.

    Raises:
        ValueError: the article is malformed; the message names the path and the problem.
    """
    match = _FRONT_MATTER.match(text.replace("\r\n", "\n"))
    if match is None:
        raise ValueError(f"{path}: no YAML front matter between '---' lines at the top")
    data = _front_matter(match.group(1), path)

    article_id = _text_value(data, "id", path)
    if not _ID.match(article_id):
        raise ValueError(f"{path}: id {article_id!r} must look like 'kb-some-topic'")
    try:
        category = Category(_text_value(data, "category", path))
    except ValueError:
        raise ValueError(
            f"{path}: category {data['category']!r} is not one of "
            f"{', '.join(c.value for c in Category)}"
        ) from None
    keywords = data["keywords"]
    if (
        not isinstance(keywords, list)
        or not keywords
        or not all(isinstance(k, str) and k.strip() for k in keywords)
    ):
        raise ValueError(f"{path}: keywords must be a non-empty list of strings")

    sections = _sections(match.group(2), path)
    try_steps = _list_items(sections["What you can try"], _NUMBERED)
    if not try_steps:
        raise ValueError(f"{path}: '## What you can try' must be a numbered list of steps")
    team_steps = _list_items(sections["What our team will do"], _BULLET)
    if team_steps is None:  # a paragraph is fine too: one step
        team_steps = [_SPACES.sub(" ", sections["What our team will do"])]
    reply = sections["Reply"]
    unknown = sorted(set(_PLACEHOLDER.findall(reply)) - {NAME_PLACEHOLDER})
    if unknown:
        raise ValueError(
            f"{path}: the reply may only use {NAME_PLACEHOLDER}; found {', '.join(unknown)}"
        )

    return Article(
        id=article_id,
        title=_text_value(data, "title", path),
        category=category,
        keywords=tuple(k.strip() for k in keywords),
        summary=_SPACES.sub(" ", sections["Summary"]),
        try_steps=tuple(try_steps),
        team_steps=tuple(team_steps),
        reply_template=reply,
        path=path,
        source=text,
    )


def load_articles(directory: Path) -> list[Article]:
    """Every article (``*.md``) of a directory, sorted by id.

    Raises:
        ValueError: an article is malformed, or two articles share an id.
    """
    articles: dict[str, Article] = {}
    for file in sorted(directory.glob("*.md")):
        article = parse_article(file.read_text(encoding="utf-8"), str(file))
        if article.id in articles:
            raise ValueError(
                f"{file}: duplicate article id {article.id!r} (also in {articles[article.id].path})"
            )
        articles[article.id] = article
    return [articles[key] for key in sorted(articles)]


def sanitize_name(name: str) -> str:
    """The requester's first name, safe to put in a reply; NAME_FALLBACK when there is none.

    The name is untrusted: only letters, spaces, hyphens and apostrophes survive, at most
    MAX_NAME_CHARS of them, and only the first word is used.
    """
    name = unicodedata.normalize("NFC", name).replace("\u2019", "'")
    kept = _SPACES.sub(" ", _NOT_NAME.sub("", name)).strip()
    first = kept[:MAX_NAME_CHARS].split(" ", 1)[0].strip("'-")
    return first or NAME_FALLBACK


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


def _normalized(text: str) -> str:
    return _SPACES.sub(" ", text).strip().lower()


def _with_steps(reply: str, steps: Sequence[str]) -> str:
    """The reply with the numbered steps before its sign-off (or at the end without one)."""
    block = "\n".join([STEPS_INTRO, "", *(f"{i}. {step}" for i, step in enumerate(steps, 1))])
    paragraphs = reply.split("\n\n")
    if len(paragraphs) > 1 and paragraphs[-1].lstrip().startswith(SIGN_OFF_MARK):
        return "\n\n".join([*paragraphs[:-1], block, paragraphs[-1]])
    return f"{reply}\n\n{block}"


def draft_reply(articles: Sequence[Article], *, requester_name: str) -> DraftReply:
    """Draft a customer reply from the best-matching article (the first one).

    The article's reply template gets the requester's sanitized first name; its self-help
    steps are added unless the template already contains all of them. Only ``{name}`` is
    substituted, by plain replacement: neither the template nor the name is ever formatted.

    Args:
        articles: the articles that fit the ticket, best first.
        requester_name: the requester's name as given (untrusted).

    Returns:
        The reply, citing the id of the article it was drafted from.

    Raises:
        ValueError: no article was given.
    """
    if not articles:
        raise ValueError("draft_reply needs at least one article")
    article = articles[0]
    body = article.reply_template.replace(NAME_PLACEHOLDER, sanitize_name(requester_name))
    template = _normalized(article.reply_template)
    if not all(_normalized(step) in template for step in article.try_steps):
        body = _with_steps(body, article.try_steps)
    return DraftReply(body=body, article_ids=[article.id])
