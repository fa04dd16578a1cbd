-- Demo data for the reference KRUXT app schema: one user per situation a playbook fixes.
-- Not a migration: `kruxt dev` and the tests load it after sql/app/; every insert is
-- ON CONFLICT DO NOTHING, so loading it again changes nothing. Times are relative to the
-- first load.
--
-- | id                | situation                                                 | playbook               |
-- |-------------------|-----------------------------------------------------------|------------------------|
-- | u-locked          | locked for 30 min after 7 failed logins; 2 live sessions  | auth_login             |
-- | u-unverified      | signed up 2 days ago, email never verified                | auth_login             |
-- | u-workout-fail    | 2 submissions failed on server errors (replayable) and    | workout_log_submit     |
-- |                   | 1 with an invalid performed_at (not replayable)           |                        |
-- | u-post-author     | post p-hidden auto-hidden after a mistaken spam report    | feed_moderation        |
-- | u-reporter        | filed that report; blocks u-post-author (never changed)   | feed_moderation        |
-- | u-waitlist        | on the waitlist of c-hiit-0700: positions 5, 2, 2, 7      | class_booking_waitlist |
-- |                   | (gaps, a duplicate) while 2 of 5 seats are free           |                        |
-- | u-garmin          | Garmin token expired 3 days ago, 401 on every sync        | integration_sync       |
-- | u-apple-stale     | Apple Health anchor (cursor) stale, no sync for 6 days    | integration_sync       |
-- | u-export          | open data export request, due in 25 days                  | privacy_request_status |
-- | u-deletion        | account deletion request in progress, due in 18 days      | privacy_request_status |
-- | u-invoice-bounced | invoice KRX-2025-000142 bounced (mailbox full)            | billing_invoice        |
-- | u-gym-billing     | gym member whose billing access was revoked               | billing_invoice        |
-- | u-healthy         | healthy pro user: verified, Garmin syncing, invoice paid  | (none)                 |
-- | u-healthy-gym     | healthy gym member, booked into two classes               | (none)                 |
--
-- Other ids: post p-hidden (hidden) and p-visible; report pr-mistaken; classes c-hiit-0700
-- (broken waitlist) and c-yoga-1800 (healthy); connections conn-garmin-expired,
-- conn-apple-stale, conn-healthy-garmin; submissions ws-fail-timeout, ws-fail-serialize,
-- ws-fail-badtime, ws-ok; invoices inv-bounced, inv-void, inv-healthy.

INSERT INTO kruxt_app.users
    (id, email, name, plan, platform, email_verified, locked_until, failed_logins, created_at)
VALUES
    ('u-locked', 'lena.locked@example.com', 'Lena Locked', 'pro', 'ios', true,
     now() + interval '30 minutes', 7, now() - interval '400 days'),
    ('u-unverified', 'umar.unverified@example.com', 'Umar Unverified', 'free', 'android', false,
     NULL, 0, now() - interval '2 days'),
    ('u-workout-fail', 'wes.workouts@example.com', 'Wes Workouts', 'pro', 'ios', true,
     NULL, 0, now() - interval '200 days'),
    ('u-post-author', 'paula.poster@example.com', 'Paula Poster', 'free', 'web', true,
     NULL, 0, now() - interval '90 days'),
    ('u-reporter', 'rick.reporter@example.com', 'Rick Reporter', 'free', 'android', true,
     NULL, 0, now() - interval '60 days'),
    ('u-waitlist', 'wanda.waitlist@example.com', 'Wanda Waitlist', 'gym', 'ios', true,
     NULL, 0, now() - interval '120 days'),
    ('u-garmin', 'gary.garmin@example.com', 'Gary Garmin', 'pro', 'android', true,
     NULL, 0, now() - interval '300 days'),
    ('u-apple-stale', 'ada.apple@example.com', 'Ada Apple', 'pro', 'ios', true,
     NULL, 0, now() - interval '150 days'),
    ('u-export', 'eva.export@example.com', 'Eva Export', 'free', 'web', true,
     NULL, 0, now() - interval '500 days'),
    ('u-deletion', 'dan.deletion@example.com', 'Dan Deletion', 'free', 'android', true,
     NULL, 0, now() - interval '700 days'),
    ('u-invoice-bounced', 'ivan.invoice@example.com', 'Ivan Invoice', 'pro', 'web', true,
     NULL, 0, now() - interval '250 days'),
    ('u-gym-billing', 'gina.gym@example.com', 'Gina Gym', 'gym', 'ios', true,
     NULL, 0, now() - interval '180 days'),
    ('u-healthy', 'hana.healthy@example.com', 'Hana Healthy', 'pro', 'ios', true,
     NULL, 0, now() - interval '365 days'),
    ('u-healthy-gym', 'hugo.healthy@example.com', 'Hugo Healthy', 'gym', 'android', true,
     NULL, 1, now() - interval '100 days')
