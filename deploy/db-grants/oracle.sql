-- Xunjian monitoring account for Oracle (least privilege, read-only).
-- Run as SYSDBA (or a DBA) in SQL*Plus / SQLcl:  sqlplus / as sysdba @oracle.sql
-- Multitenant (12c+): connect to the PDB that holds the application (the service agent.yaml points at),
-- e.g. ALTER SESSION SET CONTAINER = HISPDB; and create a local user there. DBA_ views seen from the CDB
-- root describe only the root.
--
-- The grants below are exactly the views that checks/packs/oracle.yaml reads (a unit test keeps the two in
-- step). V$ names are public synonyms of SYS.V_$ views, so the grants name V_$. Nothing here allows a write:
-- SELECT on views only, no ANY privileges, no EXECUTE.
-- Shortcut some sites prefer: GRANT SELECT_CATALOG_ROLE TO xunjian_mon; (broader: every V$ and DBA_ view,
-- still read-only). On 12.1.0.2+ you may replace SELECT by READ, which also refuses SELECT ... FOR UPDATE.
--
-- Deliberately NOT granted, and why (docs/databases.md, "Threat model"):
--   * ALTER SYSTEM / ALTER SESSION privileges beyond the default: no KILL SESSION, not even of its own
--     sessions; no parameter changes.
--   * EXECUTE on DBMS_LOCK, DBMS_PIPE, DBMS_ALERT, DBMS_SQL, DBMS_SCHEDULER, UTL_FILE, UTL_HTTP, UTL_TCP:
--     none is granted here. Some older databases still grant UTL_* to PUBLIC; the CIS benchmark's
--     REVOKE EXECUTE ON UTL_FILE/UTL_HTTP/UTL_TCP/UTL_SMTP FROM PUBLIC is the DBA's call for the whole
--     database, and Xunjian's allow-list never calls them.
--   * READ/WRITE on any DIRECTORY object: without one, BFILEs and UTL_FILE cannot reach server files.
--   * SELECT ANY TABLE / SELECT ANY DICTIONARY: too broad (SYS.USER$ holds password hashes).
-- V_$LOCK below is read by Xunjian itself after every check: a user lock (DBMS_LOCK) left held closes the
-- session (unsafe_session). Without it every check reports unsafe_session ("cannot verify the session").
--
-- Password: the script prompts for it. Oracle's DEFAULT profile expires passwords after 180 days; give the
-- account a profile that matches the hospital's password policy (等保) and rotate it in agent.yaml's
-- password_file, or the monitoring itself will stop with ORA-28001. oracle.users.password_expiry watches it.

CREATE USER xunjian_mon IDENTIFIED BY "&xunjian_mon_password";
-- Logging in, and nothing else at the system level.
GRANT CREATE SESSION TO xunjian_mon;

-- Instance, database role, parameters
GRANT SELECT ON SYS.V_$INSTANCE TO xunjian_mon;
GRANT SELECT ON SYS.V_$DATABASE TO xunjian_mon;
GRANT SELECT ON SYS.V_$PARAMETER TO xunjian_mon;
GRANT SELECT ON SYS.V_$RESOURCE_LIMIT TO xunjian_mon;
GRANT SELECT ON SYS.V_$THREAD TO xunjian_mon;

-- Space
GRANT SELECT ON SYS.DBA_TABLESPACE_USAGE_METRICS TO xunjian_mon;
GRANT SELECT ON SYS.DBA_TABLESPACES TO xunjian_mon;
GRANT SELECT ON SYS.DBA_TEMP_FREE_SPACE TO xunjian_mon;
GRANT SELECT ON SYS.V_$RECOVERY_FILE_DEST TO xunjian_mon;

-- Redo, archiving, backup, Data Guard
GRANT SELECT ON SYS.V_$LOG TO xunjian_mon;
GRANT SELECT ON SYS.V_$LOG_HISTORY TO xunjian_mon;
GRANT SELECT ON SYS.V_$ARCHIVE_DEST TO xunjian_mon;
GRANT SELECT ON SYS.V_$ARCHIVE_DEST_STATUS TO xunjian_mon;
GRANT SELECT ON SYS.V_$RMAN_BACKUP_JOB_DETAILS TO xunjian_mon;
GRANT SELECT ON SYS.V_$DATAGUARD_STATS TO xunjian_mon;
GRANT SELECT ON SYS.V_$DATABASE_BLOCK_CORRUPTION TO xunjian_mon;
-- Managed recovery on a standby: V$DATAGUARD_PROCESS on 12.2+, V$MANAGED_STANDBY before
GRANT SELECT ON SYS.V_$DATAGUARD_PROCESS TO xunjian_mon;
GRANT SELECT ON SYS.V_$MANAGED_STANDBY TO xunjian_mon;
-- ASM disk groups (the _STAT view reads the cached state: no disk discovery); the alert log's ORA- codes (12.2+)
GRANT SELECT ON SYS.V_$ASM_DISKGROUP_STAT TO xunjian_mon;
GRANT SELECT ON SYS.V_$DIAG_ALERT_EXT TO xunjian_mon;

-- Sessions, locks, memory, SQL
GRANT SELECT ON SYS.V_$SESSION TO xunjian_mon;
GRANT SELECT ON SYS.V_$LOCK TO xunjian_mon;
GRANT SELECT ON SYS.V_$SESSION_LONGOPS TO xunjian_mon;
GRANT SELECT ON SYS.V_$SGASTAT TO xunjian_mon;
GRANT SELECT ON SYS.V_$PGASTAT TO xunjian_mon;
GRANT SELECT ON SYS.V_$SQLSTATS TO xunjian_mon;
-- Open transactions (long and idle-in-transaction checks); instance parameters for the drift check
GRANT SELECT ON SYS.V_$TRANSACTION TO xunjian_mon;
GRANT SELECT ON SYS.V_$SYSTEM_PARAMETER TO xunjian_mon;

-- Dictionary: objects, indexes, statistics, users
GRANT SELECT ON SYS.DBA_OBJECTS TO xunjian_mon;
GRANT SELECT ON SYS.DBA_INDEXES TO xunjian_mon;
GRANT SELECT ON SYS.DBA_IND_PARTITIONS TO xunjian_mon;
GRANT SELECT ON SYS.DBA_IND_SUBPARTITIONS TO xunjian_mon;
GRANT SELECT ON SYS.DBA_TAB_STATISTICS TO xunjian_mon;
GRANT SELECT ON SYS.DBA_USERS TO xunjian_mon;
-- Who holds the DBA role or SYSDBA (names only; no password hashes); datafile sizes for the growth trend
GRANT SELECT ON SYS.DBA_ROLE_PRIVS TO xunjian_mon;
GRANT SELECT ON SYS.V_$PWFILE_USERS TO xunjian_mon;
GRANT SELECT ON SYS.DBA_DATA_FILES TO xunjian_mon;

-- Jobs
GRANT SELECT ON SYS.DBA_SCHEDULER_JOBS TO xunjian_mon;
GRANT SELECT ON SYS.DBA_SCHEDULER_JOB_RUN_DETAILS TO xunjian_mon;
GRANT SELECT ON SYS.DBA_JOBS TO xunjian_mon;
-- job.window (source oracle_scheduler): a run in progress, which the run details list only once it ends
GRANT SELECT ON SYS.DBA_SCHEDULER_RUNNING_JOBS TO xunjian_mon;
