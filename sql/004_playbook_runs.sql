-- Playbook runs and their steps: what an approved plan changed in the app, and how it was undone.
--
-- One run per execution of an approved plan (its id is the run id the workflow made); one step
-- row per step that ran, with the app's before and after images and its compensation's fate.
-- Every write here comes with an entry in support_audit_log in the same transaction.

CREATE TABLE support_playbook_runs (
    id           uuid PRIMARY KEY,
    ticket_id    uuid NOT NULL REFERENCES support_tickets (id),
    plan_id      uuid NOT NULL,
    playbook     text NOT NULL,
    status       text NOT NULL
                 CHECK (status IN ('running', 'succeeded', 'failed', 'compensated', 'refused',
                                   'rolled_back')),
    plan         jsonb NOT NULL,
    approved_by  text,
    reason       text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX support_playbook_runs_ticket_idx ON support_playbook_runs (ticket_id, created_at);
CREATE INDEX support_playbook_runs_plan_idx ON support_playbook_runs (plan_id);

-- status: where the step is now (applied, failed, compensated, compensation_failed).
-- compensation_status: pending (can be undone, not undone), done, noop (nothing to undo),
-- failed, none (the step has no compensation; its rollback note says what a person does).
CREATE TABLE support_playbook_run_steps (
    run_id               uuid NOT NULL REFERENCES support_playbook_runs (id),
    step_id              text NOT NULL,
    action               text NOT NULL,
    target               jsonb NOT NULL DEFAULT '{}',
    status               text NOT NULL
                         CHECK (status IN ('applied', 'failed', 'compensated',
                                           'compensation_failed')),
    before               jsonb,
    after                jsonb,
    replayed             boolean NOT NULL DEFAULT false,
    compensation         text,
    compensation_status  text NOT NULL DEFAULT 'none'
                         CHECK (compensation_status IN ('pending', 'done', 'noop', 'failed',
                                                        'none')),
    compensation_result  jsonb,
    error                text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, step_id)
);
