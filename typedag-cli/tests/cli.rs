//! Runs the `typedag` binary against stores written through the `Store` trait, the way a
//! program's runs would have left them.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::mpsc;
use std::time::{SystemTime, UNIX_EPOCH};

use dag_runtime::store::{Manifest, ManifestNode, Record, RecordState, Store, Write};
use dag_runtime::{EmbeddedStore, Fingerprint, Reason};

/// A directory of its own for one test, removed when the test ends, even by a panic.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("typedag-cli-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

const MINUTE_MS: u64 = 60_000;
const DAY_MS: u64 = 1440 * MINUTE_MS;

fn record(task: &str, state: RecordState, age_ms: u64, reason: Reason) -> Record {
    Record {
        task: task.into(),
        fingerprint: Fingerprint {
            code: [1; 32],
            output_type: [2; 32],
            inputs: [3; 32],
            upstream: [4; 32],
        },
        state,
        finished_ms: now_ms() - age_ms,
        duration_us: 1_500,
        attempts: 1,
        reason,
    }
}

fn done(task: &str, size: u64, age_ms: u64) -> (Record, Option<Vec<u8>>) {
    let bytes = vec![7; usize::try_from(size).unwrap()];
    // The CLI never reads output bytes back, so any digest will do.
    let state = RecordState::Done {
        digest: [9; 32],
        size,
    };
    (record(task, state, age_ms, Reason::NeverRan), Some(bytes))
}

fn failed(task: &str, error: &str) -> (Record, Option<Vec<u8>>) {
    let mut r = record(
        task,
        RecordState::Failed {
            error: error.into(),
        },
        20 * MINUTE_MS,
        Reason::InputChanged,
    );
    r.attempts = 3;
    (r, None)
}

fn write(store: &dyn Store, w: Write) {
    let (tx, rx) = mpsc::channel();
    store.write(
        w,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    rx.recv().unwrap().unwrap();
}

fn graph(stores: &[&dyn Store], name: &str, nodes: &[(&str, &str, &[u32])]) {
    let manifest = Manifest {
        nodes: nodes
            .iter()
            .map(|(id, task, inputs)| ManifestNode {
                id: (*id).into(),
                task: (*task).into(),
                inputs: inputs.to_vec(),
            })
            .collect(),
    };
    for store in stores {
        write(
            *store,
            Write::Graph {
                graph: name.into(),
                manifest: manifest.clone(),
            },
        );
    }
}

fn save(
    stores: &[&dyn Store],
    graph: &str,
    node: &str,
    (record, output): (Record, Option<Vec<u8>>),
) {
    for store in stores {
        write(
            *store,
            Write::Save {
                graph: graph.into(),
                node: node.into(),
                record: record.clone(),
                output: output.clone(),
            },
        );
    }
}

/// Two graphs:
/// - `pipeline`: fetch → parse → report → publish, and summary reading fetch and parse;
///   publish failed, summary never ran, and `old_step` is a record of a node the graph
///   no longer has.
/// - `nightly`: one fresh record, one ten days old.
/// - `adhoc`: one record and no saved shape, as a store that only ever got records has.
fn build(dir: &Path) {
    let store = EmbeddedStore::open(dir).unwrap();
    fill(&[&store]);
    // Dropping the last handle releases the file lock for the binary.
    drop(store);
}

/// Writes the graphs [`build`] describes into each of `stores`, with the same times.
fn fill(store: &[&dyn Store]) {
    graph(
        store,
        "pipeline",
        &[
            ("fetch", "download", &[]),
            ("parse", "parse_csv", &[0]),
            ("report", "render", &[1]),
            ("publish", "upload", &[2]),
            ("summary", "summarize", &[0, 1]),
        ],
    );
    save(
        store,
        "pipeline",
        "fetch",
        done("download", 3000, 50 * MINUTE_MS),
    );
    save(
        store,
        "pipeline",
        "parse",
        done("parse_csv", 120, 40 * MINUTE_MS),
    );
    save(
        store,
        "pipeline",
        "report",
        done("render", 40, 30 * MINUTE_MS),
    );
    save(
        store,
        "pipeline",
        "publish",
        failed("upload", "connection refused\n(after 3 attempts)"),
    );
    save(
        store,
        "pipeline",
        "old_step",
        done("legacy", 10, 2 * DAY_MS),
    );
    graph(
        store,
        "nightly",
        &[("a", "fresh", &[]), ("b", "stale", &[0])],
    );
    save(store, "nightly", "a", done("fresh", 5, 180 * MINUTE_MS));
    save(store, "nightly", "b", done("stale", 2048, 10 * DAY_MS));
    save(store, "adhoc", "x", done("probe", 7, 60 * MINUTE_MS));
}

fn typedag(store: impl AsRef<OsStr>, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_typedag"))
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("TYPEDAG_STORE")
        .output()
        .unwrap()
}

/// Runs `typedag` and returns its stdout, failing the test unless it exits 0.
fn ok(store: impl AsRef<OsStr>, args: &[&str]) -> String {
    let out = typedag(store, args);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        out.status.success(),
        "typedag {args:?} failed ({}):\n{stdout}{stderr}",
        out.status
    );
    assert_eq!(stderr, "", "typedag {args:?}");
    stdout
}

