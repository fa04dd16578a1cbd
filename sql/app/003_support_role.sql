-- The support worker's role: it may call the kruxt_admin functions and nothing else.
--
-- Creating the role needs CREATEROLE (or superuser) for the migration user; roles are
-- cluster-wide, so several app databases on one server share it.
--
-- kruxt_support_worker is NOLOGIN: grant it to the login role the worker connects as
-- (GRANT kruxt_support_worker TO <worker login>), or SET ROLE to it. It has USAGE on
-- kruxt_admin and EXECUTE on its functions; on kruxt_app it has nothing, not even USAGE on
-- the schema. The functions are SECURITY DEFINER and owned by the migration user, which is
-- what lets them read and change app data on the worker's behalf.
--
-- A later migration that adds a kruxt_admin function must REVOKE EXECUTE on it FROM PUBLIC
-- (PostgreSQL grants EXECUTE to PUBLIC on every new function, and per-schema default
-- privileges cannot take that away); the GRANT to the worker comes from the defaults below.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'kruxt_support_worker') THEN
        CREATE ROLE kruxt_support_worker NOLOGIN;
    END IF;
EXCEPTION
    -- Roles are cluster-wide: another database's migration may create it at the same moment.
    WHEN duplicate_object OR unique_violation THEN
        NULL;
END
$$;

-- kruxt_app: nothing for anyone but its owner.
REVOKE ALL ON SCHEMA kruxt_app FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA kruxt_app FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA kruxt_app FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA kruxt_app FROM PUBLIC;
REVOKE ALL ON SCHEMA kruxt_app FROM kruxt_support_worker;
REVOKE ALL ON ALL TABLES IN SCHEMA kruxt_app FROM kruxt_support_worker;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA kruxt_app FROM kruxt_support_worker;
ALTER DEFAULT PRIVILEGES IN SCHEMA kruxt_app REVOKE ALL ON TABLES FROM kruxt_support_worker;
ALTER DEFAULT PRIVILEGES IN SCHEMA kruxt_app REVOKE ALL ON SEQUENCES FROM kruxt_support_worker;

-- The internal helpers and the change log: nothing for anyone but their owner.
REVOKE ALL ON SCHEMA kruxt_admin_private FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA kruxt_admin_private FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA kruxt_admin FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA kruxt_admin FROM kruxt_support_worker;

-- kruxt_admin: the worker may call its functions, no one else.
REVOKE ALL ON SCHEMA kruxt_admin FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA kruxt_admin FROM PUBLIC;
GRANT USAGE ON SCHEMA kruxt_admin TO kruxt_support_worker;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA kruxt_admin TO kruxt_support_worker;
ALTER DEFAULT PRIVILEGES IN SCHEMA kruxt_admin GRANT EXECUTE ON FUNCTIONS TO kruxt_support_worker;
