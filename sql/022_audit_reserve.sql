-- One round trip for what an append does under the chain's lock before its insert: take the
-- lock, then read the head, draw the id and time and render the canonical row. The head must be
-- read with a snapshot taken after the lock (else two writers could both extend the same head):
-- in READ COMMITTED a VOLATILE plpgsql function takes a fresh snapshot for each statement it
-- runs, so the SELECT after PERFORM sees every append committed before the lock was granted.
-- (As separate statements, the lock and the read cost two round trips, with the chain's lock,
-- which serializes every audited write, held across both.) No row: the key was used before.
CREATE FUNCTION support_audit_reserve(
    p_actor text, p_action text, p_ticket_id uuid, p_details jsonb, p_idempotency_key text
) RETURNS TABLE (new_id bigint, new_at timestamptz, head_hash text, canonical text)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('support_audit_log'));
    RETURN QUERY
    WITH n AS (
        SELECT nextval('support_audit_log_id_seq') AS id,
               date_trunc('microseconds', clock_timestamp()) AS occurred_at
        WHERE p_idempotency_key IS NULL
           OR NOT EXISTS (SELECT 1 FROM support_audit_log l
                          WHERE l.idempotency_key = p_idempotency_key)
    )
    SELECT n.id, n.occurred_at,
           coalesce((SELECT l.hash FROM support_audit_log l ORDER BY l.id DESC LIMIT 1),
                    repeat('0', 64)),
           support_audit_canonical(n.id, n.occurred_at, p_actor, p_action, p_ticket_id,
                                   p_details, p_idempotency_key)
    FROM n;
END
$$;
