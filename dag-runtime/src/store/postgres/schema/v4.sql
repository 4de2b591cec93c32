-- Schema version 4: values delivered to signal nodes, waiting for a run to take them. One
-- per signal of a graph: a later delivery replaces one not yet taken. `digest` is the
-- BLAKE3 of `json`, so that a run drops only the delivery it took.
CREATE TABLE typedag_signals (
    graph   text   NOT NULL,
    signal  text   NOT NULL,
    json    text   NOT NULL,
    digest  bytea  NOT NULL,
    sent_ms bigint NOT NULL,
    PRIMARY KEY (graph, signal)
);
