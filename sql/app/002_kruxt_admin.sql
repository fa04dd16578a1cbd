-- kruxt_admin: the narrow RPC surface of the KRUXT app for the support worker.
--
-- These SECURITY DEFINER functions are the ONLY way the support worker reads or changes app
-- data (003_support_role.sql gives it nothing else). Every function pins its search_path
-- (pg_temp last, so no temporary object can shadow an app table).
--
-- Read-only: account_context(user_id) and one diagnose_<playbook>(user_id, ...) per playbook.
--
-- Mutating: each takes an idempotency key first, records the call in
-- kruxt_admin.applied_changes (with before and after images) and returns
-- {"before", "after", "replayed", "noop"}. The same key again returns the stored result with
-- replayed = true and applies nothing; the same key with other arguments is refused.
-- Compensations take their own key and the key of the change they undo; they restore the
-- before image of that change and succeed with noop = true when there is nothing to undo
-- (unknown key, or already compensated). Noops are not recorded: they changed nothing.
--
-- Errors: SQLSTATE P0002 = the named entity does not exist (TABLE names its table);
-- P0001 = refused, with a message saying why.
--
-- Never changed by any function here: user blocks (the users' own) and privacy requests
-- (handled by staff outside automation).

CREATE SCHEMA kruxt_admin;
-- Internal helpers: SECURITY INVOKER, and the support role gets no USAGE on this schema.
CREATE SCHEMA kruxt_admin_private;

CREATE TABLE kruxt_admin.applied_changes (
    idempotency_key text PRIMARY KEY CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    function        text NOT NULL,
    args            jsonb NOT NULL,
    before          jsonb,
    after           jsonb,
    applied_at      timestamptz NOT NULL DEFAULT now(),
    compensated_at  timestamptz,
    compensated_by  text REFERENCES kruxt_admin.applied_changes (idempotency_key)
);

CREATE INDEX applied_changes_function_idx ON kruxt_admin.applied_changes (function, applied_at);

-- ---------------------------------------------------------------------------------------
-- Internal helpers
-- ---------------------------------------------------------------------------------------

-- Start a keyed change: serialize on the key; the stored result when it was applied before.
CREATE FUNCTION kruxt_admin_private.begin_change(p_key text, p_function text, p_args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    v kruxt_admin.applied_changes;
BEGIN
    IF p_key IS NULL OR btrim(p_key) = '' THEN
        RAISE EXCEPTION '%: an idempotency key is required', p_function
            USING ERRCODE = 'P0001';
    END IF;
    IF length(p_key) > 200 THEN
        RAISE EXCEPTION '%: the idempotency key is longer than 200 characters', p_function
            USING ERRCODE = 'P0001';
    END IF;
    -- Two concurrent calls with one key take turns; the second sees the first's row.
    PERFORM pg_advisory_xact_lock(hashtextextended('kruxt_admin:' || p_key, 0));
    SELECT * INTO v FROM kruxt_admin.applied_changes WHERE idempotency_key = p_key;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF v.function <> p_function OR v.args <> p_args THEN
        RAISE EXCEPTION 'idempotency key % was already used for %(%), not for %(%)',
            p_key, v.function, v.args, p_function, p_args
            USING ERRCODE = 'P0001';
    END IF;
    RETURN jsonb_build_object(
        'before', v.before, 'after', v.after, 'replayed', true, 'noop', false);
END
$$;

CREATE FUNCTION kruxt_admin_private.record_change(
    p_key text, p_function text, p_args jsonb, p_before jsonb, p_after jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
BEGIN
    INSERT INTO kruxt_admin.applied_changes (idempotency_key, function, args, before, after)
    VALUES (p_key, p_function, p_args, p_before, p_after);
    RETURN jsonb_build_object(
        'before', p_before, 'after', p_after, 'replayed', false, 'noop', false);
END
$$;

-- The change a compensation undoes, locked; a row of NULLs when the key is unknown.
CREATE FUNCTION kruxt_admin_private.original_change(p_original_key text, p_function text)
RETURNS kruxt_admin.applied_changes
LANGUAGE plpgsql
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    v kruxt_admin.applied_changes;
BEGIN
    IF p_original_key IS NULL THEN
        RETURN v;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('kruxt_admin:' || p_original_key, 0));
    SELECT * INTO v FROM kruxt_admin.applied_changes
    WHERE idempotency_key = p_original_key
    FOR UPDATE;
    IF FOUND AND v.function <> p_function THEN
        RAISE EXCEPTION 'idempotency key % belongs to %, not to %',
            p_original_key, v.function, p_function
            USING ERRCODE = 'P0001';
    END IF;
    RETURN v;
END
$$;

CREATE FUNCTION kruxt_admin_private.noop(
    p_original_key text, p_original kruxt_admin.applied_changes)
RETURNS jsonb
LANGUAGE sql
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
    SELECT jsonb_build_object(
        'before', NULL, 'after', NULL, 'replayed', false, 'noop', true,
        'reason', CASE
            WHEN p_original.idempotency_key IS NULL
                THEN format('nothing to undo: no change was applied under key %s',
                            p_original_key)
            ELSE format('nothing to undo: the change under key %s was already compensated '
                        'by %s', p_original_key, p_original.compensated_by)
        END)
$$;

CREATE FUNCTION kruxt_admin_private.record_compensation(
    p_key text, p_function text, p_original_key text, p_before jsonb, p_after jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    v_result jsonb;
BEGIN
    v_result := kruxt_admin_private.record_change(
        p_key, p_function, jsonb_build_object('original_key', p_original_key),
        p_before, p_after);
    UPDATE kruxt_admin.applied_changes
    SET compensated_at = now(), compensated_by = p_key
    WHERE idempotency_key = p_original_key;
    RETURN v_result;
END
$$;

CREATE FUNCTION kruxt_admin_private.try_timestamptz(p_text text)
RETURNS timestamptz
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN p_text::timestamptz;
EXCEPTION WHEN data_exception THEN
    RETURN NULL;
END
$$;

-- A workout submission's payload can be replayed when its performed_at (if any) parses.
CREATE FUNCTION kruxt_admin_private.replayable(p_payload jsonb)
RETURNS boolean
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_typeof(p_payload) = 'object'
       AND (p_payload->>'performed_at' IS NULL
            OR kruxt_admin_private.try_timestamptz(p_payload->>'performed_at') IS NOT NULL)
$$;

CREATE FUNCTION kruxt_admin_private.require_user(p_user_id text)
RETURNS kruxt_app.users
LANGUAGE plpgsql
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    v kruxt_app.users;
BEGIN
    SELECT * INTO v FROM users WHERE id = p_user_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'user % not found', p_user_id
            USING ERRCODE = 'P0002', TABLE = 'users';
    END IF;
    RETURN v;
END
$$;

CREATE FUNCTION kruxt_admin_private.class_bookings(p_class_id text)
RETURNS jsonb
LANGUAGE sql
STABLE
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
    SELECT coalesce(jsonb_agg(to_jsonb(b) ORDER BY b.created_at, b.id), '[]'::jsonb)
    FROM class_bookings b
    WHERE b.class_id = p_class_id
$$;

-- ---------------------------------------------------------------------------------------
-- Read-only: account context and diagnoses
-- ---------------------------------------------------------------------------------------

CREATE FUNCTION kruxt_admin.account_context(p_user_id text)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    v_user users;
BEGIN
    SELECT * INTO v_user FROM users WHERE id = p_user_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN jsonb_build_object(
        'user_id', v_user.id,
        'email', v_user.email,
        'name', v_user.name,
        'plan', v_user.plan,
        'platform', v_user.platform,
        'email_verified', v_user.email_verified,
        'created_at', v_user.created_at,
        'locked', coalesce(v_user.locked_until > now(), false),
        'locked_until', v_user.locked_until,
        'failed_logins', v_user.failed_logins,
        'active_sessions', (
            SELECT count(*) FROM sessions s
            WHERE s.user_id = v_user.id AND s.revoked_at IS NULL),
        'integrations', (
            SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'id', c.id, 'provider', c.provider, 'status', c.status,
                       'reauth_required', c.reauth_required,
                       'token_expires_at', c.token_expires_at,
                       'last_sync_at', c.last_sync_at, 'last_error', c.last_error)
                       ORDER BY c.provider), '[]'::jsonb)
            FROM integration_connections c WHERE c.user_id = v_user.id),
        'failed_submissions_7d', (
            SELECT jsonb_build_object(
                       'count', count(*),
                       'last_error', (array_agg(ws.error ORDER BY ws.submitted_at DESC))[1],
                       'last_failed_at', max(ws.submitted_at))
            FROM workout_submissions ws
            WHERE ws.user_id = v_user.id AND ws.status = 'failed'
              AND ws.submitted_at > now() - interval '7 days'),
        'open_privacy_requests', (
            SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'id', p.id, 'kind', p.kind, 'status', p.status,
                       'requested_at', p.requested_at, 'due_at', p.due_at)
                       ORDER BY p.requested_at), '[]'::jsonb)
            FROM privacy_requests p
            WHERE p.user_id = v_user.id AND p.status <> 'completed'),
        'billing_access', (
            SELECT jsonb_build_object('enabled', b.enabled, 'updated_at', b.updated_at)
            FROM billing_access b WHERE b.user_id = v_user.id)
    );
