-- Incidents: P1/P2 tickets grouped by probable root cause, their escalation and timeline.
--
-- Opening and joining happen under a transaction-scoped advisory lock on the key, so two
-- tickets of one outage arriving at once find the same incident instead of opening two.

CREATE TABLE support_incidents (
    id                uuid PRIMARY KEY,
    key               text NOT NULL,
    status            text NOT NULL DEFAULT 'open'
                      CHECK (status IN ('open', 'acknowledged', 'resolved')),
    priority          text NOT NULL CHECK (priority IN ('P1', 'P2', 'P3', 'P4')),
    category          text NOT NULL,
    title             text NOT NULL,
    first_ticket_id   uuid NOT NULL REFERENCES support_tickets (id),
    workflow_id       text NOT NULL UNIQUE,
    opened_at         timestamptz NOT NULL DEFAULT now(),
    acknowledged_at   timestamptz,
    acknowledged_by   text,
    resolved_at       timestamptz,
    resolved_by       text,
    resolution_note   text NOT NULL DEFAULT '',
    escalation_level  integer NOT NULL DEFAULT 0,
    escalation_loop   integer NOT NULL DEFAULT 0,
    -- The incident channel's message, once posted: pages thread under it, a retry never
    -- posts it twice.
    slack_channel     text,
    slack_ts          text
);

CREATE INDEX support_incidents_key_status_idx ON support_incidents (key, status, opened_at DESC);
CREATE INDEX support_incidents_status_idx ON support_incidents (status, opened_at DESC);

CREATE TABLE support_incident_tickets (
    incident_id      uuid NOT NULL REFERENCES support_incidents (id),
    ticket_id        uuid NOT NULL REFERENCES support_tickets (id),
    attached_at      timestamptz NOT NULL DEFAULT now(),
    -- The activity that attached it: a retried open-or-join finds its own answer.
    idempotency_key  text UNIQUE,
    PRIMARY KEY (incident_id, ticket_id)
);

CREATE INDEX support_incident_tickets_ticket_idx ON support_incident_tickets (ticket_id);

CREATE TABLE support_incident_timeline (
    id               bigserial PRIMARY KEY,
    incident_id      uuid NOT NULL REFERENCES support_incidents (id),
    at               timestamptz NOT NULL DEFAULT now(),
    entry            text NOT NULL,
    actor            text NOT NULL,
    idempotency_key  text UNIQUE
);

CREATE INDEX support_incident_timeline_incident_idx ON support_incident_timeline (incident_id, at, id);