ON CONFLICT DO NOTHING;

INSERT INTO kruxt_app.sessions (id, user_id, device, created_at, revoked_at) VALUES
    ('s-locked-iphone', 'u-locked', 'iPhone 15 Pro, KRUXT 3.14.0', now() - interval '20 days', NULL),
    ('s-locked-web', 'u-locked', 'Safari 17 on macOS', now() - interval '3 days', NULL),
    ('s-locked-old', 'u-locked', 'iPhone 12, KRUXT 3.9.2', now() - interval '200 days',
     now() - interval '150 days'),
    ('s-healthy-iphone', 'u-healthy', 'iPhone 14, KRUXT 3.14.0', now() - interval '9 days', NULL),
    ('s-workout-iphone', 'u-workout-fail', 'iPhone 13 mini, KRUXT 3.14.0',
     now() - interval '30 days', NULL)
ON CONFLICT DO NOTHING;

-- Workout submissions: two failed on server-side errors (the payload is fine), one failed on
-- a payload that cannot be replayed, one accepted with its workout.
INSERT INTO kruxt_app.workout_submissions
    (id, user_id, payload, status, error, submitted_at, workout_id)
VALUES
    ('ws-fail-timeout', 'u-workout-fail',
     jsonb_build_object(
         'client_workout_id', '5E0B1C7A-2F1D-4D7B-9B8E-1A2C3D4E5F60',
         'title', 'Push Day A',
         'performed_at', now() - interval '2 days 3 hours',
         'duration_s', 3720,
         'app_version', '3.14.0',
         'exercises', jsonb_build_array(
             jsonb_build_object('name', 'Barbell Bench Press', 'sets', jsonb_build_array(
                 jsonb_build_object('reps', 8, 'weight_kg', 80),
                 jsonb_build_object('reps', 8, 'weight_kg', 80),
                 jsonb_build_object('reps', 6, 'weight_kg', 85))),
             jsonb_build_object('name', 'Overhead Press', 'sets', jsonb_build_array(
                 jsonb_build_object('reps', 10, 'weight_kg', 40),
                 jsonb_build_object('reps', 9, 'weight_kg', 40))),
             jsonb_build_object('name', 'Dips', 'sets', jsonb_build_array(
                 jsonb_build_object('reps', 12, 'weight_kg', 0),
                 jsonb_build_object('reps', 10, 'weight_kg', 0))))),
     'failed', '504 Gateway Timeout: workout-service did not answer within 10s',
     now() - interval '2 days 2 hours', NULL),
    ('ws-fail-serialize', 'u-workout-fail',
     jsonb_build_object(
         'client_workout_id', '9A8B7C6D-1E2F-4A3B-8C7D-6E5F4A3B2C1D',
         'title', 'Easy 5k',
         'performed_at', now() - interval '1 day 5 hours',
         'duration_s', 1680,
         'app_version', '3.14.0',
         'exercises', jsonb_build_array(
             jsonb_build_object('name', 'Outdoor Run', 'distance_m', 5020, 'avg_hr', 148))),
     'failed', '500 Internal Server Error: could not serialize access due to concurrent update',
     now() - interval '1 day 4 hours', NULL),
    ('ws-fail-badtime', 'u-workout-fail',
     jsonb_build_object(
         'client_workout_id', '0F1E2D3C-4B5A-4968-8776-655443322110',
         'title', 'Leg Day',
         'performed_at', '31/02/2025 07:00',
         'duration_s', 4100,
         'app_version', '3.13.1',
         'exercises', jsonb_build_array(
             jsonb_build_object('name', 'Back Squat', 'sets', jsonb_build_array(
                 jsonb_build_object('reps', 5, 'weight_kg', 120))))),
     'failed', '400 Bad Request: performed_at is not a valid timestamp',
     now() - interval '3 days', NULL),
    ('ws-ok', 'u-workout-fail',
     jsonb_build_object(
         'client_workout_id', '11111111-2222-4333-8444-555555555555',
         'title', 'Pull Day B',
         'performed_at', now() - interval '4 days',
         'duration_s', 3300,
         'app_version', '3.14.0',
         'exercises', jsonb_build_array(
             jsonb_build_object('name', 'Deadlift', 'sets', jsonb_build_array(
                 jsonb_build_object('reps', 5, 'weight_kg', 140))))),
     'accepted', NULL, now() - interval '4 days', NULL)
