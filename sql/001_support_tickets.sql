-- Tickets, their messages, triage runs and KPI events: the support schema's core.

CREATE TABLE support_tickets (
    id                uuid PRIMARY KEY,
    channel           text NOT NULL,
    external_id       text NOT NULL,
    workflow_id       text NOT NULL,
    requester_id      text NOT NULL,
    requester_email   text NOT NULL,
    requester_name    text NOT NULL DEFAULT '',
    account_id        text,
    subject           text NOT NULL,
    status            text NOT NULL DEFAULT 'new'
                      CHECK (status IN ('new', 'triaged', 'awaiting_human', 'awaiting_approval',
                                        'awaiting_customer', 'in_progress', 'resolved')),
    priority          text CHECK (priority IN ('P1', 'P2', 'P3', 'P4')),
    category          text,
    playbook          text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    first_response_at timestamptz,
    resolved_at       timestamptz,
    resolved_by       text,
    UNIQUE (channel, external_id)
);

CREATE INDEX support_tickets_status_idx ON support_tickets (status, created_at DESC);
CREATE INDEX support_tickets_created_idx ON support_tickets (created_at DESC);
CREATE INDEX support_tickets_category_idx ON support_tickets (category, created_at DESC);

CREATE TABLE support_ticket_messages (
    id          uuid PRIMARY KEY,
    ticket_id   uuid NOT NULL REFERENCES support_tickets (id),
    direction   text NOT NULL CHECK (direction IN ('inbound', 'outbound', 'internal')),
    kind        text NOT NULL,
    author      text NOT NULL,
    body        text NOT NULL,
    article_ids text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX support_ticket_messages_ticket_idx ON support_ticket_messages (ticket_id, created_at);

-- One row per agent run (triage, knowledge, ops ...). idempotency_key makes a retried
-- activity record its run once.
CREATE TABLE support_automation_runs (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    ticket_id        uuid NOT NULL REFERENCES support_tickets (id),
    agent            text NOT NULL,
    model            text NOT NULL,
    prompt_version   text NOT NULL,
    input_digest     text NOT NULL,
    output           jsonb NOT NULL,
    confidence       double precision,
    tokens_in        integer NOT NULL DEFAULT 0,
    tokens_out       integer NOT NULL DEFAULT 0,
    latency_ms       integer NOT NULL DEFAULT 0,
    fallback_reason  text,
    idempotency_key  text NOT NULL UNIQUE,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX support_automation_runs_ticket_idx ON support_automation_runs (ticket_id, created_at);

CREATE TABLE support_kpi_events (
    id               bigserial PRIMARY KEY,
    ticket_id        uuid REFERENCES support_tickets (id),
    event            text NOT NULL,
    priority         text,
    category         text,
    value_seconds    double precision,
    details          jsonb NOT NULL DEFAULT '{}',
    idempotency_key  text NOT NULL UNIQUE,
    occurred_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX support_kpi_events_event_idx ON support_kpi_events (event, occurred_at);
