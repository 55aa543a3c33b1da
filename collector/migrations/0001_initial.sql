-- Agents, their check catalogue, series state, transitions, incidents and optional result history.
-- Portable SQL (SQLite and PostgreSQL); {{id}} is the dialect's auto-increment primary key.
-- Times are unix seconds (DOUBLE PRECISION); JSON is stored as TEXT.

CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    hostname TEXT NOT NULL DEFAULT '',
    labels TEXT NOT NULL DEFAULT '{}',
    roles TEXT NOT NULL DEFAULT '[]',
    version TEXT NOT NULL DEFAULT '',
    platform TEXT NOT NULL DEFAULT '',
    first_seen DOUBLE PRECISION NOT NULL,
    last_seen DOUBLE PRECISION NOT NULL,
    high_water_seq BIGINT NOT NULL DEFAULT 0,
    last_seq BIGINT NOT NULL DEFAULT 0,
    spool_depth BIGINT NOT NULL DEFAULT 0,
    dropped_total BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE checks (
    agent_id TEXT NOT NULL,
    check_id TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL DEFAULT '',
    system TEXT NOT NULL DEFAULT '',
    priority TEXT NOT NULL DEFAULT 'medium',
    raise_after INTEGER NOT NULL DEFAULT 1,
    clear_after INTEGER NOT NULL DEFAULT 1,
    interval_s INTEGER NOT NULL DEFAULT 0,
    schedule TEXT NOT NULL DEFAULT '',
    runbook TEXT NOT NULL DEFAULT '',
    labels TEXT NOT NULL DEFAULT '{}',
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (agent_id, check_id, target)
);

-- Latest status of every series as of its last transition: what a restart rebuilds from.
CREATE TABLE series (
    agent_id TEXT NOT NULL,
    check_id TEXT NOT NULL,
    target TEXT NOT NULL,
    key TEXT NOT NULL,
    status INTEGER NOT NULL,
    since DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (agent_id, check_id, target, key)
);

CREATE TABLE transitions (
    id {{id}},
    agent_id TEXT NOT NULL,
    check_id TEXT NOT NULL,
    target TEXT NOT NULL,
    key TEXT NOT NULL,
    seq BIGINT NOT NULL,
    from_status INTEGER,
    to_status INTEGER NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    summary TEXT NOT NULL DEFAULT '',
    value DOUBLE PRECISION
);
CREATE INDEX transitions_at ON transitions (at);
CREATE INDEX transitions_series ON transitions (agent_id, check_id, target, key, at);

CREATE TABLE incidents (
    id {{id}},
    kind TEXT NOT NULL DEFAULT 'check',
    agent_id TEXT NOT NULL,
    check_id TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    key TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    priority TEXT NOT NULL,
    system TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT '',
    opened_at DOUBLE PRECISION NOT NULL,
    resolved_at DOUBLE PRECISION,
    last_status INTEGER NOT NULL,
    last_change_at DOUBLE PRECISION NOT NULL,
    acknowledged_at DOUBLE PRECISION,
    acknowledged_by TEXT,
    assignee TEXT,
    response_due_at DOUBLE PRECISION,
    resolution_due_at DOUBLE PRECISION,
    root_cause TEXT
);
CREATE UNIQUE INDEX incidents_one_open_per_series ON incidents (agent_id, check_id, target, key) WHERE status = 'open';
CREATE INDEX incidents_status ON incidents (status, opened_at);

CREATE TABLE incident_notes (
    id {{id}},
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    author TEXT NOT NULL,
    note TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE results (
    agent_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    check_id TEXT NOT NULL,
    target TEXT NOT NULL,
    key TEXT NOT NULL,
    status INTEGER NOT NULL,
    value DOUBLE PRECISION,
    unit TEXT NOT NULL DEFAULT '',
    summary TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL DEFAULT '',
    started_at DOUBLE PRECISION NOT NULL,
    duration_ms DOUBLE PRECISION NOT NULL,
    metrics TEXT NOT NULL DEFAULT '{}',
    received_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (agent_id, seq)
);
CREATE INDEX results_received ON results (received_at);