END
$$;

CREATE FUNCTION kruxt_admin.diagnose_auth_login(p_user_id text)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    v_user users := kruxt_admin_private.require_user(p_user_id);
    v_locked boolean := coalesce(v_user.locked_until > now(), false);
    v_findings text[] := '{}';
BEGIN
    IF v_locked THEN
        v_findings := v_findings || 'account_locked'::text;
    END IF;
    IF NOT v_user.email_verified THEN
        v_findings := v_findings || 'email_unverified'::text;
    END IF;
    IF v_user.failed_logins >= 5 THEN
        v_findings := v_findings || 'many_failed_logins'::text;
    END IF;
    RETURN jsonb_build_object(
        'user_id', v_user.id,
        'email', v_user.email,
        'email_verified', v_user.email_verified,
        'locked', v_locked,
        'locked_until', v_user.locked_until,
        'failed_logins', v_user.failed_logins,
        'active_sessions', (
            SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'id', s.id, 'device', s.device, 'created_at', s.created_at)
                       ORDER BY s.created_at DESC), '[]'::jsonb)
            FROM sessions s WHERE s.user_id = v_user.id AND s.revoked_at IS NULL),
        'verification_emails_sent', (
            SELECT count(*) FROM outbox_emails o
            WHERE o.user_id = v_user.id AND o.template = 'verify_email'),
        'findings', to_jsonb(v_findings)
    );
END
$$;

CREATE FUNCTION kruxt_admin.diagnose_workout_log_submit(p_user_id text)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    v_user users := kruxt_admin_private.require_user(p_user_id);
    v_failed jsonb;
BEGIN
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'id', ws.id, 'submitted_at', ws.submitted_at, 'error', ws.error,
               'title', ws.payload->>'title', 'performed_at', ws.payload->>'performed_at',
               'exercises', coalesce(jsonb_array_length(
                   CASE WHEN jsonb_typeof(ws.payload->'exercises') = 'array'
                        THEN ws.payload->'exercises' END), 0),
               'replayable', kruxt_admin_private.replayable(ws.payload)
                             AND NOT EXISTS (
                                 SELECT 1 FROM workouts w WHERE w.submission_id = ws.id))
               ORDER BY ws.submitted_at DESC), '[]'::jsonb)
    INTO v_failed
    FROM workout_submissions ws
    WHERE ws.user_id = v_user.id AND ws.status = 'failed'
      AND ws.submitted_at > now() - interval '30 days';
    RETURN jsonb_build_object(
        'user_id', v_user.id,
        'platform', v_user.platform,
        'failed_submissions', v_failed,
        'accepted_last_30_days', (
            SELECT count(*) FROM workout_submissions ws
            WHERE ws.user_id = v_user.id AND ws.status = 'accepted'
              AND ws.submitted_at > now() - interval '30 days'),
        'findings', CASE WHEN jsonb_array_length(v_failed) > 0
                         THEN '["failed_submissions"]'::jsonb ELSE '[]'::jsonb END
    );
END
$$;

CREATE FUNCTION kruxt_admin.diagnose_feed_moderation(p_user_id text, p_post_id text)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    v_user users := kruxt_admin_private.require_user(p_user_id);
    v_post feed_posts;
    v_findings text[] := '{}';
