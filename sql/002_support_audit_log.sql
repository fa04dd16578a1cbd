-- The audit trail: append-only, each row hashed and chained to the row before it.
--
-- hash = sha256(prev_hash || canonical row), where the canonical row is
-- support_audit_canonical(...) below; `kruxt audit verify` recomputes it in Python.

CREATE TABLE support_audit_log (
    id               bigint PRIMARY KEY,
    occurred_at      timestamptz NOT NULL DEFAULT now(),
    actor            text NOT NULL,
    action           text NOT NULL,
    ticket_id        uuid,
    details          jsonb NOT NULL DEFAULT '{}',
    idempotency_key  text UNIQUE,
    prev_hash        text NOT NULL,
    hash             text NOT NULL
);

CREATE SEQUENCE support_audit_log_id_seq OWNED BY support_audit_log.id;
CREATE INDEX support_audit_log_ticket_idx ON support_audit_log (ticket_id, id);

CREATE FUNCTION support_audit_canonical(
    p_id bigint, p_occurred_at timestamptz, p_actor text, p_action text,
    p_ticket_id uuid, p_details jsonb, p_idempotency_key text
) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_array(
        p_id,
        to_char(p_occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        p_actor, p_action, p_ticket_id, p_details, p_idempotency_key
    )::text
$$;

-- Ids and hashes are assigned under one transaction-scoped lock so that id order is chain
-- order even when audit rows are inserted concurrently.
CREATE FUNCTION support_audit_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    last_hash text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('support_audit_log'));
    NEW.id := nextval('support_audit_log_id_seq');
    NEW.occurred_at := date_trunc('microseconds', clock_timestamp());
    SELECT hash INTO last_hash FROM support_audit_log ORDER BY id DESC LIMIT 1;
    NEW.prev_hash := coalesce(last_hash, repeat('0', 64));
    NEW.hash := encode(sha256(convert_to(
        NEW.prev_hash || support_audit_canonical(
            NEW.id, NEW.occurred_at, NEW.actor, NEW.action, NEW.ticket_id, NEW.details,
            NEW.idempotency_key),
        'UTF8')), 'hex');
    RETURN NEW;
END
$$;

CREATE FUNCTION support_audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'support_audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Audit entries are never changed; append a correcting entry instead.';
END
$$;

CREATE TRIGGER support_audit_log_chain
    BEFORE INSERT ON support_audit_log
    FOR EACH ROW EXECUTE FUNCTION support_audit_chain();

CREATE TRIGGER support_audit_log_no_update_delete
    BEFORE UPDATE OR DELETE ON support_audit_log
    FOR EACH ROW EXECUTE FUNCTION support_audit_refuse_change();

CREATE TRIGGER support_audit_log_no_truncate
    BEFORE TRUNCATE ON support_audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION support_audit_refuse_change();
