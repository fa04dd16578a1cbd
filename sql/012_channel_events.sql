-- What each customer channel (Zendesk, Intercom) has already handled, by its own key: a
-- webhook event id, a comment the autopilot posted, a delivery made. A redelivered webhook
-- finds its key here and changes nothing; a comment the autopilot wrote is known as its own
-- when it comes back as an event (no reply loops). Refused (unsigned) requests never get here.

CREATE TABLE support_channel_events (
    channel     text NOT NULL,
    event_key   text NOT NULL,
    ticket_id   uuid,
    detail      text,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, event_key)
);

CREATE INDEX support_channel_events_ticket ON support_channel_events (ticket_id);