/// Runs `typedag`, expecting exit status `code`; returns its stderr.
fn fails(store: impl AsRef<OsStr>, args: &[&str], code: i32) -> String {
    let out = typedag(store, args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(code), "typedag {args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "typedag {args:?}");
    stderr
}

/// The line of `text` that starts with `first` (a table row by its first cell), split
/// into cells at runs of two or more spaces.
fn row(text: &str, first: &str) -> Vec<String> {
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{first} ")))
        .unwrap_or_else(|| panic!("no row `{first}` in:\n{text}"));
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn status_lists_graphs_then_nodes() {
    let tmp = TempDir::new("status");
    build(&tmp.0);

    let all = ok(&tmp.0, &["status"]);
    assert!(all.starts_with("GRAPH "), "{all}");
    assert_eq!(
        row(&all, "adhoc"),
        ["adhoc", "-", "1", "0", "7 B", "1h ago", "no saved shape"],
        "{all}"
    );
    assert_eq!(
        row(&all, "pipeline"),
        [
            "pipeline",
            "5",
            "4",
            "1",
            "3.1 KiB",
            "20m ago",
            "1 record not in graph (typedag gc)"
        ],
        "{all}"
    );
    assert_eq!(
        row(&all, "nightly"),
        ["nightly", "2", "2", "0", "2.0 KiB", "3h ago"],
        "{all}"
    );

    let nodes = ok(&tmp.0, &["status", "pipeline"]);
    let header = nodes.lines().next().unwrap();
    assert!(
        header.starts_with("NODE ") && header.contains("LAST RAN BECAUSE"),
        "{nodes}"
    );
    let ids: Vec<&str> = nodes
        .lines()
        .skip(1)
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["fetch", "parse", "report", "publish", "summary", "old_step"]
    );
    assert_eq!(
        row(&nodes, "fetch"),
        [
            "fetch",
            "download",
            "done",
            "2.9 KiB",
            "50m",
            "1",
            "never ran",
            "-"
        ]
    );
    assert_eq!(
        row(&nodes, "publish"),
        [
            "publish",
            "upload",
            "failed",
            "-",
            "20m",
            "3",
            "input changed",
            "connection refused (after 3 attempts)"
        ]
    );
    assert_eq!(
        row(&nodes, "summary"),
        ["summary", "summarize", "missing", "-", "-", "-", "-", "-"]
    );
    assert_eq!(row(&nodes, "old_step")[0], "old_step (not in graph)");

    // TYPEDAG_STORE names the store when --store does not.
    let out = Command::new(env!("CARGO_BIN_EXE_typedag"))
        .arg("status")
        .env("TYPEDAG_STORE", &tmp.0)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), all);
}

