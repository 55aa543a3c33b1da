-- Who may call the API and which agents may stream: API tokens and console sessions (stored as SHA-256 of the
-- secret, never the secret), enrollment tokens (single use, expiring, bound to an agent id), the certificates the
-- collector's CA issued (the denylist is the revoked ones), and retired agents.

CREATE TABLE api_tokens (
    id {{id}},
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at DOUBLE PRECISION NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    expires_at DOUBLE PRECISION NOT NULL,
    revoked_at DOUBLE PRECISION
);
CREATE UNIQUE INDEX api_tokens_one_active_name ON api_tokens (name) WHERE revoked_at IS NULL;

CREATE TABLE sessions (
    session_hash TEXT PRIMARY KEY,
    token_id BIGINT NOT NULL REFERENCES api_tokens (id),
    csrf TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE enrollments (
    token_hash TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    expires_at DOUBLE PRECISION NOT NULL,
    used_at DOUBLE PRECISION
);

CREATE TABLE certificates (
    serial TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    issued_at DOUBLE PRECISION NOT NULL,
    not_after DOUBLE PRECISION NOT NULL,
    how TEXT NOT NULL,
    revoked_at DOUBLE PRECISION,
    revoke_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX certificates_agent ON certificates (agent_id);

ALTER TABLE agents ADD COLUMN retired_at DOUBLE PRECISION;
ALTER TABLE agents ADD COLUMN retire_reason TEXT NOT NULL DEFAULT '';
