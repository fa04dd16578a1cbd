"""The knowledge index: the articles of ``knowledge/`` in PostgreSQL full-text search.

``sync`` mirrors a folder's articles into ``support_knowledge_articles`` (only what changed,
by the SHA-256 of the file); ``search`` ranks them against a ticket's text with
``ts_rank_cd``. The ticket text is untrusted: it reaches SQL only as a bound parameter, and
the query is built inside PostgreSQL from the lexemes ``to_tsvector`` extracts from it, each
quoted as one lexeme and OR-ed (``websearch_to_tsquery`` would AND every word, and a ticket
rarely uses all the words of an article), so no character of it is parsed as query syntax.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict

from kruxt.adapters.articles import load_articles
from kruxt.models.articles import Article, parse_article
from kruxt.models.enums import Category

__all__ = [
    "CATEGORY_BOOST",
    "CATEGORY_FLOOR",
    "ArticleHit",
    "IndexSync",
    "KnowledgeIndex",
    "index_knowledge",
]

# The triaged category's own article: its text rank is multiplied by CATEGORY_BOOST and raised
# by CATEGORY_FLOOR, so it wins unless another article matches the ticket far better, and it
# is found even when the ticket shares no word with it.
CATEGORY_BOOST = 3.0
CATEGORY_FLOOR = 0.2
# Only the start of a long ticket (a pasted log, say) is searched.
MAX_QUERY_CHARS = 4000

# ts_rank_cd normalization 1: divide by 1 + log(document length), so the longest article does
# not win on length alone. The query is every lexeme of the text, OR-ed. With a category, the
# articles of other categories must share at least MIN_SHARED_WORDS distinct words with the
# text (all of them if it has fewer): one common word ("request" in a feature request and in
# the privacy article's title) is a coincidence, not a match, and the category's own article
# is there anyway.
MIN_SHARED_WORDS = 2
_SEARCH = """
WITH q AS (
    -- Each lexeme quoted as tsquery input (backslashes escaped, quotes doubled), then cast:
    -- the cast keeps every lexeme exactly as to_tsvector made it.
    SELECT string_agg(
               '''' || replace(replace(lexeme, '\\', '\\\\'), '''', '''''') || '''', ' | '
           )::tsquery AS query,
           coalesce(array_agg(lexeme), '{}') AS lexemes
    FROM unnest(tsvector_to_array(to_tsvector('english', $1::text))) AS lexeme
),
ranked AS (
    SELECT a.id, a.title, a.category,
           coalesce(ts_rank_cd(a.search, q.query, 1), 0)::float8 AS text_rank
    FROM support_knowledge_articles a, q
    WHERE a.category = $2::text
       OR (q.query IS NOT NULL AND a.search @@ q.query
           AND ($2::text IS NULL
                OR cardinality(ARRAY(SELECT unnest(tsvector_to_array(a.search))
                                     INTERSECT SELECT unnest(q.lexemes)))
                   >= least($6::int, cardinality(q.lexemes))))
)
SELECT id, title, category, text_rank,
       CASE WHEN category = $2::text THEN text_rank * $4::float8 + $5::float8
            ELSE text_rank END AS rank
FROM ranked
ORDER BY rank DESC, id
LIMIT $3
"""


class IndexSync(BaseModel):
    """What a sync changed."""

    model_config = ConfigDict(frozen=True)

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        """True when the index differs from before the sync."""
        return bool(self.added or self.updated or self.removed)


class ArticleHit(BaseModel):
    """One search result, best first: ``rank`` orders them, ``text_rank`` is the text match."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    category: Category
    rank: float
    text_rank: float


def content_sha256(article: Article) -> str:
    """SHA-256 of the article's markdown: what decides whether the index row is stale."""
    return hashlib.sha256(article.source.encode("utf-8")).hexdigest()