#[test]
fn explain_says_what_a_rerun_would_do() {
    let tmp = TempDir::new("explain");
    build(&tmp.0);

    let text = ok(&tmp.0, &["explain", "pipeline"]);
    assert!(text.starts_with("graph `pipeline` in "), "{text}");
    assert!(
        text.contains(
            "a rerun of the same program: 3 cached, 2 to run, 0 depending on upstream changes"
        ),
        "{text}"
    );
    for expected in [
        "node `parse` (task `parse_csv`)",
        "  inputs       `fetch`\n  dependents   `report`, `summary`\n  next run     cached (if its code, its constants and its inputs' outputs are unchanged)",
        "node `publish` (task `upload`)\n  state        failed\n  error        connection refused (after 3 attempts)",
        "next run     runs: failed last time",
        "next run     runs: never ran",
        "node `old_step` (task `legacy`)",
        "never read: a run of the graph does not use it (`typedag gc` drops it)",
        "ran because  never ran",
    ] {
        assert!(text.contains(expected), "no `{expected}` in:\n{text}");
    }
    assert!(
        text.trim_end()
            .ends_with("after an edit ask `Runner::explain` in the program what a run would do.")
    );

    let one = ok(&tmp.0, &["explain", "pipeline", "report"]);
    assert_eq!(one.matches("node `").count(), 1, "{one}");
    assert!(one.contains("node `report` (task `render`)"), "{one}");
    assert!(one.contains("took 1ms, 1 attempt"), "{one}");

    let err = fails(&tmp.0, &["explain", "pipeline", "nope"], 1);
    assert!(
        err.starts_with(
            "error: graph `pipeline` has no node `nope`; its nodes are `fetch`, `parse`"
        ),
        "{err}"
    );
}

#[test]
fn forget_drops_records_and_keeps_dependents() {
    let tmp = TempDir::new("forget");
    build(&tmp.0);

    let out = ok(&tmp.0, &["forget", "pipeline", "parse"]);
    assert_eq!(
        out,
        "forgot 1 record of graph `pipeline`: parse\n\
         `parse` runs again on the next run; dependents keep their records (report): they run again only if `parse` produces other bytes than before\n"
    );
    let nodes = ok(&tmp.0, &["status", "pipeline"]);
    assert_eq!(row(&nodes, "parse")[2], "missing", "{nodes}");
    assert_eq!(row(&nodes, "report")[2], "done", "{nodes}");

    let report = ok(&tmp.0, &["explain", "pipeline", "report"]);
    assert!(
        report.contains("cached unless `parse` changes its output (`parse` runs: never ran)"),
        "{report}"
    );

    // A typo drops nothing, not even the names that were right.
    let err = fails(&tmp.0, &["forget", "pipeline", "fetch", "nope"], 1);
    assert!(err.contains("graph `pipeline` has no node `nope`"), "{err}");
    let err = fails(&tmp.0, &["forget", "pipeline", "fetch", "summary"], 1);
    assert!(
        err.contains("node `summary` of graph `pipeline` has no record: nothing to forget"),
        "{err}"
    );
    assert_eq!(
        row(&ok(&tmp.0, &["status", "pipeline"]), "fetch")[2],
        "done"
    );

    let out = ok(&tmp.0, &["forget", "nightly"]);
    assert_eq!(
        out,
        "forgot graph `nightly`: 2 records (a, b) and its saved shape; it is gone from the store until its program runs again\n"
    );
    let all = ok(&tmp.0, &["status"]);
    assert!(!all.contains("nightly"), "{all}");
}

#[test]
fn gc_drops_records_no_graph_uses() {
    let tmp = TempDir::new("gc");
    build(&tmp.0);

    let dry = ok(&tmp.0, &["gc", "--dry-run"]);
    assert_eq!(
        dry,
        "graph `adhoc`: kept 1 record: the store has no saved shape to tell which are used (`typedag forget adhoc` drops them all)\n\
         graph `pipeline`: would drop 1 record (10 B): old_step (not in graph)\n\
         would drop 1 record (10 B) in 1 graph (dry run: nothing dropped)\n"
    );
    assert!(ok(&tmp.0, &["status", "pipeline"]).contains("old_step"));

    let out = ok(&tmp.0, &["gc"]);
    assert_eq!(
        out,
        "graph `adhoc`: kept 1 record: the store has no saved shape to tell which are used (`typedag forget adhoc` drops them all)\n\
         graph `pipeline`: dropped 1 record (10 B): old_step (not in graph)\n\
         dropped 1 record (10 B) in 1 graph\n"
    );
    assert!(!ok(&tmp.0, &["status", "pipeline"]).contains("old_step"));
    assert!(ok(&tmp.0, &["gc"]).ends_with("\nnothing to drop\n"));

    let out = ok(&tmp.0, &["gc", "--older-than", "7d"]);
    assert_eq!(
        out,
        "graph `nightly`: dropped 1 record (2.0 KiB): b (10d old)\n\
         dropped 1 record (2.0 KiB) in 1 graph\n"
    );
    let nightly = ok(&tmp.0, &["status", "nightly"]);
    assert_eq!(row(&nightly, "b")[2], "missing", "{nightly}");

    let err = fails(&tmp.0, &["gc", "--older-than", "7 weeks"], 2);
    assert!(err.contains("is not a duration"), "{err}");
    // The project's one duration syntax: decimals too.
    let dry = ok(&tmp.0, &["gc", "--older-than", "1.5h", "--dry-run"]);
    assert!(dry.ends_with("(dry run: nothing dropped)\n"), "{dry}");
}

