-- Each agent's spool carries a random incarnation id. A reinstalled agent (a new spool under the same identity)
-- starts its seqs again: its high-water mark restarts at 0 and stored history numbers its results from seq_base,
-- the seqs of the incarnations before it, so no two stored results of one agent share a seq.

ALTER TABLE agents ADD COLUMN incarnation TEXT NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN seq_base BIGINT NOT NULL DEFAULT 0;
