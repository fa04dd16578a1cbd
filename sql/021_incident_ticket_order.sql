-- An incident's latest tickets (its record names them, newest first) and its tickets in the
-- order they joined (telling them on resolution, 200 at a time) without sorting thousands.
CREATE INDEX support_incident_tickets_order_idx
    ON support_incident_tickets (incident_id, attached_at, ticket_id);
