"""Reading the help articles of ``knowledge/`` from disk (their format: models/articles.py)."""

from __future__ import annotations

from pathlib import Path

from kruxt.models.articles import Article, parse_article

__all__ = ["load_articles"]


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