BEGIN
    SELECT * INTO v_post FROM feed_posts WHERE id = p_post_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'post % not found', p_post_id
            USING ERRCODE = 'P0002', TABLE = 'feed_posts';
    END IF;
    IF v_post.visibility = 'hidden' THEN
        v_findings := v_findings || 'post_hidden'::text;
    END IF;
    IF EXISTS (SELECT 1 FROM post_reports r WHERE r.post_id = v_post.id AND r.status = 'upheld')
    THEN
        v_findings := v_findings || 'report_upheld'::text;
    END IF;
    IF EXISTS (SELECT 1 FROM post_reports r WHERE r.post_id = v_post.id AND r.status = 'open')
    THEN
        v_findings := v_findings || 'reports_open'::text;
    END IF;
    RETURN jsonb_build_object(
        'requester_id', v_user.id,
        'requester_is_author', v_post.user_id = v_user.id,
        'post', jsonb_build_object(
            'id', v_post.id, 'author_id', v_post.user_id, 'visibility', v_post.visibility,
            'hidden_reason', v_post.hidden_reason, 'created_at', v_post.created_at,
            'updated_at', v_post.updated_at),
        'reports', (
            SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'id', r.id, 'reporter_id', r.reporter_id, 'reason', r.reason,
                       'status', r.status, 'created_at', r.created_at)
                       ORDER BY r.created_at), '[]'::jsonb)
            FROM post_reports r WHERE r.post_id = v_post.id),
        'moderation_history', (
            SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'id', m.id, 'action', m.action, 'actor', m.actor, 'reason', m.reason,
                       'created_at', m.created_at)
                       ORDER BY m.created_at, m.id), '[]'::jsonb)
            FROM moderation_actions m WHERE m.post_id = v_post.id),
        -- Shown for context only: blocks are the users' own and are never changed.
        'blocks_involving_author', (
            SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'blocker_id', b.blocker_id, 'blocked_id', b.blocked_id,
                       'created_at', b.created_at)
                       ORDER BY b.created_at), '[]'::jsonb)
            FROM user_blocks b
            WHERE (b.blocked_id = v_post.user_id AND (
                       b.blocker_id = v_user.id
                       OR b.blocker_id IN (SELECT r.reporter_id FROM post_reports r
                                           WHERE r.post_id = v_post.id)))
               OR (b.blocker_id = v_post.user_id AND b.blocked_id = v_user.id)),
        'findings', to_jsonb(v_findings)
    );
END
$$;

CREATE FUNCTION kruxt_admin.diagnose_class_booking_waitlist(p_user_id text, p_class_id text)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    v_user users := kruxt_admin_private.require_user(p_user_id);
    v_class classes;
    v_booked integer;
    v_waitlisted integer;
    v_duplicates jsonb;
    v_missing jsonb;
    v_unnumbered integer;
    v_findings text[] := '{}';
BEGIN
    SELECT * INTO v_class FROM classes WHERE id = p_class_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'class % not found', p_class_id
            USING ERRCODE = 'P0002', TABLE = 'classes';
    END IF;
    SELECT count(*) FILTER (WHERE status = 'booked'),
           count(*) FILTER (WHERE status = 'waitlisted'),
           count(*) FILTER (WHERE status = 'waitlisted' AND waitlist_position IS NULL)
    INTO v_booked, v_waitlisted, v_unnumbered
    FROM class_bookings WHERE class_id = v_class.id;
    SELECT coalesce(jsonb_agg(pos ORDER BY pos), '[]'::jsonb) INTO v_duplicates
    FROM (SELECT waitlist_position AS pos FROM class_bookings
          WHERE class_id = v_class.id AND status = 'waitlisted'
            AND waitlist_position IS NOT NULL
          GROUP BY waitlist_position HAVING count(*) > 1) d;
    SELECT coalesce(jsonb_agg(g ORDER BY g), '[]'::jsonb) INTO v_missing
    FROM generate_series(1, v_waitlisted) g
    WHERE NOT EXISTS (SELECT 1 FROM class_bookings b
                      WHERE b.class_id = v_class.id AND b.status = 'waitlisted'
                        AND b.waitlist_position = g);
    IF jsonb_array_length(v_duplicates) > 0 THEN
        v_findings := v_findings || 'duplicate_waitlist_positions'::text;
    END IF;
    IF jsonb_array_length(v_missing) > 0 THEN
        v_findings := v_findings || 'waitlist_gaps'::text;
    END IF;
    IF v_unnumbered > 0 THEN
        v_findings := v_findings || 'waitlisted_without_position'::text;
    END IF;
    IF v_waitlisted > 0 AND v_booked < v_class.capacity THEN
        v_findings := v_findings || 'free_capacity_with_waitlist'::text;
    END IF;
    IF EXISTS (SELECT 1 FROM class_bookings b WHERE b.class_id = v_class.id
               AND b.status <> 'waitlisted' AND b.waitlist_position IS NOT NULL) THEN
        v_findings := v_findings || 'stale_positions_outside_waitlist'::text;
    END IF;
    RETURN jsonb_build_object(
        'class', jsonb_build_object(
            'id', v_class.id, 'gym_id', v_class.gym_id, 'title', v_class.title,
            'starts_at', v_class.starts_at, 'capacity', v_class.capacity),
        'booked', v_booked,
        'waitlisted', v_waitlisted,
        'free_seats', greatest(v_class.capacity - v_booked, 0),
        'duplicate_positions', v_duplicates,
        'missing_positions', v_missing,
        'bookings', kruxt_admin_private.class_bookings(v_class.id),
        'requester_booking', (
            SELECT to_jsonb(b) FROM class_bookings b
            WHERE b.class_id = v_class.id AND b.user_id = v_user.id
            ORDER BY b.created_at DESC LIMIT 1),
        'findings', to_jsonb(v_findings)
    );
END
$$;

CREATE FUNCTION kruxt_admin.diagnose_integration_sync(p_user_id text, p_provider text)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    v_user users := kruxt_admin_private.require_user(p_user_id);
    v_conn integration_connections;
    v_findings text[] := '{}';
BEGIN
    IF p_provider IS NULL OR p_provider NOT IN ('apple_health', 'garmin') THEN
        RAISE EXCEPTION 'unknown integration provider %: expected apple_health or garmin',
            coalesce(p_provider, 'NULL')
            USING ERRCODE = 'P0001';
    END IF;
    SELECT * INTO v_conn FROM integration_connections
    WHERE user_id = v_user.id AND provider = p_provider;
    IF NOT FOUND THEN
        RETURN jsonb_build_object(
            'user_id', v_user.id, 'provider', p_provider, 'connection', NULL,
            'pending_sync_jobs', 0, 'findings', '["not_connected"]'::jsonb);
    END IF;
    IF v_conn.status = 'disconnected' THEN
        v_findings := v_findings || 'disconnected'::text;
    END IF;
    IF v_conn.token_expires_at IS NOT NULL AND v_conn.token_expires_at < now() THEN
        v_findings := v_findings || 'token_expired'::text;
    END IF;
    IF v_conn.reauth_required OR v_conn.status = 'reauth_required' THEN
        v_findings := v_findings || 'reauth_required'::text;
    END IF;
    IF v_conn.last_error IS NOT NULL THEN
        v_findings := v_findings || 'sync_error'::text;
    END IF;
    IF v_conn.last_sync_at IS NULL OR v_conn.last_sync_at < now() - interval '24 hours' THEN
        v_findings := v_findings || 'sync_stale'::text;
    END IF;
    RETURN jsonb_build_object(
        'user_id', v_user.id,
        'provider', p_provider,
        'connection', jsonb_build_object(
            'id', v_conn.id, 'status', v_conn.status,
            'reauth_required', v_conn.reauth_required,
            'token_expires_at', v_conn.token_expires_at,
            'token_expired', coalesce(v_conn.token_expires_at < now(), false),
            'last_sync_at', v_conn.last_sync_at, 'last_error', v_conn.last_error,
            'sync_cursor', v_conn.sync_cursor),
        'pending_sync_jobs', (
            SELECT count(*) FROM sync_jobs j
            WHERE j.connection_id = v_conn.id AND j.status IN ('queued', 'running')),
        'findings', to_jsonb(v_findings)
    );
