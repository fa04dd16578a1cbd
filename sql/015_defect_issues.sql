-- One GitHub issue per product defect. The fingerprint (a versioned normalization of
-- category, root cause and component) maps to the issue's number here: this table is the
-- source of truth, GitHub search never is (its index lags and it is rate-limited).
-- DefectIssueWorkflow (id derived from the fingerprint) is the only writer of the issue
-- columns, so creation is serialized; occurrences are written by every resolution.

CREATE TABLE support_defect_issues (
    fingerprint   text PRIMARY KEY,
    scheme        text NOT NULL,
    category      text NOT NULL,
    root_cause    text NOT NULL,
    component     text NOT NULL,
    severity      text NOT NULL CHECK (severity IN ('P1', 'P2', 'P3', 'P4')),
    issue_number  integer,
    issue_url     text,
    -- As GitHub last told us: open or closed; null before the issue exists.
    issue_state   text CHECK (issue_state IN ('open', 'closed')),
    first_seen    timestamptz NOT NULL,
    last_seen     timestamptz NOT NULL
);

-- Each resolved ticket or incident of a defect, once. posted_at: when the issue was told
-- of it (created with it, commented, reopened); null: still to tell.
CREATE TABLE support_defect_occurrences (
    fingerprint   text NOT NULL REFERENCES support_defect_issues (fingerprint),
    source        text NOT NULL CHECK (source IN ('ticket', 'incident')),
    source_id     uuid NOT NULL,
    summary       text NOT NULL,
    prevention    text NOT NULL DEFAULT '',
    prevention_draft text NOT NULL DEFAULT '',
    resolved_by   text NOT NULL,
    at            timestamptz NOT NULL,
    posted_at     timestamptz,
    PRIMARY KEY (fingerprint, source_id)
);

CREATE INDEX support_defect_occurrences_source ON support_defect_occurrences (source_id);
