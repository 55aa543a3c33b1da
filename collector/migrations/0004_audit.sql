-- The audit trail: every human action, append-only, each entry chained to the one before by its hash
-- (collector/audit.py). Written in the same transaction as the change it records.

CREATE TABLE audit (
    id {{id}},
    at DOUBLE PRECISION NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    via TEXT NOT NULL,
    remote TEXT NOT NULL DEFAULT '',
    action TEXT NOT NULL,
    object TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '{}',
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (at);