END
$$;

CREATE FUNCTION kruxt_admin.diagnose_privacy_request_status(p_user_id text)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    v_user users := kruxt_admin_private.require_user(p_user_id);
    v_requests jsonb;
    v_findings text[] := '{}';
BEGIN
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'id', p.id, 'kind', p.kind, 'status', p.status,
               'requested_at', p.requested_at, 'due_at', p.due_at,
               'days_until_due', floor(extract(epoch FROM p.due_at - now()) / 86400)::integer,
               'overdue', p.status <> 'completed' AND p.due_at < now())
               ORDER BY p.requested_at DESC), '[]'::jsonb)
    INTO v_requests
    FROM privacy_requests p WHERE p.user_id = v_user.id;
    IF EXISTS (SELECT 1 FROM privacy_requests p WHERE p.user_id = v_user.id
               AND p.kind = 'export' AND p.status <> 'completed') THEN
        v_findings := v_findings || 'open_export_request'::text;
    END IF;
    IF EXISTS (SELECT 1 FROM privacy_requests p WHERE p.user_id = v_user.id
               AND p.kind = 'deletion' AND p.status <> 'completed') THEN
        v_findings := v_findings || 'open_deletion_request'::text;
    END IF;
    IF EXISTS (SELECT 1 FROM privacy_requests p WHERE p.user_id = v_user.id
               AND p.status <> 'completed' AND p.due_at < now()) THEN
        v_findings := v_findings || 'overdue'::text;
    END IF;
    RETURN jsonb_build_object(
        'user_id', v_user.id, 'requests', v_requests, 'findings', to_jsonb(v_findings));
END
$$;

CREATE FUNCTION kruxt_admin.diagnose_billing_invoice(p_user_id text)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    v_user users := kruxt_admin_private.require_user(p_user_id);
    v_access billing_access;
    v_live boolean;
    v_findings text[] := '{}';
BEGIN
    SELECT * INTO v_access FROM billing_access WHERE user_id = v_user.id;
    SELECT coalesce(bool_or(enabled), false) INTO v_live
    FROM feature_flags WHERE name = 'billing_live';
    IF EXISTS (SELECT 1 FROM invoices i WHERE i.user_id = v_user.id
               AND i.delivery_status = 'bounced') THEN
        v_findings := v_findings || 'invoice_bounced'::text;
    END IF;
    IF v_access.user_id IS NOT NULL AND NOT v_access.enabled THEN
        v_findings := v_findings || 'billing_access_revoked'::text;
    END IF;
    IF NOT v_live THEN
        v_findings := v_findings || 'billing_not_live'::text;
    END IF;
    RETURN jsonb_build_object(
        'user_id', v_user.id,
        'plan', v_user.plan,
        'email', v_user.email,
        'invoices', (
            SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'id', i.id, 'number', i.number, 'amount_cents', i.amount_cents,
                       'currency', i.currency, 'status', i.status, 'issued_at', i.issued_at,
                       'delivery_status', i.delivery_status, 'delivered_at', i.delivered_at,
                       'deliveries_requested', (SELECT count(*) FROM invoice_deliveries d
                                                WHERE d.invoice_id = i.id))
                       ORDER BY i.issued_at DESC NULLS LAST, i.id), '[]'::jsonb)
            FROM invoices i WHERE i.user_id = v_user.id),
        'billing_access', CASE WHEN v_access.user_id IS NULL THEN NULL
                               ELSE jsonb_build_object('enabled', v_access.enabled,
                                                       'updated_at', v_access.updated_at)
                          END,
        'billing_live', v_live,
        'findings', to_jsonb(v_findings)
    );
END
$$;

-- ---------------------------------------------------------------------------------------
-- auth_login: unlock (relock), resend verification, revoke sessions
-- ---------------------------------------------------------------------------------------

CREATE FUNCTION kruxt_admin.unlock_account(p_idempotency_key text, p_user_id text)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    c_function constant text := 'unlock_account';
    v_args jsonb := jsonb_build_object('user_id', p_user_id);
    v_result jsonb;
    v_user users;
BEGIN
    v_result := kruxt_admin_private.begin_change(p_idempotency_key, c_function, v_args);
    IF v_result IS NOT NULL THEN
        RETURN v_result;
    END IF;
    SELECT * INTO v_user FROM users WHERE id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'user % not found', p_user_id
            USING ERRCODE = 'P0002', TABLE = 'users';
    END IF;
    UPDATE users SET locked_until = NULL, failed_logins = 0 WHERE id = v_user.id;
    RETURN kruxt_admin_private.record_change(
        p_idempotency_key, c_function, v_args,
        jsonb_build_object('user_id', v_user.id, 'locked_until', v_user.locked_until,
                           'failed_logins', v_user.failed_logins),
        jsonb_build_object('user_id', v_user.id, 'locked_until', NULL, 'failed_logins', 0));
END
$$;

CREATE FUNCTION kruxt_admin.relock_account(p_idempotency_key text, p_original_key text)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    c_function constant text := 'relock_account';
    v_result jsonb;
    v_orig kruxt_admin.applied_changes;
    v_user users;
    v_after users;
BEGIN
    v_result := kruxt_admin_private.begin_change(
        p_idempotency_key, c_function, jsonb_build_object('original_key', p_original_key));
    IF v_result IS NOT NULL THEN
        RETURN v_result;
    END IF;
    v_orig := kruxt_admin_private.original_change(p_original_key, 'unlock_account');
    IF v_orig.idempotency_key IS NULL OR v_orig.compensated_at IS NOT NULL THEN
        RETURN kruxt_admin_private.noop(p_original_key, v_orig);
    END IF;
    SELECT * INTO v_user FROM users WHERE id = v_orig.args->>'user_id' FOR UPDATE;
    UPDATE users
    SET locked_until = (v_orig.before->>'locked_until')::timestamptz,
        failed_logins = (v_orig.before->>'failed_logins')::integer
    WHERE id = v_user.id
    RETURNING * INTO v_after;
    RETURN kruxt_admin_private.record_compensation(
        p_idempotency_key, c_function, p_original_key,
        jsonb_build_object('user_id', v_user.id, 'locked_until', v_user.locked_until,
                           'failed_logins', v_user.failed_logins),
        jsonb_build_object('user_id', v_after.id, 'locked_until', v_after.locked_until,
                           'failed_logins', v_after.failed_logins));
END
$$;

