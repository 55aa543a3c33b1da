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
--
-- What it cannot do, and why (this script is the real boundary; Xunjian's guard and read-only transactions
-- are the layers above it, see docs/databases.md "Threat model"):
--   * read or write files on the server: it is not a superuser and gets neither pg_read_server_files,
--     pg_write_server_files nor pg_execute_server_program; pg_read_file(), lo_import(), COPY TO/FROM a file
--     are refused to it. (pg_monitor does let it list the WAL/log/archive-status directories by name.)
--   * signal other sessions: no pg_signal_backend. PostgreSQL lets ANY role cancel or terminate backends
--     of its OWN role, and take advisory locks, through functions every role (PUBLIC) may execute. Unless
--     you run this with -v lock_down_public=off, the block at the end revokes EXECUTE on those functions
--     from PUBLIC and grants it back to every role that exists now except the monitoring account (and to
--     pg_signal_backend for the signal functions), so nothing that works today breaks. A role created
--     later that needs them (schema-migration tools take advisory locks) needs an explicit grant:
--       GRANT EXECUTE ON FUNCTION pg_advisory_lock(bigint), pg_advisory_unlock(bigint) TO new_role;
--   * write anything: default_transaction_read_only, no ownership, no table privileges.

\set ON_ERROR_STOP on
\if :{?lock_down_public}
\else
\set lock_down_public on
\endif

SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'xunjian_mon') AS xj_create_role \gset
\if :xj_create_role
CREATE ROLE xunjian_mon LOGIN;
\endif

-- No superuser, no role or database creation, no replication (which would bypass read-only), and at most
-- five sessions (the agent keeps one per target).
ALTER ROLE xunjian_mon WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 5;
ALTER ROLE xunjian_mon PASSWORD :'mon_password';
-- Belt and braces: the agent starts every check in its own READ ONLY transaction with these bounds anyway.
ALTER ROLE xunjian_mon SET default_transaction_read_only = on;
ALTER ROLE xunjian_mon SET statement_timeout = '30s';
ALTER ROLE xunjian_mon SET lock_timeout = '2s';

-- Activity, locks, replication, archiver, pg_stat_statements of every user, settings: the pack's views.
GRANT pg_monitor TO xunjian_mon;
-- Connecting to the database the target names.
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

-- No signals to its own backends, no advisory locks (see the header). Existing roles keep both.
\if :lock_down_public
DO $lockdown$
DECLARE
    f regprocedure;
    public_may boolean;
    r name;
BEGIN
    FOR f, public_may IN
        SELECT p.oid::regprocedure,
               p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a
                                           WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')
        FROM pg_proc p
        WHERE p.pronamespace = 'pg_catalog'::regnamespace
          AND (p.proname IN ('pg_cancel_backend', 'pg_terminate_backend')
               OR p.proname LIKE 'pg\_advisory\_%' OR p.proname LIKE 'pg\_try\_advisory\_%')
    LOOP
        IF public_may THEN
            FOR r IN SELECT rolname FROM pg_roles
                     WHERE rolname <> 'xunjian_mon' AND NOT rolsuper
                       AND (rolname NOT LIKE 'pg\_%' OR (rolname = 'pg_signal_backend' AND f::text LIKE 'pg\_%backend%'))
            LOOP
                EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f, r);
            END LOOP;
            EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
        END IF;
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM xunjian_mon', f);
    END LOOP;
END
$lockdown$;
\endif
