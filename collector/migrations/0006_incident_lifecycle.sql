-- Incidents to the maintenance contract: the lifecycle open -> acknowledged -> resolved -> closed, deadlines and
-- their breaches, dependencies (parent), silences, flapping, escalation, root-cause analysis and a timeline; the
-- transactional outbox of notifications with every delivery attempt; checks' parent and for_s.

ALTER TABLE checks ADD COLUMN parent TEXT NOT NULL DEFAULT '';
ALTER TABLE checks ADD COLUMN for_s INTEGER NOT NULL DEFAULT 0;

ALTER TABLE incidents ADD COLUMN host TEXT NOT NULL DEFAULT '';
ALTER TABLE incidents ADD COLUMN runbook TEXT NOT NULL DEFAULT '';
ALTER TABLE incidents ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
ALTER TABLE incidents ADD COLUMN resolved_by TEXT;
ALTER TABLE incidents ADD COLUMN closed_at DOUBLE PRECISION;
ALTER TABLE incidents ADD COLUMN closed_by TEXT;
ALTER TABLE incidents ADD COLUMN parent_id BIGINT;
ALTER TABLE incidents ADD COLUMN suppressed TEXT NOT NULL DEFAULT '';
ALTER TABLE incidents ADD COLUMN silence_id BIGINT;
ALTER TABLE incidents ADD COLUMN flapping INTEGER NOT NULL DEFAULT 0;
ALTER TABLE incidents ADD COLUMN response_breached INTEGER NOT NULL DEFAULT 0;
ALTER TABLE incidents ADD COLUMN resolution_breached INTEGER NOT NULL DEFAULT 0;
ALTER TABLE incidents ADD COLUMN escalation_level INTEGER NOT NULL DEFAULT 0;
ALTER TABLE incidents ADD COLUMN escalated_at DOUBLE PRECISION;
ALTER TABLE incidents ADD COLUMN repeated_at DOUBLE PRECISION;
ALTER TABLE incidents ADD COLUMN reopened INTEGER NOT NULL DEFAULT 0;
ALTER TABLE incidents ADD COLUMN rca_solution TEXT;
ALTER TABLE incidents ADD COLUMN rca_by TEXT;
ALTER TABLE incidents ADD COLUMN rca_at DOUBLE PRECISION;

-- One active (open or acknowledged) incident per series.
DROP INDEX incidents_one_open_per_series;
CREATE UNIQUE INDEX incidents_one_active_per_series ON incidents (agent_id, check_id, target, key)
    WHERE status IN ('open', 'acknowledged');
CREATE INDEX incidents_series ON incidents (agent_id, check_id, target, key, resolved_at);
CREATE INDEX incidents_parent ON incidents (parent_id);

-- Every event of an incident, human or automatic: opened, acknowledged, assigned, note, resolved, reopened,
-- closed, rca, silenced, suppressed, flapping, escalated, breaches, notified...
CREATE TABLE incident_events (
    id {{id}},
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    at DOUBLE PRECISION NOT NULL,
    event TEXT NOT NULL,
    actor TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX incident_events_incident ON incident_events (incident_id, id);

CREATE TABLE silences (
    id {{id}},
    matchers TEXT NOT NULL,
    kind TEXT NOT NULL,
    starts_at DOUBLE PRECISION NOT NULL,
    ends_at DOUBLE PRECISION,
    days TEXT NOT NULL DEFAULT '',
    from_min INTEGER NOT NULL DEFAULT 0,
    to_min INTEGER NOT NULL DEFAULT 0,
    created_by TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    removed_at DOUBLE PRECISION,
    removed_by TEXT,
    removed_why TEXT
);

-- The transactional outbox: incident events to notify, written in the transaction of the incident change.
CREATE TABLE outbox (
    id {{id}},
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    event TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}',
    at DOUBLE PRECISION NOT NULL,
    not_before DOUBLE PRECISION NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    note TEXT NOT NULL DEFAULT '',
    done_at DOUBLE PRECISION
);
CREATE INDEX outbox_pending ON outbox (state, not_before);

-- One message to one receiver (several incident events grouped); queued -> sent or failed.
CREATE TABLE notifications (
    id {{id}},
    receiver TEXT NOT NULL,
    channel TEXT NOT NULL,
    group_key TEXT NOT NULL DEFAULT '',
    created_at DOUBLE PRECISION NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    sent_at DOUBLE PRECISION,
    last_error TEXT NOT NULL DEFAULT '',
    content TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX notifications_state ON notifications (state, next_attempt_at);
CREATE INDEX notifications_created ON notifications (created_at);

CREATE TABLE notification_items (
    notification_id BIGINT NOT NULL REFERENCES notifications (id),
    outbox_id BIGINT NOT NULL REFERENCES outbox (id),
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    event TEXT NOT NULL,
    PRIMARY KEY (notification_id, outbox_id)
);
CREATE INDEX notification_items_incident ON notification_items (incident_id);

CREATE TABLE notification_attempts (
    id {{id}},
    notification_id BIGINT NOT NULL REFERENCES notifications (id),
    at DOUBLE PRECISION NOT NULL,
    ok INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT '',
    response TEXT NOT NULL DEFAULT '',
    duration_ms DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE INDEX notification_attempts_notification ON notification_attempts (notification_id, id);