class KnowledgeIndex:
    """Reads and writes of ``support_knowledge_articles``."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool

    async def sync(self, articles: Sequence[Article]) -> IndexSync:
        """Make the index hold exactly these articles; rewrite only those whose text changed.

        One transaction under an exclusive lock (reads go on), so two workers starting at
        once take turns and the second finds nothing to do.

        Raises:
            ValueError: two articles share an id, or an article has no markdown source.
        """
        wanted: dict[str, tuple[Article, str]] = {}
        for article in articles:
            if article.id in wanted:
                raise ValueError(f"duplicate article id {article.id!r}")
            if not article.source:
                raise ValueError(f"article {article.id!r} has no markdown source to index")
            wanted[article.id] = (article, content_sha256(article))

        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("LOCK TABLE support_knowledge_articles IN EXCLUSIVE MODE")
            rows = await conn.fetch("SELECT id, content_sha256 FROM support_knowledge_articles")
            indexed = {row["id"]: row["content_sha256"] for row in rows}

            added = updated = unchanged = 0
            for article_id, (article, sha) in wanted.items():
                if indexed.get(article_id) == sha:
                    unchanged += 1
                    continue
                await conn.execute(
                    """
                    INSERT INTO support_knowledge_articles (id, title, category, keywords,
                        summary, body, reply_template, path, content_sha256, indexed_at)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now())
                    ON CONFLICT (id) DO UPDATE SET
                        title = excluded.title, category = excluded.category,
                        keywords = excluded.keywords, summary = excluded.summary,
                        body = excluded.body, reply_template = excluded.reply_template,
                        path = excluded.path, content_sha256 = excluded.content_sha256,
                        indexed_at = excluded.indexed_at
                    """,
                    article.id,
                    article.title,
                    article.category.value,
                    list(article.keywords),
                    article.summary,
                    article.source,
                    article.reply_template,
                    article.path,
                    sha,
                )
                if article_id in indexed:
                    updated += 1
                else:
                    added += 1

            gone = sorted(indexed.keys() - wanted.keys())
            if gone:
                await conn.execute(
                    "DELETE FROM support_knowledge_articles WHERE id = ANY($1::text[])", gone
                )
        return IndexSync(added=added, updated=updated, removed=len(gone), unchanged=unchanged)

    async def search(
        self, text: str, *, category: str | None = None, limit: int = 3
    ) -> list[ArticleHit]:
        """The articles that best match a text, best first.

        Any word of the text may match (the query ORs them); title words weigh most, then
        keywords and summary, then the rest of the article. Articles of ``category`` are
        boosted (see CATEGORY_BOOST) and returned even without a matching word.
        """
        if limit <= 0:
            return []
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                _SEARCH,
                text[:MAX_QUERY_CHARS],
                category,
                limit,
                CATEGORY_BOOST,
                CATEGORY_FLOOR,
                MIN_SHARED_WORDS,
            )
        return [ArticleHit(**dict(row)) for row in rows]

    async def get(self, ids: Iterable[str]) -> list[Article]:
        """The indexed articles with these ids, in the order asked; unknown ids are skipped."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT id, body, path FROM support_knowledge_articles WHERE id = ANY($1::text[])",
                wanted,
            )
        by_id = {row["id"]: _parsed(row["body"], row["path"] or row["id"]) for row in rows}
        return [by_id[article_id] for article_id in wanted if article_id in by_id]

    async def ids(self) -> list[str]:
        """Every indexed article id, sorted."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch("SELECT id FROM support_knowledge_articles ORDER BY id")
        return [row["id"] for row in rows]


@functools.lru_cache(maxsize=512)
def _parsed(body: str, path: str) -> Article:
    """An indexed article, parsed once per text: every drafted reply reads its articles, and
    parsing the YAML front matter cost more than the query. Articles are frozen; a changed
    text is another key."""
    return parse_article(body, path)


async def index_knowledge(pool: asyncpg.Pool[Any], knowledge_dir: Path) -> IndexSync:
    """Load every article of a folder and sync the index with it (at migrate and start-up).

    Raises:
        ValueError: an article is malformed (the message names the file), or ids collide.
    """
    return await KnowledgeIndex(pool).sync(load_articles(knowledge_dir))
