-- Which review a finding belongs to: dba (tuning advice from sql.findings), or a reconciliation discrepancy
-- (migration, payment 单边账, insurance totals). Findings stored before this migration are DBA findings.

ALTER TABLE findings ADD COLUMN category TEXT NOT NULL DEFAULT 'dba';
CREATE INDEX findings_category ON findings (category, state, last_seen)
