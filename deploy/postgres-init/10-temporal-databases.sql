-- Runs once, when the postgres volume is first initialised (docker-entrypoint-initdb.d), as
-- the superuser of docker-compose.yml's postgres service, connected to the app database.
-- Temporal gets its own login role and its two databases; the app database `kruxt` is made
-- by the image itself (POSTGRES_DB). The password comes from TEMPORAL_DB_PASSWORD.
\getenv temporal_password TEMPORAL_DB_PASSWORD

CREATE ROLE temporal LOGIN PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;

-- Temporal's SQL visibility schema (postgres12) needs btree_gin; create it as superuser so
-- the schema setup of the temporal service does not depend on extension privileges.
\connect temporal_visibility
CREATE EXTENSION IF NOT EXISTS btree_gin;
