//! A task is known by its full path: two tasks of the same name in different modules, with
//! the same tokens, never share a record, an output or a `limit`; a node that switches
//! from one to the other runs again.

#[path = "support/same_name.rs"]
mod same_name;
mod support;

use std::sync::LazyLock;
use std::time::Duration;

use same_name::{backfill, ingest};
use support::temp_dir::TempDir;
use typedag::prelude::*;
use typedag::store::{Loaded, Record, Store as _};

#[test]
fn a_task_is_named_by_its_function_and_known_by_its_path() {
    assert_eq!(<ingest::load as Task>::NAME, "load");
    assert_eq!(<backfill::load as Task>::NAME, "load");
    assert_eq!(
        <ingest::load as Task>::PATH,
        "identity::same_name::ingest::load"
    );
    assert_eq!(
        <backfill::load as Task>::PATH,
        "identity::same_name::backfill::load"
    );
    // What the tests below rely on: the tokens alone cannot tell the two apart.
    assert_eq!(
        <ingest::load as Task>::FINGERPRINT,
        <backfill::load as Task>::FINGERPRINT
    );
}

/// The record of `node` in graph `graph`.
async fn record(store: &EmbeddedStore, graph: &str, node: &str) -> Record {
    match store.load(graph).await.unwrap().records.remove(node) {
        Some(Loaded::Record(record)) => record,
        other => panic!("no record of {graph}/{node}: {other:?}"),
    }
}

#[tokio::test]
async fn same_named_tasks_in_one_graph_keep_their_own_outputs_and_records() {
    let dir = TempDir::new("same-name");
    let run = || async {
        Runner::new()
            .store(EmbeddedStore::open(&dir.0).unwrap())
            .run_partial(dag! { name = "twins"; a = ingest::load(); b = backfill::load(); })
            .await
            .unwrap()
    };
    let first = run().await;
    assert_eq!((first.outputs.a, first.outputs.b), (Some(1), Some(2)));
    assert_eq!(first.report.ran(), 2, "{}", first.report);

    let second = run().await;
    assert_eq!(second.report.cached(), 2, "{}", second.report);
    assert_eq!((second.outputs.a, second.outputs.b), (Some(1), Some(2)));

    let store = EmbeddedStore::open(&dir.0).unwrap();
    let (a, b) = (
        record(&store, "twins", "a").await,
        record(&store, "twins", "b").await,
    );
    assert_eq!((a.task.as_str(), b.task.as_str()), ("load", "load"));
    assert_ne!(
        a.fingerprint.key(),
        b.fingerprint.key(),
        "two different tasks were recorded under one fingerprint"
    );
    assert_eq!(
        a.fingerprint.change_from(&b.fingerprint),
        Some(Reason::CodeChanged)
    );
}

#[tokio::test]
async fn a_node_switched_to_a_same_named_task_of_another_module_runs_again() {
    let dir = TempDir::new("switched");
    let runner = || Runner::new().store(EmbeddedStore::open(&dir.0).unwrap());
    let before = runner()
        .run(dag! { name = "switched"; v = ingest::load(); })
        .await
        .unwrap();
    assert_eq!(before.v, 1);

    let after = runner()
        .run_partial(dag! { name = "switched"; v = backfill::load(); })
        .await
        .unwrap();
    assert_eq!(after.outputs.v, Some(2), "{}", after.report);
    assert!(
        matches!(
            after.report.node("v").unwrap().outcome,
            Outcome::Ran {
                reason: Reason::CodeChanged,
                ..
            }
        ),
        "{}",
        after.report
    );
}

/// Waits for the other `throttled` node to start too: `true` if it did in time.
async fn both_running() -> bool {
    static BOTH: LazyLock<tokio::sync::Barrier> = LazyLock::new(|| tokio::sync::Barrier::new(2));
    tokio::time::timeout(Duration::from_secs(5), BOTH.wait())
        .await
        .is_ok()
}

mod first {
    use typedag::prelude::*;

    #[task(limit = 1)]
    pub async fn throttled() -> bool {
        super::both_running().await
    }
}

mod second {
    use typedag::prelude::*;

    #[task(limit = 1)]
    pub async fn throttled() -> bool {
        super::both_running().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_named_tasks_in_different_modules_have_a_limit_each() {
    let out = Runner::new()
        .without_store()
        .run(dag! { a = first::throttled(); b = second::throttled(); })
        .await
        .unwrap();
    assert!(
        out.a && out.b,
        "one `limit = 1` held both tasks: they never ran at once"
    );
}
