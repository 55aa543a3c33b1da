"""Database patrols: targets, the read-only guard, connections per dialect and the sql.* check kinds.

Drivers (psycopg, PyMySQL, pyodbc, python-oracledb) are imported only when a target of theirs connects.
"""
