-- Why an incident was resolved: the recovering result's summary, "agent is sending again", or "check removed
-- from the agent's packs" when a reload took the check away.

ALTER TABLE incidents ADD COLUMN resolution TEXT NOT NULL DEFAULT ''