ON CONFLICT DO NOTHING;

INSERT INTO kruxt_app.workouts (id, user_id, submission_id, title, performed_at, data)
SELECT 'w-ok', s.user_id, s.id, s.payload->>'title', (s.payload->>'performed_at')::timestamptz,
       s.payload
FROM kruxt_app.workout_submissions s WHERE s.id = 'ws-ok'
ON CONFLICT DO NOTHING;

UPDATE kruxt_app.workout_submissions SET workout_id = 'w-ok'
WHERE id = 'ws-ok' AND workout_id IS NULL;

-- Feed: a post auto-hidden after one mistaken spam report; its reporter blocks its author.
INSERT INTO kruxt_app.feed_posts
    (id, user_id, body, visibility, hidden_reason, created_at, updated_at)
VALUES
    ('p-hidden', 'u-post-author',
     'Finally hit a 140 kg deadlift PR this morning! Thanks @hana for spotting me.',
     'hidden', 'auto-hidden: reported as spam', now() - interval '26 hours',
     now() - interval '25 hours'),
    ('p-visible', 'u-healthy', 'Rest day. Mobility and a long walk.', 'visible', NULL,
     now() - interval '3 hours', now() - interval '3 hours')
ON CONFLICT DO NOTHING;

INSERT INTO kruxt_app.post_reports (id, post_id, reporter_id, reason, created_at, status) VALUES
    ('pr-mistaken', 'p-hidden', 'u-reporter', 'spam', now() - interval '25 hours 10 minutes',
     'upheld')
ON CONFLICT DO NOTHING;

INSERT INTO kruxt_app.moderation_actions (id, post_id, action, actor, reason, created_at) VALUES
    ('ma-autohide', 'p-hidden', 'hide', 'automod', 'report threshold reached (1 spam report)',
     now() - interval '25 hours')
ON CONFLICT DO NOTHING;

INSERT INTO kruxt_app.user_blocks (blocker_id, blocked_id, created_at) VALUES
    ('u-reporter', 'u-post-author', now() - interval '25 hours 5 minutes')
ON CONFLICT DO NOTHING;

-- Classes: c-hiit-0700 has 5 seats, 3 booked, and a waitlist numbered 5, 2, 2, 7 in sign-up
-- order (gaps and a duplicate); a cancelled booking still carries a position.
INSERT INTO kruxt_app.classes (id, gym_id, title, starts_at, capacity) VALUES
    ('c-hiit-0700', 'g-downtown', 'HIIT 45', date_trunc('day', now()) + interval '2 days 7 hours',
     5),
    ('c-yoga-1800', 'g-downtown', 'Vinyasa Flow',
     date_trunc('day', now()) + interval '1 day 18 hours', 12)
ON CONFLICT DO NOTHING;

INSERT INTO kruxt_app.class_bookings
    (id, class_id, user_id, status, waitlist_position, created_at)
