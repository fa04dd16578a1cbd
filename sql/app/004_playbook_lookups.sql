-- Read-only lookups a playbook needs to find its targets from the account id alone.
--
-- The diagnose_<playbook> functions of 002 take the entity a ticket is about (a post, a
-- class); a ticket names only the account. These functions list the account's candidates:
-- its hidden posts, and the upcoming classes it is booked or waitlisted in. They change
-- nothing. Same conventions as 002: SECURITY DEFINER, a pinned search_path, SQLSTATE P0002
-- for an unknown user; EXECUTE for the support worker only (003's note: a function added
-- later must have EXECUTE revoked from PUBLIC explicitly).

CREATE FUNCTION kruxt_admin.user_hidden_posts(p_user_id text)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    v_user users := kruxt_admin_private.require_user(p_user_id);
BEGIN
    RETURN jsonb_build_object(
        'user_id', v_user.id,
        'posts', (
            SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'id', p.id, 'visibility', p.visibility,
                       'hidden_reason', p.hidden_reason, 'created_at', p.created_at,
                       'updated_at', p.updated_at)
                       ORDER BY p.updated_at DESC, p.id), '[]'::jsonb)
            FROM (SELECT * FROM feed_posts
                  WHERE user_id = v_user.id AND visibility = 'hidden'
                  ORDER BY updated_at DESC, id
                  LIMIT 20) p)
    );
END
$$;

CREATE FUNCTION kruxt_admin.user_class_bookings(p_user_id text)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, kruxt_app, kruxt_admin, pg_temp
AS $$
DECLARE
    v_user users := kruxt_admin_private.require_user(p_user_id);
BEGIN
    RETURN jsonb_build_object(
        'user_id', v_user.id,
        'bookings', (
            SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'booking_id', b.id, 'class_id', b.class_id, 'title', b.title,
                       'starts_at', b.starts_at, 'status', b.status,
                       'waitlist_position', b.waitlist_position)
                       ORDER BY b.starts_at, b.class_id, b.id), '[]'::jsonb)
            FROM (SELECT cb.id, cb.class_id, c.title, c.starts_at, cb.status,
                         cb.waitlist_position
                  FROM class_bookings cb JOIN classes c ON c.id = cb.class_id
                  WHERE cb.user_id = v_user.id AND cb.status IN ('booked', 'waitlisted')
                    AND c.starts_at > now()
                  ORDER BY c.starts_at, cb.class_id, cb.id
                  LIMIT 20) b)
    );
END
$$;

REVOKE EXECUTE ON FUNCTION kruxt_admin.user_hidden_posts(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION kruxt_admin.user_class_bookings(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kruxt_admin.user_hidden_posts(text) TO kruxt_support_worker;
GRANT EXECUTE ON FUNCTION kruxt_admin.user_class_bookings(text) TO kruxt_support_worker;
