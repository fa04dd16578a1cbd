-- The weekly support review: one row per ISO week (the week is the idempotency key, so a
-- retried or re-fired schedule stores nothing twice), and the week's quality samples.
--
-- A sample is one automatic reply or one AI triage decision put in front of a reviewer. It
-- takes one grade, once: the UPDATE ... WHERE graded_at IS NULL is the single use of the
-- signed grade links (the links carry no state; the sample row does).

CREATE TABLE support_weekly_reviews (
    week          text PRIMARY KEY CHECK (week ~ '^[0-9]{4}-W[0-9]{2}$'),
    time_zone     text NOT NULL,
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz NOT NULL,
    report        jsonb NOT NULL,
    html          text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- Set once per channel when the review went out there; a retry sends nothing again.
    slack_sent_at timestamptz,
    email_sent_at timestamptz
);

CREATE TABLE support_review_samples (
    id           uuid PRIMARY KEY,
    week         text NOT NULL REFERENCES support_weekly_reviews (week),
    kind         text NOT NULL CHECK (kind IN ('auto_reply', 'triage')),
    -- The reply's message id, or the triage's KPI event id: what was sampled, once a week.
    source_id    text NOT NULL,
    ticket_id    uuid REFERENCES support_tickets (id),
    category     text,
    summary      text NOT NULL,
    article_ids  text[] NOT NULL DEFAULT '{}',
    grade        text CHECK (grade IN ('good', 'wrong_answer', 'not_automatic')),
    note         text NOT NULL DEFAULT '',
    graded_by    text,
    graded_at    timestamptz,
    UNIQUE (week, kind, source_id)
);

CREATE INDEX support_review_samples_graded_idx ON support_review_samples (graded_at);