VALUES
    ('cb-hiit-healthy', 'c-hiit-0700', 'u-healthy', 'booked', NULL, now() - interval '5 days'),
    ('cb-hiit-healthy-gym', 'c-hiit-0700', 'u-healthy-gym', 'booked', NULL,
     now() - interval '4 days 20 hours'),
    ('cb-hiit-gym-billing', 'c-hiit-0700', 'u-gym-billing', 'booked', NULL,
     now() - interval '4 days 10 hours'),
    ('cb-hiit-export', 'c-hiit-0700', 'u-export', 'cancelled', 1,
     now() - interval '4 days'),
    ('cb-hiit-waitlist', 'c-hiit-0700', 'u-waitlist', 'waitlisted', 5,
     now() - interval '3 days'),
    ('cb-hiit-locked', 'c-hiit-0700', 'u-locked', 'waitlisted', 2,
     now() - interval '2 days 20 hours'),
    ('cb-hiit-apple', 'c-hiit-0700', 'u-apple-stale', 'waitlisted', 2,
     now() - interval '2 days'),
    ('cb-hiit-garmin', 'c-hiit-0700', 'u-garmin', 'waitlisted', 7,
     now() - interval '1 day'),
    ('cb-yoga-healthy-gym', 'c-yoga-1800', 'u-healthy-gym', 'booked', NULL,
     now() - interval '2 days')
ON CONFLICT DO NOTHING;

-- Integrations.
INSERT INTO kruxt_app.integration_connections
    (id, user_id, provider, status, token_expires_at, last_sync_at, last_error, sync_cursor,
     reauth_required)
VALUES
    ('conn-garmin-expired', 'u-garmin', 'garmin', 'connected', now() - interval '3 days',
     now() - interval '3 days 2 hours',
     'garmin: 401 Unauthorized (access token expired); token refresh failed: invalid_grant',
     'garmin:activities:after=1718265600', false),
    ('conn-apple-stale', 'u-apple-stale', 'apple_health', 'connected', NULL,
     now() - interval '6 days',
     'HealthKit: anchor rejected (HKErrorInvalidArgument): the stored query anchor is stale',
     'hk-anchor:v2:9f2c4e1a7b3d', false),
    ('conn-healthy-garmin', 'u-healthy', 'garmin', 'connected', now() + interval '30 days',
     now() - interval '1 hour', NULL, 'garmin:activities:after=1719900000', false)
ON CONFLICT DO NOTHING;

INSERT INTO kruxt_app.sync_jobs (id, connection_id, requested_at, status) VALUES
    ('sj-apple-failed', 'conn-apple-stale', now() - interval '6 days', 'failed'),
    ('sj-garmin-failed', 'conn-garmin-expired', now() - interval '3 days', 'failed'),
    ('sj-healthy-ok', 'conn-healthy-garmin', now() - interval '1 hour', 'succeeded')
ON CONFLICT DO NOTHING;

-- Privacy requests (read-only for automation).
INSERT INTO kruxt_app.privacy_requests (id, user_id, kind, status, requested_at, due_at) VALUES
    ('pr-export', 'u-export', 'export', 'received', now() - interval '5 days',
     now() + interval '25 days'),
    ('pr-deletion', 'u-deletion', 'deletion', 'in_progress', now() - interval '12 days',
     now() + interval '18 days')
ON CONFLICT DO NOTHING;

-- Billing.
INSERT INTO kruxt_app.invoices
    (id, user_id, number, amount_cents, currency, status, issued_at, delivery_status,
     delivered_at)
VALUES
    ('inv-bounced', 'u-invoice-bounced', 'KRX-2025-000142', 999, 'EUR', 'open',
     now() - interval '4 days', 'bounced', NULL),
    ('inv-void', 'u-invoice-bounced', 'KRX-2025-000120', 999, 'EUR', 'void',
     now() - interval '34 days', 'delivered', now() - interval '34 days'),
    ('inv-healthy', 'u-healthy', 'KRX-2025-000143', 999, 'EUR', 'paid',
     now() - interval '4 days', 'delivered', now() - interval '4 days')
ON CONFLICT DO NOTHING;

INSERT INTO kruxt_app.invoice_deliveries (id, invoice_id, requested_at) VALUES
    ('id-bounced-1', 'inv-bounced', now() - interval '4 days'),
    ('id-healthy-1', 'inv-healthy', now() - interval '4 days')
ON CONFLICT DO NOTHING;

INSERT INTO kruxt_app.billing_access (user_id, enabled, updated_at) VALUES
    ('u-gym-billing', false, now() - interval '2 days'),
    ('u-healthy-gym', true, now() - interval '100 days')
ON CONFLICT DO NOTHING;
