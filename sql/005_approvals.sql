-- Approval requests and their decisions: who was asked to approve what, who decided, how.

CREATE TABLE support_approvals (
    id               uuid PRIMARY KEY,
    ticket_id        uuid NOT NULL REFERENCES support_tickets (id),
    kind             text NOT NULL CHECK (kind IN ('plan', 'rollback')),
    plan_id          uuid NOT NULL,
    run_id           uuid,
    playbook         text NOT NULL,
    required_role    text NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'approved', 'rejected', 'expired')),
    request          jsonb NOT NULL,
    requested_at     timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    decided_by       text,
    decided_at       timestamptz,
    channel          text,
    reason           text NOT NULL DEFAULT '',
    correction       jsonb,
    triage_accepted  boolean
);

CREATE INDEX support_approvals_pending_idx ON support_approvals (status, expires_at);
CREATE INDEX support_approvals_ticket_idx ON support_approvals (ticket_id);