CREATE FUNCTION kruxt_admin.resend_verification(p_idempotency_key text, p_user_id text)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    c_function constant text := 'resend_verification';
    v_args jsonb := jsonb_build_object('user_id', p_user_id);
    v_result jsonb;
    v_user users;
    v_mail outbox_emails;
BEGIN
    v_result := kruxt_admin_private.begin_change(p_idempotency_key, c_function, v_args);
    IF v_result IS NOT NULL THEN
        RETURN v_result;
    END IF;
    SELECT * INTO v_user FROM users WHERE id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'user % not found', p_user_id
            USING ERRCODE = 'P0002', TABLE = 'users';
    END IF;
    IF v_user.email_verified THEN
        RAISE EXCEPTION 'the email of user % is already verified; nothing to resend', p_user_id
            USING ERRCODE = 'P0001';
    END IF;
    INSERT INTO outbox_emails (user_id, to_email, template)
    VALUES (v_user.id, v_user.email, 'verify_email')
    RETURNING * INTO v_mail;
    RETURN kruxt_admin_private.record_change(
        p_idempotency_key, c_function, v_args,
        jsonb_build_object('user_id', v_user.id, 'email_verified', v_user.email_verified),
        jsonb_build_object('user_id', v_user.id, 'email_verified', v_user.email_verified,
                           'outbox_email', to_jsonb(v_mail)));
END
$$;

-- No compensation: a revoked session cannot be revived (the user signs in again).
CREATE FUNCTION kruxt_admin.revoke_sessions(p_idempotency_key text, p_user_id text)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    c_function constant text := 'revoke_sessions';
    v_args jsonb := jsonb_build_object('user_id', p_user_id);
    v_result jsonb;
    v_ids text[];
    v_before jsonb;
BEGIN
    v_result := kruxt_admin_private.begin_change(p_idempotency_key, c_function, v_args);
    IF v_result IS NOT NULL THEN
        RETURN v_result;
    END IF;
    PERFORM kruxt_admin_private.require_user(p_user_id);
    SELECT coalesce(array_agg(id ORDER BY created_at, id), '{}') INTO v_ids
    FROM (SELECT id, created_at FROM sessions
          WHERE user_id = p_user_id AND revoked_at IS NULL FOR UPDATE) s;
    SELECT coalesce(jsonb_agg(to_jsonb(s) ORDER BY s.created_at, s.id), '[]'::jsonb)
    INTO v_before FROM sessions s WHERE s.id = ANY (v_ids);
    UPDATE sessions SET revoked_at = now() WHERE id = ANY (v_ids);
    RETURN kruxt_admin_private.record_change(
        p_idempotency_key, c_function, v_args,
        jsonb_build_object('user_id', p_user_id, 'sessions', v_before),
        jsonb_build_object('user_id', p_user_id, 'sessions', (
            SELECT coalesce(jsonb_agg(to_jsonb(s) ORDER BY s.created_at, s.id), '[]'::jsonb)
            FROM sessions s WHERE s.id = ANY (v_ids))));
END
$$;

-- ---------------------------------------------------------------------------------------
-- workout_log_submit: replay a failed submission (delete the replayed workout)
-- ---------------------------------------------------------------------------------------

CREATE FUNCTION kruxt_admin.replay_submission(p_idempotency_key text, p_submission_id text)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    c_function constant text := 'replay_submission';
    v_args jsonb := jsonb_build_object('submission_id', p_submission_id);
    v_result jsonb;
    v_sub workout_submissions;
    v_after workout_submissions;
    v_workout workouts;
    v_performed timestamptz;
BEGIN
    v_result := kruxt_admin_private.begin_change(p_idempotency_key, c_function, v_args);
    IF v_result IS NOT NULL THEN
        RETURN v_result;
    END IF;
    SELECT * INTO v_sub FROM workout_submissions WHERE id = p_submission_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'workout submission % not found', p_submission_id
            USING ERRCODE = 'P0002', TABLE = 'workout_submissions';
    END IF;
    IF v_sub.status <> 'failed' THEN
        RAISE EXCEPTION 'workout submission % is %, not failed; nothing to replay',
            p_submission_id, v_sub.status
            USING ERRCODE = 'P0001';
    END IF;
    IF EXISTS (SELECT 1 FROM workouts WHERE submission_id = v_sub.id) THEN
        RAISE EXCEPTION 'workout submission % already has a workout; nothing to replay',
            p_submission_id
            USING ERRCODE = 'P0001';
    END IF;
    IF NOT kruxt_admin_private.replayable(v_sub.payload) THEN
        RAISE EXCEPTION 'workout submission % cannot be replayed: its payload has no valid '
                        'performed_at (%)', p_submission_id, v_sub.payload->>'performed_at'
            USING ERRCODE = 'P0001';
    END IF;
    v_performed := coalesce((v_sub.payload->>'performed_at')::timestamptz, v_sub.submitted_at);
    INSERT INTO workouts (user_id, submission_id, title, performed_at, data)
    VALUES (v_sub.user_id, v_sub.id,
            coalesce(nullif(btrim(v_sub.payload->>'title'), ''), 'Workout'),
            v_performed, v_sub.payload)
    RETURNING * INTO v_workout;
    UPDATE workout_submissions
    SET status = 'accepted', error = NULL, workout_id = v_workout.id
    WHERE id = v_sub.id
    RETURNING * INTO v_after;
    RETURN kruxt_admin_private.record_change(
        p_idempotency_key, c_function, v_args,
        jsonb_build_object('submission', to_jsonb(v_sub)),
        jsonb_build_object('submission', to_jsonb(v_after), 'workout', to_jsonb(v_workout)));
END
$$;

CREATE FUNCTION kruxt_admin.delete_replayed_workout(
    p_idempotency_key text, p_original_key text)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    c_function constant text := 'delete_replayed_workout';
    v_result jsonb;
    v_orig kruxt_admin.applied_changes;
    v_prev workout_submissions;
    v_sub jsonb;
    v_workout jsonb;
    v_after workout_submissions;
BEGIN
    v_result := kruxt_admin_private.begin_change(
        p_idempotency_key, c_function, jsonb_build_object('original_key', p_original_key));
    IF v_result IS NOT NULL THEN
        RETURN v_result;
    END IF;
    v_orig := kruxt_admin_private.original_change(p_original_key, 'replay_submission');
    IF v_orig.idempotency_key IS NULL OR v_orig.compensated_at IS NOT NULL THEN
        RETURN kruxt_admin_private.noop(p_original_key, v_orig);
    END IF;
    v_prev := jsonb_populate_record(NULL::kruxt_app.workout_submissions,
                                    v_orig.before->'submission');
    SELECT to_jsonb(s) INTO v_sub FROM workout_submissions s WHERE s.id = v_prev.id FOR UPDATE;
    SELECT to_jsonb(w) INTO v_workout FROM workouts w
    WHERE w.id = v_orig.after->'workout'->>'id' FOR UPDATE;
    UPDATE workout_submissions
    SET status = v_prev.status, error = v_prev.error, workout_id = v_prev.workout_id
    WHERE id = v_prev.id
    RETURNING * INTO v_after;
    DELETE FROM workouts WHERE id = v_orig.after->'workout'->>'id';
    RETURN kruxt_admin_private.record_compensation(
        p_idempotency_key, c_function, p_original_key,
        jsonb_build_object('submission', v_sub, 'workout', v_workout),
        jsonb_build_object('submission', to_jsonb(v_after), 'workout', NULL));
