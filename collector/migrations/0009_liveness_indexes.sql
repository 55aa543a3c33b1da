-- The lost-agent check asks the store only for what changed: agents last seen before the cut-off (an index on
-- last_seen) and the agents with an 'agent lost' incident open (an index on kind and status), instead of a
-- subquery over the incidents of every agent of the fleet.

CREATE INDEX agents_last_seen ON agents (last_seen);
CREATE INDEX incidents_kind_status ON incidents (kind, status);