#[test]
fn a_missing_store_is_not_created() {
    let tmp = TempDir::new("missing");
    let dir = tmp.0.join("nowhere");
    let err = fails(&dir, &["status"], 1);
    assert_eq!(
        err,
        format!(
            "error: no store at {} (run a program first, or pass --store)\n",
            dir.display()
        )
    );
    assert!(!dir.exists());

    // A directory without a store stays without one.
    std::fs::create_dir_all(&dir).unwrap();
    let err = fails(&dir, &["gc"], 1);
    assert_eq!(
        err,
        format!(
            "error: no store at {}: the directory holds no store.redb (run a program first, or pass --store)\n",
            dir.display()
        )
    );
    assert!(!dir.join("store.redb").exists());
}

#[test]
fn an_unknown_graph_is_an_error() {
    let tmp = TempDir::new("unknown");
    build(&tmp.0);
    for args in [
        &["status", "nope"][..],
        &["explain", "nope"],
        &["forget", "nope"],
        &["forget", "nope", "a"],
        &["signal", "nope", "approve", "true"],
    ] {
        let err = fails(&tmp.0, args, 1);
        assert_eq!(
            err,
            "error: no graph `nope` in the store; its graphs are `adhoc`, `nightly`, `pipeline`\n",
            "{args:?}"
        );
    }
}

/// A graph `release` as its program saves it: `build`, the signal `approve`, and `ship`
/// reading it; no value delivered yet.
fn release(dir: &Path) {
    let store = EmbeddedStore::open(dir).unwrap();
    graph(
        &[&store],
        "release",
        &[
            ("build", "build", &[]),
            ("approve", "typedag::signal", &[]),
            ("ship", "ship", &[1]),
        ],
    );
}

/// A PostgreSQL store at `url`, with the runtime its calls run on.
fn postgres_store(url: &str) -> (tokio::runtime::Runtime, dag_runtime::PostgresStore) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let postgres = runtime
        .block_on(dag_runtime::PostgresStore::connect(url))
        .unwrap();
    (runtime, postgres)
}

/// The values waiting in the store for the signals of `graph`, as (signal, JSON).
fn deliveries(dir: &Path, graph: &str) -> Vec<(String, String)> {
    let store = EmbeddedStore::open(dir).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut list: Vec<(String, String)> = runtime
        .block_on(store.deliveries(graph))
        .unwrap()
        .into_iter()
        .map(|d| (d.signal, d.json))
        .collect();
    list.sort();
    list
}