END
$$;

-- ---------------------------------------------------------------------------------------
-- feed_moderation: restore a post's visibility (hide it again as before)
-- ---------------------------------------------------------------------------------------

CREATE FUNCTION kruxt_admin.restore_post_visibility(p_idempotency_key text, p_post_id text)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    c_function constant text := 'restore_post_visibility';
    v_args jsonb := jsonb_build_object('post_id', p_post_id);
    v_result jsonb;
    v_post feed_posts;
    v_after feed_posts;
    v_action moderation_actions;
BEGIN
    v_result := kruxt_admin_private.begin_change(p_idempotency_key, c_function, v_args);
    IF v_result IS NOT NULL THEN
        RETURN v_result;
    END IF;
    SELECT * INTO v_post FROM feed_posts WHERE id = p_post_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'post % not found', p_post_id
            USING ERRCODE = 'P0002', TABLE = 'feed_posts';
    END IF;
    IF v_post.visibility = 'visible' THEN
        RAISE EXCEPTION 'post % is already visible; nothing to restore', p_post_id
            USING ERRCODE = 'P0001';
    END IF;
    UPDATE feed_posts SET visibility = 'visible', hidden_reason = NULL, updated_at = now()
    WHERE id = v_post.id
    RETURNING * INTO v_after;
    INSERT INTO moderation_actions (post_id, action, actor, reason)
    VALUES (v_post.id, 'restore', 'kruxt_support',
            format('visibility restored by support (change %s)', p_idempotency_key))
    RETURNING * INTO v_action;
    RETURN kruxt_admin_private.record_change(
        p_idempotency_key, c_function, v_args,
        jsonb_build_object('post', to_jsonb(v_post)),
        jsonb_build_object('post', to_jsonb(v_after), 'moderation_action', to_jsonb(v_action)));
END
$$;

-- Undo: the post's previous visibility, reason and timestamp, and the 'restore' entry the
-- change added to the moderation history is withdrawn (applied_changes keeps both).
CREATE FUNCTION kruxt_admin.hide_post_again(p_idempotency_key text, p_original_key text)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    c_function constant text := 'hide_post_again';
    v_result jsonb;
    v_orig kruxt_admin.applied_changes;
    v_prev feed_posts;
    v_post feed_posts;
    v_after feed_posts;
BEGIN
    v_result := kruxt_admin_private.begin_change(
        p_idempotency_key, c_function, jsonb_build_object('original_key', p_original_key));
    IF v_result IS NOT NULL THEN
        RETURN v_result;
    END IF;
    v_orig := kruxt_admin_private.original_change(p_original_key, 'restore_post_visibility');
    IF v_orig.idempotency_key IS NULL OR v_orig.compensated_at IS NOT NULL THEN
        RETURN kruxt_admin_private.noop(p_original_key, v_orig);
    END IF;
    v_prev := jsonb_populate_record(NULL::kruxt_app.feed_posts, v_orig.before->'post');
    SELECT * INTO v_post FROM feed_posts WHERE id = v_prev.id FOR UPDATE;
    UPDATE feed_posts
    SET visibility = v_prev.visibility, hidden_reason = v_prev.hidden_reason,
        updated_at = v_prev.updated_at
    WHERE id = v_prev.id
    RETURNING * INTO v_after;
    DELETE FROM moderation_actions WHERE id = v_orig.after->'moderation_action'->>'id';
    RETURN kruxt_admin_private.record_compensation(
        p_idempotency_key, c_function, p_original_key,
        jsonb_build_object('post', to_jsonb(v_post)),
        jsonb_build_object('post', to_jsonb(v_after)));
END
$$;

-- ---------------------------------------------------------------------------------------
-- class_booking_waitlist: repair the waitlist (restore the previous positions)
-- ---------------------------------------------------------------------------------------

-- Waitlisted bookings, oldest first, fill the free seats; the rest are numbered 1..n in
-- created_at order; bookings that are not waitlisted carry no position.
CREATE FUNCTION kruxt_admin.repair_waitlist(p_idempotency_key text, p_class_id text)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    c_function constant text := 'repair_waitlist';
    v_args jsonb := jsonb_build_object('class_id', p_class_id);
    v_result jsonb;
    v_class classes;
    v_before jsonb;
    v_free integer;
BEGIN
    v_result := kruxt_admin_private.begin_change(p_idempotency_key, c_function, v_args);
    IF v_result IS NOT NULL THEN
        RETURN v_result;
    END IF;
    SELECT * INTO v_class FROM classes WHERE id = p_class_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'class % not found', p_class_id
            USING ERRCODE = 'P0002', TABLE = 'classes';
    END IF;
    PERFORM 1 FROM class_bookings WHERE class_id = v_class.id FOR UPDATE;
    v_before := kruxt_admin_private.class_bookings(v_class.id);
    SELECT greatest(v_class.capacity - count(*), 0) INTO v_free
    FROM class_bookings WHERE class_id = v_class.id AND status = 'booked';
    WITH ranked AS (
        SELECT id, row_number() OVER (ORDER BY created_at, id) AS rn
        FROM class_bookings
        WHERE class_id = v_class.id AND status = 'waitlisted'
    )
    UPDATE class_bookings b
    SET status = CASE WHEN r.rn <= v_free THEN 'booked' ELSE 'waitlisted' END,
        waitlist_position = CASE WHEN r.rn <= v_free THEN NULL ELSE (r.rn - v_free)::integer END
    FROM ranked r
    WHERE b.id = r.id;
    UPDATE class_bookings SET waitlist_position = NULL
    WHERE class_id = v_class.id AND status <> 'waitlisted' AND waitlist_position IS NOT NULL;
    RETURN kruxt_admin_private.record_change(
        p_idempotency_key, c_function, v_args,
        jsonb_build_object('class_id', v_class.id, 'capacity', v_class.capacity,
                           'bookings', v_before),
        jsonb_build_object('class_id', v_class.id, 'capacity', v_class.capacity,
                           'bookings', kruxt_admin_private.class_bookings(v_class.id)));
END
$$;

CREATE FUNCTION kruxt_admin.restore_waitlist(p_idempotency_key text, p_original_key text)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    c_function constant text := 'restore_waitlist';
    v_result jsonb;
    v_orig kruxt_admin.applied_changes;
    v_class_id text;
    v_before jsonb;
