-- The staff console's queue (issue 18): what its SLA columns are computed from.
--
-- A ticket's SLA clocks live in its workflow; asking every workflow of the queue for them
-- would cost one query per row (and a worker up to answer). The database already sees every
-- event that moves a clock, so two triggers keep the clocks' inputs on the ticket's row, and
-- the queue computes deadlines from them with the SLA targets (kruxt.models.sla), as the
-- workflow does:
--   * the current exchange starts at the ticket's arrival, or again when it is reopened;
--   * its first answer (an outbound message that is not an acknowledgement or a holding note)
--     stops the first-response clock;
--   * the resolution clock pauses while the ticket waits on the customer.
-- Nothing in the workflow changed for this; rows written before it read as if never paused.

ALTER TABLE support_tickets
    ADD COLUMN sla_started_at     timestamptz,
    ADD COLUMN answered_at        timestamptz,
    ADD COLUMN sla_paused_seconds double precision NOT NULL DEFAULT 0,
    ADD COLUMN sla_paused_since   timestamptz,
    ADD COLUMN reopened_count     integer NOT NULL DEFAULT 0;

-- Rows from before: answered when first answered, waiting since their last change, reopened
-- as often as the KPI events say.
UPDATE support_tickets t
SET answered_at = first_response_at,
    sla_paused_since = CASE WHEN status = 'awaiting_customer' THEN updated_at END,
    reopened_count = (SELECT count(*) FROM support_kpi_events k
                      WHERE k.ticket_id = t.id AND k.event = 'ticket_reopened');

CREATE FUNCTION support_tickets_sla_inputs() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS NOT DISTINCT FROM OLD.status THEN
        RETURN NEW;
    END IF;
    IF OLD.sla_paused_since IS NOT NULL THEN
        NEW.sla_paused_seconds := OLD.sla_paused_seconds
            + greatest(0, extract(epoch FROM now() - OLD.sla_paused_since));
        NEW.sla_paused_since := NULL;
    END IF;
    IF NEW.status = 'awaiting_customer' THEN
        NEW.sla_paused_since := now();
    ELSIF NEW.status = 'reopened' THEN
        NEW.sla_started_at := now();
        NEW.answered_at := NULL;
        NEW.sla_paused_seconds := 0;
        NEW.reopened_count := OLD.reopened_count + 1;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER support_tickets_sla_inputs
    BEFORE UPDATE OF status ON support_tickets
    FOR EACH ROW EXECUTE FUNCTION support_tickets_sla_inputs();

CREATE FUNCTION support_ticket_answered() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE support_tickets SET answered_at = NEW.created_at
    WHERE id = NEW.ticket_id AND answered_at IS NULL;
    RETURN NULL;
END
$$;

CREATE TRIGGER support_ticket_answered
    AFTER INSERT ON support_ticket_messages
    FOR EACH ROW
    WHEN (NEW.direction = 'outbound' AND NEW.kind NOT IN ('acknowledgement', 'holding'))
    EXECUTE FUNCTION support_ticket_answered();

-- The queue's open tickets: everything not resolved, read whole on every refresh.
CREATE INDEX support_tickets_open_idx ON support_tickets (created_at DESC)
    WHERE status <> 'resolved';
