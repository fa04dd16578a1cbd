-- The staff console's sign-in: e-mailed single-use links, sessions and personal API tokens.
--
-- No credential is stored: a link is kept by its random id (jti), a session cookie and a
-- personal token by the SHA-256 of their random value. Who a row belongs to is an e-mail of
-- the approvers directory; the directory, read at each request, decides whether that person
-- is still let in and with which roles (a row grants nothing by itself).

CREATE TABLE support_console_links (
    jti         text PRIMARY KEY,
    email       text NOT NULL,
    issued_at   timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    -- The single use: set once, by UPDATE ... WHERE used_at IS NULL.
    used_at     timestamptz,
    used_from   text
);

CREATE TABLE support_console_sessions (
    id           uuid PRIMARY KEY,
    token_hash   text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    email        text NOT NULL,
    -- How the person proved who they are: the e-mailed link, or OpenID Connect.
    via          text NOT NULL CHECK (via IN ('link', 'oidc')),
    -- The session's CSRF secret: every form and unsafe API call carries it back.
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    created_from text
);

CREATE INDEX support_console_sessions_email_idx ON support_console_sessions (email);

CREATE TABLE support_console_tokens (
    id           uuid PRIMARY KEY,
    token_hash   text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    email        text NOT NULL,
    name         text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
