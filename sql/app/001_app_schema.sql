-- The reference KRUXT app schema: the parts of the fitness app that support playbooks act on.
--
-- In production the real app database already has its own tables; this schema is the
-- reference the embedded stack and the tests run against. The support worker never touches
-- these tables directly: it calls the SECURITY DEFINER functions of kruxt_admin
-- (002_kruxt_admin.sql) and has no privilege at all on kruxt_app (003_support_role.sql).

CREATE SCHEMA kruxt_app;

CREATE TABLE kruxt_app.users (
    id             text PRIMARY KEY,
    email          text NOT NULL UNIQUE,
    name           text NOT NULL DEFAULT '',
    plan           text NOT NULL DEFAULT 'free' CHECK (plan IN ('free', 'pro', 'gym')),
    platform       text NOT NULL CHECK (platform IN ('ios', 'android', 'web')),
    email_verified boolean NOT NULL DEFAULT false,
    locked_until   timestamptz,
    failed_logins  integer NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE kruxt_app.sessions (
    id         text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    user_id    text NOT NULL REFERENCES kruxt_app.users (id),
    device     text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE INDEX sessions_active_idx ON kruxt_app.sessions (user_id) WHERE revoked_at IS NULL;

-- What the app's mailer sends (verification mails, ...); the mailer drains it.
CREATE TABLE kruxt_app.outbox_emails (
    id         text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    user_id    text NOT NULL REFERENCES kruxt_app.users (id),
    to_email   text NOT NULL,
    template   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE kruxt_app.workout_submissions (
    id           text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    user_id      text NOT NULL REFERENCES kruxt_app.users (id),
    payload      jsonb NOT NULL,
    status       text NOT NULL CHECK (status IN ('accepted', 'failed')),
    error        text,
    submitted_at timestamptz NOT NULL DEFAULT now(),
    workout_id   text
);

CREATE INDEX workout_submissions_user_idx
    ON kruxt_app.workout_submissions (user_id, submitted_at DESC);

CREATE TABLE kruxt_app.workouts (
    id            text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    user_id       text NOT NULL REFERENCES kruxt_app.users (id),
    submission_id text UNIQUE REFERENCES kruxt_app.workout_submissions (id),
    title         text NOT NULL,
    performed_at  timestamptz NOT NULL,
    data          jsonb NOT NULL DEFAULT '{}'
);

ALTER TABLE kruxt_app.workout_submissions
    ADD CONSTRAINT workout_submissions_workout_fk
    FOREIGN KEY (workout_id) REFERENCES kruxt_app.workouts (id);

CREATE TABLE kruxt_app.feed_posts (
    id            text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    user_id       text NOT NULL REFERENCES kruxt_app.users (id),
    body          text NOT NULL,
    visibility    text NOT NULL DEFAULT 'visible' CHECK (visibility IN ('visible', 'hidden')),
    hidden_reason text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE kruxt_app.post_reports (
    id          text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    post_id     text NOT NULL REFERENCES kruxt_app.feed_posts (id),
    reporter_id text NOT NULL REFERENCES kruxt_app.users (id),
    reason      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'upheld', 'dismissed'))
);

CREATE INDEX post_reports_post_idx ON kruxt_app.post_reports (post_id);

CREATE TABLE kruxt_app.moderation_actions (
    id         text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    post_id    text NOT NULL REFERENCES kruxt_app.feed_posts (id),
    action     text NOT NULL CHECK (action <> ''),
    actor      text NOT NULL,
    reason     text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX moderation_actions_post_idx ON kruxt_app.moderation_actions (post_id, created_at);

-- The users' own blocks: no support function ever changes them.
CREATE TABLE kruxt_app.user_blocks (
    blocker_id text NOT NULL REFERENCES kruxt_app.users (id),
    blocked_id text NOT NULL REFERENCES kruxt_app.users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (blocker_id, blocked_id),
    CHECK (blocker_id <> blocked_id)
);

CREATE TABLE kruxt_app.classes (
    id        text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    gym_id    text NOT NULL,
    title     text NOT NULL,
    starts_at timestamptz NOT NULL,
    capacity  integer NOT NULL CHECK (capacity >= 0)
);

-- No uniqueness on (class_id, waitlist_position): the app's bug this playbook repairs is
-- exactly duplicate and missing positions.
CREATE TABLE kruxt_app.class_bookings (
    id                text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    class_id          text NOT NULL REFERENCES kruxt_app.classes (id),
    user_id           text NOT NULL REFERENCES kruxt_app.users (id),
    status            text NOT NULL CHECK (status IN ('booked', 'waitlisted', 'cancelled')),
    waitlist_position integer CHECK (waitlist_position > 0),
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX class_bookings_class_idx ON kruxt_app.class_bookings (class_id, created_at);

CREATE TABLE kruxt_app.integration_connections (
    id               text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    user_id          text NOT NULL REFERENCES kruxt_app.users (id),
    provider         text NOT NULL CHECK (provider IN ('apple_health', 'garmin')),
    status           text NOT NULL DEFAULT 'connected'
                     CHECK (status IN ('connected', 'reauth_required', 'disconnected')),
    token_expires_at timestamptz,
    last_sync_at     timestamptz,
    last_error       text,
    sync_cursor      text,
    reauth_required  boolean NOT NULL DEFAULT false,
    UNIQUE (user_id, provider)
);

CREATE TABLE kruxt_app.sync_jobs (
    id            text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    connection_id text NOT NULL REFERENCES kruxt_app.integration_connections (id),
    requested_at  timestamptz NOT NULL DEFAULT now(),
    status        text NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'running', 'succeeded', 'failed'))
);

CREATE INDEX sync_jobs_connection_idx ON kruxt_app.sync_jobs (connection_id, requested_at);

CREATE TABLE kruxt_app.privacy_requests (
    id           text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    user_id      text NOT NULL REFERENCES kruxt_app.users (id),
    kind         text NOT NULL CHECK (kind IN ('export', 'deletion')),
    status       text NOT NULL DEFAULT 'received'
                 CHECK (status IN ('received', 'in_progress', 'completed')),
    requested_at timestamptz NOT NULL DEFAULT now(),
    due_at       timestamptz NOT NULL
);

CREATE TABLE kruxt_app.invoices (
    id              text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    user_id         text NOT NULL REFERENCES kruxt_app.users (id),
    number          text NOT NULL UNIQUE,
    amount_cents    integer NOT NULL CHECK (amount_cents >= 0),
    currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status          text NOT NULL CHECK (status IN ('draft', 'open', 'paid', 'void')),
    issued_at       timestamptz,
    delivery_status text NOT NULL DEFAULT 'pending'
                    CHECK (delivery_status IN ('delivered', 'bounced', 'pending')),
    delivered_at    timestamptz
);

CREATE INDEX invoices_user_idx ON kruxt_app.invoices (user_id, issued_at DESC);

CREATE TABLE kruxt_app.invoice_deliveries (
    id           text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    invoice_id   text NOT NULL REFERENCES kruxt_app.invoices (id),
    requested_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE kruxt_app.billing_access (
    user_id    text PRIMARY KEY REFERENCES kruxt_app.users (id),
    enabled    boolean NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE kruxt_app.feature_flags (
    name    text PRIMARY KEY,
    enabled boolean NOT NULL DEFAULT false
);

-- Billing is not live yet: restoring billing access is refused until this flag is turned on.
INSERT INTO kruxt_app.feature_flags (name, enabled) VALUES ('billing_live', false);
