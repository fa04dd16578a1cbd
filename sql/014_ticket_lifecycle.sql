-- The lifecycle after an answer (issue 14): a solved ticket reopens within its window
-- (status 'reopened'); a message after the window opens a new ticket linked to the old one.

ALTER TABLE support_tickets DROP CONSTRAINT support_tickets_status_check;
ALTER TABLE support_tickets ADD CONSTRAINT support_tickets_status_check
    CHECK (status IN ('new', 'triaged', 'awaiting_human', 'awaiting_approval',
                      'awaiting_customer', 'in_progress', 'resolved', 'reopened'));

ALTER TABLE support_tickets ADD COLUMN previous_ticket_id uuid REFERENCES support_tickets (id);

CREATE INDEX support_tickets_previous_idx ON support_tickets (previous_ticket_id)
    WHERE previous_ticket_id IS NOT NULL;
