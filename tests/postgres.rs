//! The PostgreSQL store against a real server that the tests start themselves: the same
//! cache semantics as the embedded store, its own schema with versions, clear errors, and
//! runs that live through a server restart.

#[path = "support/parity_graph.rs"]
mod parity_graph;
mod support;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parity_graph::{describe, graph, load, parity};
use support::postgres::Cluster;
use typedag::prelude::*;
use typedag::store::Store as _;
use typedag::{PostgresStore, StoreError};

/// The nodes that ran, with why.
fn ran(report: &typedag::Report) -> Vec<(String, Reason)> {
    report
        .nodes()
        .iter()
        .filter_map(|n| match &n.outcome {
            Outcome::Ran { reason, .. } => Some((n.id.clone(), *reason)),
            Outcome::Cached => None,
            other => panic!("node {} did not complete: {other:?}", n.id),
        })
        .collect()
}

fn owned(list: &[(&str, Reason)]) -> Vec<(String, Reason)> {
    list.iter().map(|(n, r)| ((*n).to_owned(), *r)).collect()
}

#[tokio::test]
async fn a_rerun_against_the_database_runs_only_what_changed() {
    let url = Cluster::shared().database("rerun");
    let run = |n: u64, label: &'static str| {
        let url = url.clone();
        async move {
            // A new connection each time, as a new process would make.
            let store = PostgresStore::connect(&url).await.unwrap();
            let partial = Runner::new()
                .store(store)
                .run_partial(graph!(n, label))
                .await
                .unwrap();
            (ran(&partial.report), partial.outputs.text)
        }
    };
    let (first, text) = run(4, "four").await;
    assert_eq!(
        first,
        owned(&[
            ("number", Reason::NeverRan),
            ("even", Reason::NeverRan),
            ("text", Reason::NeverRan)
        ])
    );
    assert_eq!(text.as_deref(), Some("four: even"));

    let (second, text) = run(4, "four").await;
    assert_eq!(second, [], "everything is cached");
    assert_eq!(
        text.as_deref(),
        Some("four: even"),
        "loaded from the database"
    );

    // 6 is even too: `even` gives the same bytes, so `text` stays cached (early cutoff).
    let (third, _) = run(6, "four").await;
    assert_eq!(
        third,
        owned(&[
            ("number", Reason::InputChanged),
            ("even", Reason::UpstreamChanged)
        ])
    );
    let (fourth, text) = run(7, "four").await;
    assert_eq!(
        fourth,
        owned(&[
            ("number", Reason::InputChanged),
            ("even", Reason::UpstreamChanged),
            ("text", Reason::UpstreamChanged)
        ])
    );
    assert_eq!(text.as_deref(), Some("four: odd"));
    let (fifth, _) = run(7, "seven").await;
    assert_eq!(fifth, owned(&[("text", Reason::InputChanged)]));
}

static FLAKY_CALLS: AtomicUsize = AtomicUsize::new(0);

#[task]
async fn flaky(fail: bool) -> Result<u32, String> {
    FLAKY_CALLS.fetch_add(1, Ordering::SeqCst);
    if fail { Err("not today".into()) } else { Ok(7) }
}

#[tokio::test]
async fn a_failure_is_recorded_and_runs_again_and_explain_reads_the_database() {
    let url = Cluster::shared().database("failure");
    let store = PostgresStore::connect(&url).await.unwrap();
    let runner = Runner::new().store(store.clone());
    let partial = runner
        .run_partial(dag! { name = "flaky"; f = flaky(true); })
        .await
        .unwrap();
    assert_eq!(partial.report.failed().count(), 1, "{}", partial.report);

    let snapshot = store.load("flaky").await.unwrap();
    let Some(typedag::store::Loaded::Record(record)) = snapshot.records.get("f") else {
        panic!("no record of the failure: {snapshot:?}");
    };
    assert_eq!(
        record.state,
        typedag::store::RecordState::Failed {
            error: "not today".into()
        }
    );

    let explanation = runner
        .explain(&dag! { name = "flaky"; f = flaky(true); })
        .await
        .unwrap();
    assert_eq!(
        explanation.node("f"),
        Some(&NodeState::Runs(Reason::FailedBefore)),
        "{explanation}"
    );
    let report = runner
        .run_partial(dag! { name = "flaky"; f = flaky(false); })
        .await
        .unwrap()
        .report;
    assert_eq!(ran(&report), owned(&[("f", Reason::InputChanged)]));
    let explanation = runner
        .explain(&dag! { name = "flaky"; f = flaky(false); })
        .await
        .unwrap();
    assert_eq!(explanation.node("f"), Some(&NodeState::Cached));
}

#[tokio::test]
async fn processes_connecting_at_once_create_the_tables_once() {
    let url = Cluster::shared().database("together");
    let connects: Vec<_> = (0..6u64)
        .map(|i| {
            let url = url.clone();
            // Different retry settings: separate stores, separate connections.
            tokio::spawn(async move {
                PostgresStore::connect_with(&url, Duration::from_secs(30 + i)).await
            })
        })
        .collect();
    for c in connects {
        c.await.unwrap().unwrap();
    }
    // Every version applied once, in one line from 1 up.
    let versions = Cluster::shared().sql(
        &url,
        "SELECT count(*) = max(version) AND min(version) = 1 FROM typedag_migrations",
    );
    assert_eq!(versions.trim(), "t");
}

