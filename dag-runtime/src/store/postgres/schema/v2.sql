-- Schema version 2: runs shared by several processes.
-- A node's state is written as its `RowState` name in braces, filled in with its number.
CREATE SEQUENCE typedag_tokens;
CREATE TABLE typedag_runs (
    run        text        PRIMARY KEY,
    graph      text        NOT NULL,
    shape      bytea       NOT NULL,
    stopping   boolean     NOT NULL DEFAULT false,
    started_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE typedag_nodes (
    run         text     NOT NULL REFERENCES typedag_runs ON DELETE CASCADE,
    idx         integer  NOT NULL,
    node        text     NOT NULL,
    priority    integer  NOT NULL,
    inputs      integer[] NOT NULL,
    waiting     integer  NOT NULL,
    state       smallint NOT NULL,
    owner       text,
    token       bigint,
    lease_until timestamptz,
    digest      bytea,
    outcome     bytea,
    PRIMARY KEY (run, idx)
);
CREATE INDEX typedag_nodes_ready ON typedag_nodes (run, priority DESC, idx)
    WHERE state = {Ready};
CREATE INDEX typedag_nodes_claimed ON typedag_nodes (run, lease_until)
    WHERE state = {Claimed};
CREATE TABLE typedag_inflight (
    fingerprint bytea       PRIMARY KEY,
    token       bigint      NOT NULL,
    owner       text        NOT NULL,
    lease_until timestamptz NOT NULL
);
-- Records the ends of claimed nodes in one call: each end whose claim still holds
-- (its token is the node's) is applied, with its record and output, its dependents
-- readied, the nodes it skips marked, its fingerprint let go. Returns, for each end,
-- whether its claim held, and the nodes it made ready. Ends come sorted by node, so
-- rows lock in one order.
CREATE FUNCTION typedag_complete(
    p_run text, p_graph text,
    p_idx integer[], p_token bigint[], p_state smallint[], p_digest bytea[],
    p_outcome bytea[], p_node text[], p_record bytea[], p_key bytea[], p_bytes bytea[],
    p_fp bytea[], p_stop boolean[],
    p_dep_of integer[], p_dep integer[],
    p_skip_of integer[], p_skip integer[], p_skip_outcome bytea[],
    p_origin text,
    OUT held boolean[], OUT readied integer[]
) LANGUAGE plpgsql AS $fn$
DECLARE
    live integer[] := '{}';
    now_state smallint;
    now_token bigint;
    e integer;
    d record;
BEGIN
    held := array_fill(false, ARRAY[coalesce(array_length(p_idx, 1), 0)]);
    readied := '{}';
    FOR e IN 1 .. coalesce(array_length(p_idx, 1), 0) LOOP
        SELECT n.state, n.token INTO now_state, now_token FROM typedag_nodes n
        WHERE n.run = p_run AND n.idx = p_idx[e] FOR UPDATE;
        IF now_token = p_token[e] THEN
            held[e] := true;
            IF now_state = {Claimed} THEN
                live := live || e;
            END IF;
        END IF;
    END LOOP;
    IF cardinality(live) = 0 THEN
        RETURN;
    END IF;
    INSERT INTO typedag_outputs (digest, bytes)
    SELECT p_digest[u.k], p_bytes[u.k] FROM unnest(live) AS u(k)
    WHERE p_bytes[u.k] IS NOT NULL
    ON CONFLICT (digest) DO NOTHING;
    INSERT INTO typedag_records (graph, node, record, fingerprint, digest)
    SELECT p_graph, p_node[u.k], p_record[u.k], p_key[u.k], p_digest[u.k]
    FROM unnest(live) AS u(k) WHERE p_record[u.k] IS NOT NULL
    ON CONFLICT (graph, node) DO UPDATE
    SET record = EXCLUDED.record, fingerprint = EXCLUDED.fingerprint,
        digest = EXCLUDED.digest;
    FOREACH e IN ARRAY live LOOP
        UPDATE typedag_nodes
        SET state = p_state[e], digest = p_digest[e], outcome = p_outcome[e],
            lease_until = NULL
        WHERE run = p_run AND idx = p_idx[e];
        IF p_fp[e] IS NOT NULL THEN
            DELETE FROM typedag_inflight
            WHERE fingerprint = p_fp[e] AND token = p_token[e];
        END IF;
    END LOOP;
    FOR d IN SELECT p_dep[s.k] AS node, count(*)::integer AS c
             FROM generate_subscripts(p_dep, 1) AS s(k)
             WHERE p_dep_of[s.k] = ANY(live)
             GROUP BY p_dep[s.k] ORDER BY 1 LOOP
        UPDATE typedag_nodes
        SET waiting = waiting - d.c,
            state = CASE WHEN state = {Waiting} AND waiting - d.c <= 0 THEN {Ready} ELSE state END
        WHERE run = p_run AND idx = d.node
        RETURNING state INTO now_state;
        IF now_state = {Ready} THEN
            readied := readied || d.node;
        END IF;
    END LOOP;
    FOR d IN SELECT p_skip[s.k] AS node, min(s.k) AS first
             FROM generate_subscripts(p_skip, 1) AS s(k)
             WHERE p_skip_of[s.k] = ANY(live)
             GROUP BY p_skip[s.k] ORDER BY 1 LOOP
        UPDATE typedag_nodes SET state = {Skipped}, outcome = p_skip_outcome[d.first]
        WHERE run = p_run AND idx = d.node AND state = {Waiting};
    END LOOP;
    IF EXISTS (SELECT 1 FROM unnest(live) AS u(k) WHERE p_stop[u.k]) THEN
        UPDATE typedag_runs SET stopping = true WHERE run = p_run;
    END IF;
    -- The readied nodes go back to the caller, who claims what it has room for; the
    -- others hear of them (`p_origin` says whose news it is).
    PERFORM pg_notify('typedag', p_run || ' ' || p_origin);
END
$fn$;
