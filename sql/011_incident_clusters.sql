-- Incidents are for incidents: one user's P2 opens none; it records its cause here, and when
-- KRUXT_INCIDENT_CLUSTER's count of P2 tickets share a cause within its window, they open one
-- incident together (each row then names it).
--
-- Written under the same advisory lock on the key as support_incidents, so two tickets of one
-- cluster arriving at once count each other once.

CREATE TABLE support_incident_candidates (
    key              text NOT NULL,
    ticket_id        uuid NOT NULL REFERENCES support_tickets (id),
    priority         text NOT NULL CHECK (priority IN ('P1', 'P2', 'P3', 'P4')),
    title            text NOT NULL,
    at               timestamptz NOT NULL,
    -- Set when the cluster this ticket belongs to opened an incident (or it joined one).
    incident_id      uuid REFERENCES support_incidents (id),
    -- The activity that recorded it: a retried open-or-join finds its own answer.
    idempotency_key  text UNIQUE,
    PRIMARY KEY (key, ticket_id)
);

CREATE INDEX support_incident_candidates_waiting_idx
    ON support_incident_candidates (key, at) WHERE incident_id IS NULL;

-- An incident that escalates (a P1 joining a P2 cluster) is posted anew in the incident
-- channel; the activity that posted the current message, so a retry does not post it twice.
ALTER TABLE support_incidents ADD COLUMN slack_posted_by text;
