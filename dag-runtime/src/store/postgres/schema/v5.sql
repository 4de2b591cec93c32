-- Schema version 5: when each row of a shared run was last claimed, by the server's clock:
-- a map node's items, whichever processes ran them, tell by one clock the span of time
-- they ran over.
ALTER TABLE typedag_nodes ADD COLUMN claimed_at timestamptz;
