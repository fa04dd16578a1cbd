-- The Knowledge agent's index: the articles of knowledge/ in PostgreSQL full-text search.
--
-- `kruxt migrate` and worker start-up sync the folder into this table (changed articles by
-- content_sha256); `body` is the whole markdown file, so an article can be re-read from here.

-- array_to_string is only STABLE in general (element types have output functions); for text[]
-- it is immutable, which a generated column requires.
CREATE FUNCTION support_knowledge_keywords_text(p_keywords text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_to_string(p_keywords, ' ')
$$;

CREATE TABLE support_knowledge_articles (
    id              text PRIMARY KEY,
    title           text NOT NULL,
    category        text NOT NULL,
    keywords        text[] NOT NULL DEFAULT '{}',
    summary         text NOT NULL,
    body            text NOT NULL,
    reply_template  text NOT NULL,
    path            text NOT NULL DEFAULT '',
    content_sha256  text NOT NULL,
    search          tsvector GENERATED ALWAYS AS (
                        setweight(to_tsvector('english', title), 'A')
                        || setweight(to_tsvector('english',
                                                 support_knowledge_keywords_text(keywords)), 'B')
                        || setweight(to_tsvector('english', summary), 'B')
                        || setweight(to_tsvector('english', body), 'C')
                    ) STORED,
    indexed_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX support_knowledge_articles_search_idx
    ON support_knowledge_articles USING gin (search);
CREATE INDEX support_knowledge_articles_category_idx ON support_knowledge_articles (category);
