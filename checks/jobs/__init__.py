"""Scheduled jobs: `job.window`, did a job succeed in its nightly window (SQL Server Agent, Oracle scheduler and
DBMS_JOB, pg_cron, or a vendor's job-log table)."""