BEGIN
    v_result := kruxt_admin_private.begin_change(
        p_idempotency_key, c_function, jsonb_build_object('original_key', p_original_key));
    IF v_result IS NOT NULL THEN
        RETURN v_result;
    END IF;
    v_orig := kruxt_admin_private.original_change(p_original_key, 'repair_waitlist');
    IF v_orig.idempotency_key IS NULL OR v_orig.compensated_at IS NOT NULL THEN
        RETURN kruxt_admin_private.noop(p_original_key, v_orig);
    END IF;
    v_class_id := v_orig.args->>'class_id';
    PERFORM 1 FROM classes WHERE id = v_class_id FOR UPDATE;
    PERFORM 1 FROM class_bookings WHERE class_id = v_class_id FOR UPDATE;
    v_before := kruxt_admin_private.class_bookings(v_class_id);
    UPDATE class_bookings b
    SET status = p.status, waitlist_position = p.waitlist_position
    FROM jsonb_populate_recordset(NULL::kruxt_app.class_bookings,
                                  v_orig.before->'bookings') p
    WHERE b.id = p.id;
    RETURN kruxt_admin_private.record_compensation(
        p_idempotency_key, c_function, p_original_key,
        jsonb_build_object('class_id', v_class_id, 'bookings', v_before),
        jsonb_build_object('class_id', v_class_id,
                           'bookings', kruxt_admin_private.class_bookings(v_class_id)));
END
$$;

-- ---------------------------------------------------------------------------------------
-- integration_sync: reset the cursor and requeue (restore it); mark re-auth (clear it)
-- ---------------------------------------------------------------------------------------

CREATE FUNCTION kruxt_admin.reset_sync_cursor(p_idempotency_key text, p_connection_id text)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    c_function constant text := 'reset_sync_cursor';
    v_args jsonb := jsonb_build_object('connection_id', p_connection_id);
    v_result jsonb;
    v_conn integration_connections;
    v_after integration_connections;
    v_job sync_jobs;
BEGIN
    v_result := kruxt_admin_private.begin_change(p_idempotency_key, c_function, v_args);
    IF v_result IS NOT NULL THEN
        RETURN v_result;
    END IF;
    SELECT * INTO v_conn FROM integration_connections WHERE id = p_connection_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'integration connection % not found', p_connection_id
            USING ERRCODE = 'P0002', TABLE = 'integration_connections';
    END IF;
    IF v_conn.status = 'disconnected' THEN
        RAISE EXCEPTION 'integration connection % is disconnected; the user has to connect '
                        '% again', p_connection_id, v_conn.provider
            USING ERRCODE = 'P0001';
    END IF;
    UPDATE integration_connections SET sync_cursor = NULL WHERE id = v_conn.id
    RETURNING * INTO v_after;
    INSERT INTO sync_jobs (connection_id, status) VALUES (v_conn.id, 'queued')
    RETURNING * INTO v_job;
    RETURN kruxt_admin_private.record_change(
        p_idempotency_key, c_function, v_args,
        jsonb_build_object('connection', to_jsonb(v_conn)),
        jsonb_build_object('connection', to_jsonb(v_after), 'sync_job', to_jsonb(v_job)));
END
$$;

-- Undo: the previous cursor, and the requeued sync job withdrawn while it is still queued
-- (one that already ran stays in the history).
CREATE FUNCTION kruxt_admin.restore_sync_cursor(p_idempotency_key text, p_original_key text)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    c_function constant text := 'restore_sync_cursor';
    v_result jsonb;
    v_orig kruxt_admin.applied_changes;
    v_prev integration_connections;
    v_conn integration_connections;
    v_after integration_connections;
    v_job jsonb;
    v_job_after jsonb;
BEGIN
    v_result := kruxt_admin_private.begin_change(
        p_idempotency_key, c_function, jsonb_build_object('original_key', p_original_key));
    IF v_result IS NOT NULL THEN
        RETURN v_result;
    END IF;
    v_orig := kruxt_admin_private.original_change(p_original_key, 'reset_sync_cursor');
    IF v_orig.idempotency_key IS NULL OR v_orig.compensated_at IS NOT NULL THEN
        RETURN kruxt_admin_private.noop(p_original_key, v_orig);
    END IF;
    v_prev := jsonb_populate_record(NULL::kruxt_app.integration_connections,
                                    v_orig.before->'connection');
    SELECT * INTO v_conn FROM integration_connections WHERE id = v_prev.id FOR UPDATE;
    SELECT to_jsonb(j) INTO v_job FROM sync_jobs j
    WHERE j.id = v_orig.after->'sync_job'->>'id' FOR UPDATE;
    UPDATE integration_connections SET sync_cursor = v_prev.sync_cursor WHERE id = v_prev.id
    RETURNING * INTO v_after;
    DELETE FROM sync_jobs WHERE id = v_orig.after->'sync_job'->>'id' AND status = 'queued';
    SELECT to_jsonb(j) INTO v_job_after FROM sync_jobs j
    WHERE j.id = v_orig.after->'sync_job'->>'id';
    RETURN kruxt_admin_private.record_compensation(
        p_idempotency_key, c_function, p_original_key,
        jsonb_build_object('connection', to_jsonb(v_conn), 'sync_job', v_job),
        jsonb_build_object('connection', to_jsonb(v_after), 'sync_job', v_job_after));
END
$$;

CREATE FUNCTION kruxt_admin.mark_reauth_required(
    p_idempotency_key text, p_connection_id text)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    c_function constant text := 'mark_reauth_required';
    v_args jsonb := jsonb_build_object('connection_id', p_connection_id);
    v_result jsonb;
    v_conn integration_connections;
    v_after integration_connections;
BEGIN
    v_result := kruxt_admin_private.begin_change(p_idempotency_key, c_function, v_args);
    IF v_result IS NOT NULL THEN
        RETURN v_result;
    END IF;
    SELECT * INTO v_conn FROM integration_connections WHERE id = p_connection_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'integration connection % not found', p_connection_id
            USING ERRCODE = 'P0002', TABLE = 'integration_connections';
    END IF;
    IF v_conn.status = 'disconnected' THEN
        RAISE EXCEPTION 'integration connection % is disconnected; the user has to connect '
                        '% again', p_connection_id, v_conn.provider
            USING ERRCODE = 'P0001';
    END IF;
    UPDATE integration_connections SET reauth_required = true, status = 'reauth_required'
    WHERE id = v_conn.id
    RETURNING * INTO v_after;
    RETURN kruxt_admin_private.record_change(
        p_idempotency_key, c_function, v_args,
        jsonb_build_object('connection', to_jsonb(v_conn)),
        jsonb_build_object('connection', to_jsonb(v_after)));
END
$$;

