-- Least-privilege monitoring account for Xunjian's MySQL/MariaDB patrol (checks/packs/mysql.yaml).
--
-- Replace CHANGE_ME (and '%' with the agent's host if you can), then run as an administrator:
--   mysql -u root -p < deploy/db-grants/mysql.sql
-- Works on MySQL 5.7/8.x and MariaDB 10.3+; /*M!NNNNNN ... */ lines run only on MariaDB from that version.
-- Re-running it is safe.
--
-- Deliberately NOT granted, and why (docs/databases.md, "Threat model"):
--   * FILE: LOAD_FILE(), SELECT ... INTO OUTFILE/DUMPFILE and LOAD DATA INFILE read and write files on the
--     database host; without FILE the account can do none of them.
--   * SUPER / CONNECTION ADMIN: KILL of other users' threads, changing global settings.
--   * SELECT, INSERT, UPDATE, DELETE, EXECUTE on application schemas: no patient data, no stored routines.
--   * Anything on the mysql schema (mysql.user holds password hashes).
-- What MySQL/MariaDB cannot take away from any account: killing its OWN threads (KILL) and named locks
-- (GET_LOCK) need no privilege. Xunjian never sends KILL (not a query), GET_LOCK is not on its allow-list,
-- and after every check the session is verified with RELEASE_ALL_LOCKS() = 0 or closed.

CREATE USER IF NOT EXISTS 'xunjian_mon'@'%' IDENTIFIED BY 'CHANGE_ME';
-- At most five connections: the agent keeps one per target.
ALTER USER 'xunjian_mon'@'%' IDENTIFIED BY 'CHANGE_ME' WITH MAX_USER_CONNECTIONS 5;

-- PROCESS: every session in PROCESSLIST, INNODB_TRX and the InnoDB lock views.
-- REPLICATION CLIENT: SHOW SLAVE/REPLICA STATUS on MySQL (BINLOG MONITOR on MariaDB 10.5+).
GRANT PROCESS, REPLICATION CLIENT ON *.* TO 'xunjian_mon'@'%';
-- MariaDB 10.5.9+ split SHOW SLAVE STATUS out into SLAVE MONITOR.
/*M!100509 GRANT SLAVE MONITOR ON *.* TO 'xunjian_mon'@'%' */;

-- Statement digests, index I/O, data_lock_waits, global/session status (MySQL 5.7+), and the sys views.
GRANT SELECT ON performance_schema.* TO 'xunjian_mon'@'%';
GRANT SELECT, SHOW VIEW ON sys.* TO 'xunjian_mon'@'%';

-- information_schema.TABLES/STATISTICS/COLUMNS list only tables the account holds some privilege on.
-- REFERENCES makes table and index metadata (AUTO_INCREMENT, index columns) visible without any right to
-- read rows, so mysql.auto_increment_exhaustion and mysql.redundant_indexes see the application schemas.
-- Narrow it to the application databases (GRANT REFERENCES ON his.* ...) if you prefer.
GRANT REFERENCES ON *.* TO 'xunjian_mon'@'%';
