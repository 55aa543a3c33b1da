-- Xunjian monitoring login for SQL Server (least privilege, read-only).
-- Run as a sysadmin with sqlcmd (for the :setvar / $(...) variables), e.g.
--   sqlcmd -S his-sql -E -i mssql.sql -v XUNJIAN_MON_PASSWORD="..." APP_DB="HISDB"
-- Exactly what checks/packs/mssql.yaml reads, and a unit test keeps the two in step:
--   * VIEW SERVER STATE: the DMVs (sys.dm_os_*, sys.dm_exec_*, sys.dm_db_*, sys.dm_io_*, sys.dm_hadr_*,
--     sys.dm_server_services). On SQL Server 2022+ the narrower VIEW SERVER PERFORMANCE STATE is granted
--     instead. If a check then reports UNKNOWN permission_denied on 2022 (sys.dm_server_services is the
--     candidate), grant VIEW SERVER STATE there too.
--   * VIEW ANY DEFINITION: metadata visibility for catalog views (sys.master_files, sys.availability_*,
--     sys.indexes, sys.stats, sys.objects, sys.sysindexes) and STATS_DATE() in the application databases.
--   * SELECT on the msdb job and backup history tables.
--   * A user without any role in each application database the pack connects to (per-database checks).
-- Deliberately NOT granted: db_datareader or SELECT on application tables (patient data), EXECUTE on
-- anything, SQLAgentReaderRole (it grants procedure execution), ALTER ANY CONNECTION (KILL of any session),
-- ADMINISTER BULK OPERATIONS (OPENROWSET(BULK ...) reads server files), CONTROL SERVER (sys.fn_get_audit_file).
-- Denied explicitly: sp_getapplock / sp_releaseapplock, which every user may otherwise run, in each database
-- the account has a user in: the account cannot take application locks (docs/databases.md, "Threat model").
-- VIEW SERVER STATE also lets sys.fn_xe_file_target_read_file read Extended Events files on the server;
-- Xunjian's allow-list never calls it, and on 2022+ the narrower VIEW SERVER PERFORMANCE STATE does not.
-- ApplicationIntent=ReadOnly in the agent's connection only routes to a readable secondary: the guard, the
-- per-check transaction that is always rolled back, and these grants are what keep the account read-only.

USE master;
GO
CREATE LOGIN xunjian_mon WITH PASSWORD = N'$(XUNJIAN_MON_PASSWORD)', CHECK_POLICY = ON, CHECK_EXPIRATION = OFF,
    DEFAULT_DATABASE = master;
GO
IF CAST(SERVERPROPERTY('ProductMajorVersion') AS int) >= 16
    EXEC (N'GRANT VIEW SERVER PERFORMANCE STATE TO xunjian_mon;');
ELSE
    EXEC (N'GRANT VIEW SERVER STATE TO xunjian_mon;');
GO
GRANT VIEW ANY DEFINITION TO xunjian_mon;
GO

-- msdb: SQL Agent jobs and backup history
USE msdb;
GO
CREATE USER xunjian_mon FOR LOGIN xunjian_mon;
GO
GRANT SELECT ON dbo.sysjobs TO xunjian_mon;
GRANT SELECT ON dbo.sysjobhistory TO xunjian_mon;
GRANT SELECT ON dbo.sysjobactivity TO xunjian_mon;
GRANT SELECT ON dbo.sysjobschedules TO xunjian_mon;
GRANT SELECT ON dbo.sysschedules TO xunjian_mon;
GRANT SELECT ON dbo.syssessions TO xunjian_mon;
GRANT SELECT ON dbo.syscategories TO xunjian_mon;
GRANT SELECT ON dbo.backupset TO xunjian_mon;
-- where each backup went (to NUL, to the data drive), and the pages SQL Server found damaged
GRANT SELECT ON dbo.backupmediafamily TO xunjian_mon;
GRANT SELECT ON dbo.suspect_pages TO xunjian_mon;
DENY EXECUTE ON sys.sp_getapplock TO xunjian_mon;
DENY EXECUTE ON sys.sp_releaseapplock TO xunjian_mon;
GO

-- Each application database the target connects to (repeat for every database you bind the pack to).
-- No role and no table permission: VIEW ANY DEFINITION and VIEW SERVER STATE cover the per-database checks.
USE [$(APP_DB)];
GO
CREATE USER xunjian_mon FOR LOGIN xunjian_mon;
GO
DENY EXECUTE ON sys.sp_getapplock TO xunjian_mon;
DENY EXECUTE ON sys.sp_releaseapplock TO xunjian_mon;
GO
