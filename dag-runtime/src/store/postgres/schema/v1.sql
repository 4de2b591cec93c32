-- Schema version 1: records, outputs by digest, graph shapes.
CREATE TABLE typedag_records (
    graph       text  NOT NULL,
    node        text  NOT NULL,
    record      bytea NOT NULL,
    fingerprint bytea NOT NULL,
    digest      bytea,
    PRIMARY KEY (graph, node)
);
CREATE INDEX typedag_records_fingerprint ON typedag_records (fingerprint);
CREATE TABLE typedag_outputs (
    digest bytea PRIMARY KEY,
    bytes  bytea NOT NULL
);
CREATE TABLE typedag_graphs (
    graph    text  PRIMARY KEY,
    shape    bytea NOT NULL,
    manifest bytea NOT NULL
);
