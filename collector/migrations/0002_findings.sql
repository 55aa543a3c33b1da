-- DBA findings deduplicated by (agent, target, fingerprint), with their review history.

CREATE TABLE findings (
    id {{id}},
    agent_id TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    fingerprint TEXT NOT NULL,
    check_id TEXT NOT NULL,
    engine TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL DEFAULT '',
    object TEXT NOT NULL DEFAULT '',
    recommendation TEXT NOT NULL DEFAULT '',
    sql_text TEXT NOT NULL DEFAULT '',
    evidence TEXT NOT NULL DEFAULT '{}',
    attributes TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'new',
    first_seen DOUBLE PRECISION NOT NULL,
    last_seen DOUBLE PRECISION NOT NULL,
    seen_count BIGINT NOT NULL DEFAULT 1,
    reviewer TEXT,
    review_note TEXT,
    reviewed_at DOUBLE PRECISION,
    fixed_at DOUBLE PRECISION
);
CREATE UNIQUE INDEX findings_identity ON findings (agent_id, target, fingerprint);
CREATE INDEX findings_state ON findings (state, last_seen);

CREATE TABLE finding_events (
    id {{id}},
    finding_id BIGINT NOT NULL REFERENCES findings (id),
    at DOUBLE PRECISION NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    actor TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX finding_events_finding ON finding_events (finding_id, at);