#[tokio::test]
async fn a_database_from_a_newer_typedag_is_refused_clearly() {
    let url = Cluster::shared().database("newer");
    PostgresStore::connect(&url).await.unwrap();
    Cluster::shared().sql(
        &url,
        "INSERT INTO typedag_migrations (version, typedag) VALUES (99, '9.0.0')",
    );
    let err = PostgresStore::connect_with(&url, Duration::from_secs(31))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NewerSchema { found: 99, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("schema version 99"), "{text}");
    assert!(text.contains("newer typedag"), "{text}");
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error_after_the_retry_window() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://ann:secret@127.0.0.1:{port}/nothing");
    let started = std::time::Instant::now();
    let err = PostgresStore::connect_with(&url, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(matches!(err, StoreError::Unreachable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains("secret"), "the password stays out: {text}");
    assert!(text.contains("server is running"), "{text}");

    let err = PostgresStore::connect("not a url at all")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("not a PostgreSQL address"),
        "{err}"
    );
}

#[tokio::test]
async fn a_wrong_database_name_is_refused_at_once() {
    let cluster = Cluster::shared();
    let url = format!("{}no_such_db", cluster.url().trim_end_matches("postgres"));
    let started = std::time::Instant::now();
    let err = PostgresStore::connect(&url).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(20), "no retrying");
    assert!(matches!(err, StoreError::Refused { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(r#"database "no_such_db" does not exist"#),
        "{text}"
    );
    assert!(
        text.contains("check the user, password and database"),
        "{text}"
    );
}

static SLOW_RUNS: AtomicUsize = AtomicUsize::new(0);

#[task]
async fn slow(i: u64, inputs: Vec<u64>) -> u64 {
    SLOW_RUNS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(15)).await;
    inputs.iter().fold(i, |acc, x| acc.wrapping_mul(31) ^ x)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_lives_through_a_server_restart_and_loses_nothing() {
    let cluster = std::sync::Arc::new(Cluster::start());
    let url = cluster.database("restart");
    let graph = || {
        let mut graph = typedag::Graph::new("restart");
        let mut prev: Vec<typedag::Node<u64>> = Vec::new();
        for i in 0..80u64 {
            let inputs: Vec<_> = prev.iter().rev().take(2).cloned().collect();
            let node = graph.add::<slow>(format!("n{i}"), (i, inputs)).unwrap();
            prev.push(node);
        }
        let last = graph.keep(prev.pop().unwrap());
        (graph, last)
    };
    let store = PostgresStore::connect(&url).await.unwrap();
    let restarter = {
        let cluster = cluster.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(250));
            cluster.restart();
        })
    };
    let (g, last) = graph();
    let outputs = Runner::new()
        .store(store.clone())
        .concurrency(4)
        .run(g)
        .await
        .unwrap();
    restarter.join().unwrap();
    let expected = *outputs.get(&last);
    let ran_first = SLOW_RUNS.swap(0, Ordering::SeqCst);
    assert!(ran_first >= 80, "{ran_first}");

    // Everything the first run finished is in the database.
    let (g, last) = graph();
    let partial = Runner::new().store(store).run_partial(g).await.unwrap();
    assert_eq!(partial.report.cached(), 80, "{}", partial.report);
    assert_eq!(SLOW_RUNS.load(Ordering::SeqCst), 0);
    assert_eq!(partial.outputs.try_get(&last), Some(&expected));
}

/// Run by [`typedag_store_can_name_a_database`] in a child process, whose environment names
/// the database: `Runner::new()` alone must find it.
#[test]
#[ignore = "run by typedag_store_can_name_a_database"]
fn env_child() {
    if std::env::var_os("TYPEDAG_STORE").is_none() {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let partial = rt
        .block_on(Runner::new().run_partial(graph!(3, "three")))
        .unwrap();
    println!(
        "ran {} cached {} text {}",
        partial.report.ran(),
        partial.report.cached(),
        partial.outputs.text.unwrap()
    );
}

#[test]
fn typedag_store_can_name_a_database() {
    let url = Cluster::shared().database("env");
    let child = || {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "env_child",
                "--ignored",
                "--nocapture",
                "--quiet",
            ])
            .env("TYPEDAG_STORE", &url)
            .current_dir(std::env::temp_dir())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        text.lines()
            .find(|l| l.starts_with("ran "))
            .unwrap_or_else(|| panic!("no report in {text}"))
            .to_owned()
    };
    assert_eq!(child(), "ran 3 cached 0 text three: odd");
    assert_eq!(child(), "ran 0 cached 3 text three: odd");
    let rows = Cluster::shared().sql(
        &url,
        "SELECT count(*) FROM typedag_records WHERE graph = 'parity'",
    );
    assert_eq!(rows.trim(), "3");
}

#[task]
async fn doubled(x: &u64) -> u64 {
    x * 2
}

#[tokio::test]
async fn a_value_delivered_by_another_process_ends_a_wait_and_is_taken_once() {
    let url = Cluster::shared().database("signal");
    let store = PostgresStore::connect(&url).await.unwrap();
    // Another process's connection: a store of its own, as another retry window makes one.
    let other = PostgresStore::connect_with(&url, Duration::from_secs(59))
        .await
        .unwrap();
    let graph = || {
        dag! {
            name = "pg-signal";
            x = signal::<u64>() with timeout = "20s";
            y = doubled(x);
        }
    };
    let sender = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        other.write(
            typedag::store::Write::Deliver {
                graph: "pg-signal".into(),
                delivery: typedag::store::Delivery::new("x", "21"),
            },
            Box::new(move |result| {
                let _ = tx.send(result);
            }),
        );
        rx.await.unwrap().unwrap();
    });
    let out = Runner::new()
        .store(store.clone())
        .run(graph())
        .await
        .unwrap();
    sender.await.unwrap();
    assert_eq!(out.y, 42);
    assert!(store.deliveries("pg-signal").await.unwrap().is_empty());
    let again = Runner::new()
        .store(store)
        .run_partial(graph())
        .await
        .unwrap();
    assert_eq!(ran(&again.report), []);
}
