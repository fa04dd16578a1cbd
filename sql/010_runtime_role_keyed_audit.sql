-- Two database roles (DESIGN.md, "Trust boundaries") and a keyed audit chain.
--
-- Migrations run as the owner of every support table (the role running this file). The API
-- and the workers connect as `kruxt_runtime`, which owns nothing: it reads and writes the
-- ordinary tables, and may only INSERT into and SELECT from the audit log. Without
-- ownership it cannot ALTER the table, disable its triggers, TRUNCATE it, or UPDATE/DELETE
-- its rows.
--
-- Deployments create the role with LOGIN and a password before migrating (docker-compose's
-- init script, `kruxt dev`); when it is missing it is created here without LOGIN, which needs
-- CREATEROLE.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'kruxt_runtime') THEN
        CREATE ROLE kruxt_runtime NOLOGIN;
    END IF;
END
$$;

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO kruxt_runtime;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO kruxt_runtime;
REVOKE UPDATE, DELETE ON support_audit_log FROM kruxt_runtime;
REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM kruxt_runtime;

-- Tables and sequences later migrations create (as this same owner) are granted too;
-- tests/test_migrations.py checks every table's grants.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO kruxt_runtime;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO kruxt_runtime;

-- The keyed chain: hash = HMAC-SHA256(key, prev_hash || canonical row), computed by kruxt
-- (kruxt/adapters/postgres/audit.py) with a key the database never sees; key_id names the
-- key so keys can rotate. Rows written before this migration keep key_id NULL and the plain
-- sha256 of 002; `kruxt audit verify` accepts them only before the first keyed row.
ALTER TABLE support_audit_log ADD COLUMN key_id text;

-- The trigger can no longer compute the hash (it has no key). It still serializes writers on
-- the same lock the writer took, and refuses a row that does not extend the current head:
-- concurrent writers keep producing one chain, and nothing slips in beside it.
CREATE OR REPLACE FUNCTION support_audit_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    head_id bigint;
    head_hash text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('support_audit_log'));
    IF NEW.key_id IS NULL OR NEW.hash !~ '^[0-9a-f]{64}$' THEN
        RAISE EXCEPTION 'support_audit_log: entries carry a keyed hash (append them with kruxt)'
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT id, hash INTO head_id, head_hash FROM support_audit_log ORDER BY id DESC LIMIT 1;
    IF NEW.prev_hash IS DISTINCT FROM coalesce(head_hash, repeat('0', 64))
       OR NEW.id <= coalesce(head_id, 0) THEN
        RAISE EXCEPTION 'support_audit_log: the entry does not extend the chain head (row %)',
            coalesce(head_id, 0)
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
