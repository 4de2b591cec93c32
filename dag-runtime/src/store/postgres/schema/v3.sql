-- Schema version 3: map nodes in shared runs. A map node's items are rows of
-- `typedag_nodes` too, after the graph's nodes: `parent` is the map node's position,
-- `item` the item's position in its list, `key` the digest of its bytes. They read the
-- map node's inputs, and the map node waits for them: once expanded (`items` says into
-- how many items), it is `Waiting` on every item not done, and the last one to end
-- readies it again, for whoever claims it to gather the items' outputs.
ALTER TABLE typedag_nodes
    ADD COLUMN parent integer,
    ADD COLUMN item   integer,
    ADD COLUMN key    bytea,
    ADD COLUMN items  integer;
CREATE INDEX typedag_nodes_items ON typedag_nodes (run, parent, item)
    WHERE parent IS NOT NULL;
-- Expands claimed map node `p_idx` into one row per item, numbered after every row of the
-- run (under the run's lock, so that two expansions take turns), if the claim
-- (`p_token`) still holds. An item with a digest is done already (found in the store;
-- its bytes, when given, are stored here). The map node then waits for the others; with
-- none left it stays claimed, for the caller to gather. Returns, if the claim held, the
-- items left to run, as their rows' positions.
CREATE FUNCTION typedag_expand(
    p_run text, p_idx integer, p_token bigint,
    p_label text[], p_key bytea[], p_digest bytea[], p_outcome bytea[], p_bytes bytea[],
    p_origin text,
    OUT held boolean, OUT readied integer[]
) LANGUAGE plpgsql AS $fn$
DECLARE
    now_state smallint;
    now_token bigint;
    now_items integer;
    base integer;
    total integer := coalesce(array_length(p_label, 1), 0);
BEGIN
    held := false;
    readied := '{}';
    SELECT n.state, n.token, n.items INTO now_state, now_token, now_items FROM typedag_nodes n
    WHERE n.run = p_run AND n.idx = p_idx FOR UPDATE;
    -- Expanded already: a retried call whose first went through adds nothing.
    IF now_token IS DISTINCT FROM p_token OR now_state <> {Claimed}
       OR now_items IS NOT NULL THEN
        RETURN;
    END IF;
    held := true;
    PERFORM 1 FROM typedag_runs WHERE run = p_run FOR UPDATE;
    SELECT max(idx) + 1 INTO base FROM typedag_nodes WHERE run = p_run;
    INSERT INTO typedag_outputs (digest, bytes)
    SELECT t.d, t.b FROM unnest(p_digest, p_bytes) AS t(d, b) WHERE t.b IS NOT NULL
    ON CONFLICT (digest) DO NOTHING;
    INSERT INTO typedag_nodes
        (run, idx, node, priority, inputs, waiting, state, digest, outcome, parent, item, key)
    SELECT p_run, base + t.k::integer - 1, t.label, m.priority, m.inputs, 0,
           CASE WHEN t.d IS NULL THEN {Ready} ELSE {Done} END, t.d, t.o,
           p_idx, t.k::integer - 1, t.key
    FROM unnest(p_label, p_key, p_digest, p_outcome) WITH ORDINALITY AS t(label, key, d, o, k),
         typedag_nodes m
    WHERE m.run = p_run AND m.idx = p_idx;
    readied := ARRAY(SELECT base + t.k::integer - 1
                     FROM unnest(p_digest) WITH ORDINALITY AS t(d, k)
                     WHERE t.d IS NULL ORDER BY t.k);
    IF cardinality(readied) > 0 THEN
        UPDATE typedag_nodes
        SET items = total, state = {Waiting}, waiting = cardinality(readied),
            owner = NULL, token = NULL, lease_until = NULL
        WHERE run = p_run AND idx = p_idx;
        PERFORM pg_notify('typedag', p_run || ' ' || p_origin);
    ELSE
        UPDATE typedag_nodes SET items = total WHERE run = p_run AND idx = p_idx;
    END IF;
END
$fn$;