CREATE FUNCTION kruxt_admin.clear_reauth_required(p_idempotency_key text, p_original_key text)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    c_function constant text := 'clear_reauth_required';
    v_result jsonb;
    v_orig kruxt_admin.applied_changes;
    v_prev integration_connections;
    v_conn integration_connections;
    v_after integration_connections;
BEGIN
    v_result := kruxt_admin_private.begin_change(
        p_idempotency_key, c_function, jsonb_build_object('original_key', p_original_key));
    IF v_result IS NOT NULL THEN
        RETURN v_result;
    END IF;
    v_orig := kruxt_admin_private.original_change(p_original_key, 'mark_reauth_required');
    IF v_orig.idempotency_key IS NULL OR v_orig.compensated_at IS NOT NULL THEN
        RETURN kruxt_admin_private.noop(p_original_key, v_orig);
    END IF;
    v_prev := jsonb_populate_record(NULL::kruxt_app.integration_connections,
                                    v_orig.before->'connection');
    SELECT * INTO v_conn FROM integration_connections WHERE id = v_prev.id FOR UPDATE;
    UPDATE integration_connections
    SET reauth_required = v_prev.reauth_required, status = v_prev.status
    WHERE id = v_prev.id
    RETURNING * INTO v_after;
    RETURN kruxt_admin_private.record_compensation(
        p_idempotency_key, c_function, p_original_key,
        jsonb_build_object('connection', to_jsonb(v_conn)),
        jsonb_build_object('connection', to_jsonb(v_after)));
END
$$;

-- ---------------------------------------------------------------------------------------
-- billing_invoice: resend an invoice; restore billing access (revoke it again)
-- ---------------------------------------------------------------------------------------

-- No compensation: a delivery request only queues another mail of an issued invoice.
CREATE FUNCTION kruxt_admin.resend_invoice(p_idempotency_key text, p_invoice_id text)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    c_function constant text := 'resend_invoice';
    v_args jsonb := jsonb_build_object('invoice_id', p_invoice_id);
    v_result jsonb;
    v_invoice invoices;
    v_delivery invoice_deliveries;
BEGIN
    v_result := kruxt_admin_private.begin_change(p_idempotency_key, c_function, v_args);
    IF v_result IS NOT NULL THEN
        RETURN v_result;
    END IF;
    SELECT * INTO v_invoice FROM invoices WHERE id = p_invoice_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'invoice % not found', p_invoice_id
            USING ERRCODE = 'P0002', TABLE = 'invoices';
    END IF;
    IF v_invoice.status IN ('draft', 'void') THEN
        RAISE EXCEPTION 'invoice % is %; only issued invoices can be resent',
            v_invoice.number, v_invoice.status
            USING ERRCODE = 'P0001';
    END IF;
    INSERT INTO invoice_deliveries (invoice_id) VALUES (v_invoice.id)
    RETURNING * INTO v_delivery;
    RETURN kruxt_admin_private.record_change(
        p_idempotency_key, c_function, v_args,
        jsonb_build_object('invoice', to_jsonb(v_invoice)),
        jsonb_build_object('invoice', to_jsonb(v_invoice), 'delivery', to_jsonb(v_delivery)));
END
$$;

CREATE FUNCTION kruxt_admin.restore_billing_access(p_idempotency_key text, p_user_id text)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    c_function constant text := 'restore_billing_access';
    v_args jsonb := jsonb_build_object('user_id', p_user_id);
    v_result jsonb;
    v_before jsonb;
    v_after billing_access;
BEGIN
    v_result := kruxt_admin_private.begin_change(p_idempotency_key, c_function, v_args);
    IF v_result IS NOT NULL THEN
        RETURN v_result;
    END IF;
    PERFORM 1 FROM users WHERE id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'user % not found', p_user_id
            USING ERRCODE = 'P0002', TABLE = 'users';
    END IF;
    IF NOT coalesce((SELECT enabled FROM feature_flags WHERE name = 'billing_live'), false) THEN
        RAISE EXCEPTION 'billing is not live (feature flag billing_live is off): billing access '
                        'of user % cannot be restored by automation', p_user_id
            USING ERRCODE = 'P0001';
    END IF;
    SELECT to_jsonb(b) INTO v_before FROM billing_access b WHERE b.user_id = p_user_id
    FOR UPDATE;
    INSERT INTO billing_access (user_id, enabled, updated_at) VALUES (p_user_id, true, now())
    ON CONFLICT (user_id) DO UPDATE SET enabled = true, updated_at = now()
    RETURNING * INTO v_after;
    RETURN kruxt_admin_private.record_change(
        p_idempotency_key, c_function, v_args,
        jsonb_build_object('user_id', p_user_id, 'billing_access', v_before),
        jsonb_build_object('user_id', p_user_id, 'billing_access', to_jsonb(v_after)));
END
$$;

-- Undo: the previous billing access row exactly (none at all when there was none).
CREATE FUNCTION kruxt_admin.revoke_billing_access(p_idempotency_key text, p_original_key text)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    c_function constant text := 'revoke_billing_access';
    v_result jsonb;
    v_orig kruxt_admin.applied_changes;
    v_user_id text;
    v_prev billing_access;
    v_current jsonb;
    v_after jsonb;
BEGIN
    v_result := kruxt_admin_private.begin_change(
        p_idempotency_key, c_function, jsonb_build_object('original_key', p_original_key));
    IF v_result IS NOT NULL THEN
        RETURN v_result;
    END IF;
    v_orig := kruxt_admin_private.original_change(p_original_key, 'restore_billing_access');
    IF v_orig.idempotency_key IS NULL OR v_orig.compensated_at IS NOT NULL THEN
        RETURN kruxt_admin_private.noop(p_original_key, v_orig);
    END IF;
    v_user_id := v_orig.args->>'user_id';
    SELECT to_jsonb(b) INTO v_current FROM billing_access b WHERE b.user_id = v_user_id
    FOR UPDATE;
    IF jsonb_typeof(v_orig.before->'billing_access') = 'object' THEN
        v_prev := jsonb_populate_record(NULL::kruxt_app.billing_access,
                                        v_orig.before->'billing_access');
        INSERT INTO billing_access (user_id, enabled, updated_at)
        VALUES (v_user_id, v_prev.enabled, v_prev.updated_at)
        ON CONFLICT (user_id) DO UPDATE
        SET enabled = excluded.enabled, updated_at = excluded.updated_at;
    ELSE
        DELETE FROM billing_access WHERE user_id = v_user_id;
    END IF;
    SELECT to_jsonb(b) INTO v_after FROM billing_access b WHERE b.user_id = v_user_id;
    RETURN kruxt_admin_private.record_compensation(
        p_idempotency_key, c_function, p_original_key,
        jsonb_build_object('user_id', v_user_id, 'billing_access', v_current),
        jsonb_build_object('user_id', v_user_id, 'billing_access', v_after));
END
$$;
