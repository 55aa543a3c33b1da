-- Least-privilege monitoring account for Xunjian's PostgreSQL patrol (checks/packs/postgres.yaml).
--
-- Run as a superuser, once per cluster, connected to the database the agent's target names:
--   psql -h HOST -U postgres -d DBNAME -v mon_password='...' -f deploy/db-grants/postgres.sql
-- Then in agent.yaml: user: xunjian_mon, password_env (or password_file), database: DBNAME.
-- Re-running it is safe (it only creates what is missing and re-applies grants).
--
-- What the account can do: read the statistics and activity views (pg_monitor = pg_read_all_settings +
-- pg_read_all_stats + pg_stat_scan_tables), see sequences' positions, and nothing else: it owns nothing,
-- cannot read table contents, and its sessions default to read-only.

\set ON_ERROR_STOP on

SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'xunjian_mon') AS xj_create_role \gset
\if :xj_create_role
CREATE ROLE xunjian_mon LOGIN;
\endif

ALTER ROLE xunjian_mon WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION CONNECTION LIMIT 5;
ALTER ROLE xunjian_mon PASSWORD :'mon_password';
-- Belt and braces: the agent sets these per session too.
ALTER ROLE xunjian_mon SET default_transaction_read_only = on;
ALTER ROLE xunjian_mon SET statement_timeout = '30s';
ALTER ROLE xunjian_mon SET lock_timeout = '2s';

-- Activity, locks, replication, archiver, pg_stat_statements of every user, settings.
GRANT pg_monitor TO xunjian_mon;
GRANT CONNECT ON DATABASE :"DBNAME" TO xunjian_mon;

-- pg.sequence_exhaustion: pg_sequences.last_value is NULL without SELECT (or USAGE) on the sequence.
-- SELECT on a sequence allows reading its position, not calling nextval().
DO $grant$
DECLARE
    s text;
BEGIN
    FOR s IN SELECT nspname FROM pg_namespace
             WHERE nspname NOT LIKE 'pg\_%' AND nspname <> 'information_schema'
    LOOP
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO xunjian_mon', s);
        EXECUTE format('GRANT SELECT ON ALL SEQUENCES IN SCHEMA %I TO xunjian_mon', s);
        -- Sequences the running role creates later in this schema.
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON SEQUENCES TO xunjian_mon', s);
    END LOOP;
END
$grant$;

-- pg.top_sql reads pg_stat_statements when the extension exists in this database; pg_monitor
-- (pg_read_all_stats) lets it see every user's statements. Installing the extension is the DBA's call:
--   shared_preload_libraries = 'pg_stat_statements' (restart), then CREATE EXTENSION pg_stat_statements;