#[test]
fn signal_delivers_a_json_value_for_the_next_run() {
    let tmp = TempDir::new("signal");
    release(&tmp.0);
    let out = ok(
        &tmp.0,
        &["signal", "release", "approve", r#"{"by": "ada"}"#],
    );
    assert_eq!(
        out,
        "delivered {\"by\": \"ada\"} to signal `approve` of graph `release`\nthe next run of the graph takes it\n"
    );
    assert_eq!(
        deliveries(&tmp.0, "release"),
        [("approve".to_owned(), r#"{"by": "ada"}"#.to_owned())]
    );

    // A second value replaces the first, which no run has taken.
    let out = ok(&tmp.0, &["signal", "release", "approve", "-1"]);
    assert!(
        out.starts_with("delivered -1 to signal `approve` of graph `release`, in place of the value delivered before that no run had taken\n"),
        "{out}"
    );
    assert_eq!(
        deliveries(&tmp.0, "release"),
        [("approve".to_owned(), "-1".to_owned())]
    );

    // Forgetting the graph drops what was delivered to it.
    ok(&tmp.0, &["forget", "release"]);
    assert!(deliveries(&tmp.0, "release").is_empty());
}

#[test]
fn signal_refuses_what_it_cannot_deliver_and_stores_nothing() {
    let tmp = TempDir::new("signal-refused");
    release(&tmp.0);
    let err = fails(&tmp.0, &["signal", "release", "aprove", "true"], 1);
    assert_eq!(
        err,
        "error: graph `release` has no signal `aprove`; its signals are `approve`; nothing was stored\n"
    );
    let err = fails(&tmp.0, &["signal", "release", "ship", "true"], 1);
    assert_eq!(
        err,
        "error: node `ship` of graph `release` runs task `ship`: it is not a signal, so it takes no value from outside the graph; its signals are `approve`; nothing was stored\n"
    );
    let err = fails(&tmp.0, &["signal", "release", "approve", "{by: ada}"], 1);
    assert!(
        err.starts_with("error: the value `{by: ada}` is not valid JSON (key must be a string at line 1 column 2): write it as JSON"),
        "{err}"
    );
    assert!(err.ends_with("; nothing was stored\n"), "{err}");
    build(&tmp.0);
    let err = fails(&tmp.0, &["signal", "adhoc", "x", "1"], 1);
    assert!(
        err.starts_with("error: the store has no saved shape of graph `adhoc`"),
        "{err}"
    );
    let err = fails(&tmp.0, &["signal", "nightly", "a", "1"], 1);
    assert!(
        err.contains("it is not a signal, so it takes no value from outside the graph; it has no signals (a signal is a node `name = signal::<Type>();`"),
        "{err}"
    );
    assert!(deliveries(&tmp.0, "release").is_empty());
    assert!(deliveries(&tmp.0, "nightly").is_empty());

    // A running program holds the store: it may be waiting for this very value.
    let held = EmbeddedStore::open(&tmp.0).unwrap();
    let err = fails(&tmp.0, &["signal", "release", "approve", "true"], 1);
    assert!(
        err.starts_with("error: the store ")
            && err.contains("is in use by a running program, so the value cannot go into it now: a running program takes values sent through its own `Runner::signals`"),
        "{err}"
    );
    drop(held);
    assert!(deliveries(&tmp.0, "release").is_empty());
}

#[test]
fn a_store_in_use_is_reported() {
    let tmp = TempDir::new("locked");
    build(&tmp.0);
    let held = EmbeddedStore::open(&tmp.0).unwrap();
    let err = fails(&tmp.0, &["status"], 1);
    assert!(
        err.starts_with("error: the store ") && err.contains("is in use by a running program"),
        "{err}"
    );
    drop(held);
    assert!(ok(&tmp.0, &["status"]).contains("pipeline"));
}

#[test]
fn a_graph_without_a_saved_shape_keeps_its_records() {
    let tmp = TempDir::new("shapeless");
    build(&tmp.0);

    let nodes = ok(&tmp.0, &["status", "adhoc"]);
    assert_eq!(
        row(&nodes, "x"),
        ["x", "probe", "done", "7 B", "1h", "1", "never ran", "-"]
    );
    assert!(
        nodes.ends_with(
            "(the store has no saved shape for this graph: the nodes above are its records)\n"
        ),
        "{nodes}"
    );

    let text = ok(&tmp.0, &["explain", "adhoc"]);
    assert!(
        text.contains("shape not saved (inputs and dependents unknown), 1 record"),
        "{text}"
    );
    assert!(
        text.contains(
            "  inputs       unknown: the store has no saved shape\n  next run     cached (if"
        ),
        "{text}"
    );

    let out = ok(&tmp.0, &["forget", "adhoc", "x"]);
    assert_eq!(
        out,
        "forgot 1 record of graph `adhoc`: x\n\
         `x` runs again on the next run; dependents (unknown: the store has no saved shape) keep their records: they run again only if `x` produces other bytes than before\n"
    );
    assert!(!ok(&tmp.0, &["status"]).contains("adhoc"));
}

#[path = "../../tests/support/postgres.rs"]
mod pg;

/// The same records in a PostgreSQL store read the same as in an embedded one, and
/// `forget` and `gc` change them the same way.
#[test]
fn a_postgres_store_reads_like_an_embedded_one() {
    let tmp = TempDir::new("postgres");
    let cluster = pg::Cluster::start();
    let url = cluster.database("cli");
    {
        let (_runtime, postgres) = postgres_store(&url);
        let embedded = EmbeddedStore::open(&tmp.0).unwrap();
        fill(&[&embedded, &postgres]);
    }
    let same = |args: &[&str]| {
        let embedded =
            ok(&tmp.0, args).replace(&tmp.0.join("store.redb").display().to_string(), "STORE");
        let location = url.clone();
        let postgres = ok(&url, args).replace(&location, "STORE");
        assert_eq!(postgres, embedded, "typedag {args:?}");
        postgres
    };
    let graphs = same(&["status"]);
    assert!(graphs.contains("pipeline"), "{graphs}");
    same(&["status", "pipeline"]);
    same(&["explain", "pipeline"]);
    same(&["explain", "pipeline", "publish"]);
    same(&["forget", "pipeline", "publish"]);
    same(&["status", "pipeline"]);
    same(&["gc", "--older-than", "7d", "--dry-run"]);
    same(&["gc", "--older-than", "7d"]);
    same(&["status"]);
    same(&["forget", "nightly"]);
    same(&["status"]);

    // A value for a signal goes into PostgreSQL at any time, for a run waiting for it.
    {
        let (_runtime, postgres) = postgres_store(&url);
        graph(
            &[&postgres],
            "release",
            &[("approve", "typedag::signal", &[]), ("ship", "ship", &[0])],
        );
    }
    let out = ok(&url, &["signal", "release", "approve", "true"]);
    assert_eq!(
        out,
        "delivered true to signal `approve` of graph `release`\na run waiting for it takes it within a second; else the next run to reach it does\n"
    );
    let kept = cluster.sql(
        &url,
        "SELECT json FROM typedag_signals WHERE graph = 'release' AND signal = 'approve'",
    );
    assert_eq!(kept.trim(), "true");

    // A distributed run in progress shows under the graphs.
    cluster.sql(
        &url,
        "INSERT INTO typedag_runs (run, graph, shape) VALUES ('nightly-1', 'pipeline', '\\x00');
         INSERT INTO typedag_nodes (run, idx, node, priority, inputs, waiting, state, owner)
         VALUES ('nightly-1', 0, 'fetch', 0, '{}', 0, 3, NULL),
                ('nightly-1', 1, 'parse', 0, '{0}', 0, 2, 'box-a:41:9f'),
                ('nightly-1', 2, 'report', 0, '{1}', 1, 0, NULL)",
    );
    let status = ok(&url, &["status"]);
    let run = row(&status, "nightly-1");
    assert_eq!(
        run[..7],
        ["nightly-1", "pipeline", "3", "1", "0", "0", "1"],
        "{status}"
    );
    assert_eq!(run[8], "running on 1 worker: box-a:41:9f", "{status}");

    // `gc --older-than` drops finished runs that started before then, never one going on.
    cluster.sql(
        &url,
        "INSERT INTO typedag_runs (run, graph, shape, started_at)
         VALUES ('nightly-0', 'pipeline', '\\x00', now() - interval '10 days');
         INSERT INTO typedag_nodes (run, idx, node, priority, inputs, waiting, state)
         VALUES ('nightly-0', 0, 'fetch', 0, '{}', 0, 3);
         UPDATE typedag_runs SET started_at = now() - interval '9 days' WHERE run = 'nightly-1'",
    );
    let dry = ok(&url, &["gc", "--older-than", "7d", "--dry-run"]);
    assert!(
        dry.contains("run `nightly-0` (graph `pipeline`, 10d old): would drop"),
        "{dry}"
    );
    assert!(!dry.contains("nightly-1"), "{dry}");
    let done = ok(&url, &["gc", "--older-than", "7d"]);
    assert!(done.contains("run `nightly-0`"), "{done}");
    let status = ok(&url, &["status"]);
    assert!(!status.contains("nightly-0"), "{status}");
    assert!(status.contains("nightly-1"), "{status}");

    let err = fails(url.replace("/cli", "/nothing_here"), &["status"], 1);
    assert!(
        err.contains(r#"database "nothing_here" does not exist"#),
        "{err}"
    );
}

/// A distributed run stopped at a failure (`fail_fast`) keeps the rows of the nodes and
/// items that never started, waiting or ready for good: `gc --older-than` still drops it,
/// as it has ended, and keeps every run that may still go on: one with a claim, one stopping
/// whose map node is yet to gather, one not stopping with nodes left (its processes may be
/// started again under its name).
#[test]
fn gc_drops_a_run_stopped_at_a_failure_and_keeps_those_still_going() {
    let cluster = pg::Cluster::start();
    let url = cluster.database("stopped");
    let (runtime, postgres) = postgres_store(&url);
    cluster.sql(
        &url,
        "INSERT INTO typedag_runs (run, graph, shape, stopping, started_at)
         VALUES ('stopped', 'pipeline', '\\x00', true, now() - interval '2 days'),
                ('claimed', 'pipeline', '\\x00', true, now() - interval '2 days'),
                ('gathering', 'pipeline', '\\x00', true, now() - interval '2 days'),
                ('killed', 'pipeline', '\\x00', false, now() - interval '2 days');
         INSERT INTO typedag_nodes
                (run, idx, node, priority, inputs, waiting, state, owner, parent, item, items)
         VALUES ('stopped', 0, 'xs', 0, '{}', 0, 3, NULL, NULL, NULL, NULL),
                ('stopped', 1, 'ys', 0, '{0}', 0, 4, NULL, NULL, NULL, 4),
                ('stopped', 2, 'total', 0, '{1}', 1, 0, NULL, NULL, NULL, NULL),
                ('stopped', 3, 'side', 0, '{}', 0, 1, NULL, NULL, NULL, NULL),
                ('stopped', 4, 'ys', 0, '{0}', 0, 4, NULL, 1, 0, NULL),
                ('stopped', 5, 'ys', 0, '{0}', 0, 3, NULL, 1, 1, NULL),
                ('stopped', 6, 'ys', 0, '{0}', 0, 1, NULL, 1, 2, NULL),
                ('stopped', 7, 'ys', 0, '{0}', 0, 1, NULL, 1, 3, NULL),
                ('claimed', 0, 'a', 0, '{}', 0, 4, NULL, NULL, NULL, NULL),
                ('claimed', 1, 'b', 0, '{}', 0, 2, 'box-b:7:1c', NULL, NULL, NULL),
                ('claimed', 2, 'c', 0, '{}', 0, 1, NULL, NULL, NULL, NULL),
                ('gathering', 0, 'xs', 0, '{}', 0, 3, NULL, NULL, NULL, NULL),
                ('gathering', 1, 'ys', 0, '{0}', 1, 0, NULL, NULL, NULL, 2),
                ('gathering', 2, 'ys', 0, '{0}', 0, 4, NULL, 1, 0, NULL),
                ('gathering', 3, 'ys', 0, '{0}', 0, 1, NULL, 1, 1, NULL),
                ('killed', 0, 'a', 0, '{}', 0, 3, NULL, NULL, NULL, NULL),
                ('killed', 1, 'b', 0, '{0}', 0, 1, NULL, NULL, NULL, NULL),
                ('killed', 2, 'c', 0, '{1}', 1, 0, NULL, NULL, NULL, NULL)",
    );
    let state = |status: &str, run: &str| row(status, run).last().unwrap().clone();
    let status = ok(&url, &["status"]);
    assert_eq!(
        state(&status, "stopped"),
        "stopped after a failure",
        "{status}"
    );
    assert_eq!(
        state(&status, "claimed"),
        "stopping after a failure",
        "{status}"
    );
    assert_eq!(
        state(&status, "gathering"),
        "stopping after a failure",
        "{status}"
    );
    assert_eq!(state(&status, "killed"), "waiting for a worker", "{status}");

    let dry = ok(&url, &["gc", "--older-than", "0s", "--dry-run"]);
    assert_eq!(
        dry, "run `stopped` (graph `pipeline`, 2d old): would drop\n",
        "{dry}"
    );
    let done = ok(&url, &["gc", "--older-than", "0s"]);
    assert_eq!(done, "run `stopped` (graph `pipeline`, 2d old): dropped\n");
    let status = ok(&url, &["status"]);
    assert!(
        !status.lines().any(|l| l.starts_with("stopped ")),
        "{status}"
    );
    let left = "SELECT string_agg(run, ' ' ORDER BY run) FROM typedag_runs";
    assert_eq!(cluster.sql(&url, left).trim(), "claimed gathering killed");
    let rows = "SELECT count(*) FROM typedag_nodes WHERE run = 'stopped'";
    assert_eq!(cluster.sql(&url, rows).trim(), "0");

    // Asked to, the store itself keeps them too: another process may have taken a claim
    // since `gc` looked.
    let coordinator = postgres.coordinator().unwrap();
    let runs = vec!["claimed".into(), "gathering".into(), "killed".into()];
    runtime.block_on(coordinator.forget_runs(runs)).unwrap();
    assert_eq!(cluster.sql(&url, left).trim(), "claimed gathering killed");
}
