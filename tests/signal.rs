//! Signal nodes: a typed value from outside the graph (`approve = signal::<Approval>()`),
//! waited for with a timeout, delivered by the running program or into the store while no
//! program runs, and stored like any output: later runs do not wait again, and a new value
//! runs again what depends on it.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::temp_dir::TempDir;
use typedag::prelude::*;
use typedag::serde::{Deserialize, Serialize};
use typedag::store::{Delivery, Write};
use typedag::{FailureKind, Store as _};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(crate = "typedag::serde")]
struct Approval {
    by: String,
}

#[task]
async fn build() -> u32 {
    7
}

#[task]
async fn ship(approval: &Approval) -> String {
    format!("shipped, approved by {}", approval.by)
}

#[task]
async fn never() -> bool {
    false
}

/// A build, an approval waited for at most `$timeout`, and a shipment that needs it.
macro_rules! release {
    ($timeout:tt) => {
        dag! {
            name = "release";
            built   = build();
            approve = signal::<Approval>() with timeout = $timeout;
            shipped = ship(approve);
        }
    };
}

fn approval(by: &str) -> Approval {
    Approval { by: by.into() }
}

/// `runner`, noting each `Waiting` event's node.
fn noting_waits(runner: Runner) -> (Runner, Arc<Mutex<Vec<String>>>) {
    let waits = Arc::new(Mutex::new(Vec::new()));
    let seen = waits.clone();
    let runner = runner.on_event(move |event, _| {
        if let Event::Waiting { node, .. } = event {
            seen.lock().unwrap().push((*node).to_owned());
        }
    });
    (runner, waits)
}

fn ran(report: &typedag::Report, node: &str) -> Option<Reason> {
    match report.node(node).unwrap().outcome {
        Outcome::Ran { reason, .. } => Some(reason),
        _ => None,
    }
}

fn failure(report: &typedag::Report, node: &str) -> typedag::Failure {
    match &report.node(node).unwrap().outcome {
        Outcome::Failed { attempts } => attempts.last().unwrap().clone(),
        other => panic!("`{node}` did not fail: {other:?}"),
    }
}

#[tokio::test]
async fn a_value_sent_by_the_program_ends_the_wait_and_later_runs_find_it_stored() {
    let store = MemoryStore::new();
    let (runner, waits) = noting_waits(Runner::new().store(store.clone()));
    let signals = runner.signals();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        signals.send("approve", approval("ada"));
    });
    let out = runner.run(release!("10s")).await.unwrap();
    assert_eq!(out.approve, approval("ada"));
    assert_eq!(out.shipped, "shipped, approved by ada");
    assert_eq!(*waits.lock().unwrap(), ["approve"]);

    // Stored: the next run does not wait (it would fail after 50 ms), nor runs anything.
    let (runner, waits) = noting_waits(Runner::new().store(store));
    let partial = runner.run_partial(release!("50ms")).await.unwrap();
    assert_eq!(partial.report.cached(), 3, "{}", partial.report);
    assert_eq!(partial.outputs.approve, Some(approval("ada")));
    assert!(waits.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_new_value_runs_again_what_depends_on_it_and_the_same_value_does_not() {
    let store = MemoryStore::new();
    let runner = Runner::new().store(store.clone());
    runner.signals().send("approve", approval("ada"));
    runner.run(release!("1s")).await.unwrap();

    runner.signals().send("approve", approval("grace"));
    let partial = runner.run_partial(release!("1s")).await.unwrap();
    assert_eq!(ran(&partial.report, "approve"), Some(Reason::InputChanged));
    assert_eq!(
        ran(&partial.report, "shipped"),
        Some(Reason::UpstreamChanged)
    );
    assert_eq!(ran(&partial.report, "built"), None);
    assert_eq!(
        partial.outputs.shipped.as_deref(),
        Some("shipped, approved by grace")
    );

    // The same value again: the signal takes it, and its dependents stay cached.
    runner.signals().send("approve", approval("grace"));
    let partial = runner.run_partial(release!("1s")).await.unwrap();
    assert!(ran(&partial.report, "approve").is_some());
    assert_eq!(ran(&partial.report, "shipped"), None);
}

#[tokio::test]
async fn a_value_of_another_type_fails_the_node_naming_both_and_is_not_kept() {
    let runner = Runner::in_memory();
    runner.signals().send("approve", "yes".to_owned());
    let partial = runner.run_partial(release!("1s")).await.unwrap();
    let error = failure(&partial.report, "approve");
    let message = error.message();
    assert!(
        message.contains("signal `approve` takes a `signal::Approval`")
            && message.contains("was sent a `alloc::string::String`"),
        "{message}"
    );
    assert!(matches!(
        partial.report.node("shipped").unwrap().outcome,
        Outcome::Skipped { .. }
    ));
    assert!(partial.outputs.approve.is_none());

    // Dropped, not kept: the next run waits again, here until its timeout.
    let partial = runner.run_partial(release!("50ms")).await.unwrap();
    let error = failure(&partial.report, "approve");
    assert_eq!(error.kind(), FailureKind::Timeout);
}

#[tokio::test]
async fn json_of_the_wrong_shape_fails_the_node_naming_the_type_and_the_right_shape_runs() {
    let runner = Runner::in_memory();
    runner.signals().send_json("approve", r#"{"who": "ada"}"#);
    let partial = runner.run_partial(release!("1s")).await.unwrap();
    let error = failure(&partial.report, "approve");
    assert!(
        error
            .message()
            .contains("signal `approve` takes a `signal::Approval`, and the JSON delivered is not one (missing field `by`"),
        "{}",
        error.message()
    );

    runner.signals().send_json("approve", r#"{"by": "ada"}"#);
    let out = runner.run(release!("1s")).await.unwrap();
    assert_eq!(out.approve, approval("ada"));
}

#[tokio::test]
async fn no_value_within_the_timeout_fails_the_node_and_skips_its_dependents() {
    let start = Instant::now();
    let partial = Runner::in_memory()
        .run_partial(release!("100ms"))
        .await
        .unwrap();
    let error = failure(&partial.report, "approve");
    assert_eq!(error.kind(), FailureKind::Timeout);
    assert!(
        error
            .message()
            .starts_with("no value for signal `approve` arrived within 100ms; send one"),
        "{}",
        error.message()
    );
    assert!(ran(&partial.report, "built").is_some());
    assert!(matches!(
        partial.report.node("shipped").unwrap().outcome,
        Outcome::Skipped { .. }
    ));
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_waiting_signal_holds_no_slot_of_the_run() {
    // One task at a time, and the signal comes first: if its wait held the only slot,
    // `built` could not run, and the approval sent once it has would never come.
    let runner = Runner::in_memory().concurrency(1);
    let signals = runner.signals();
    let runner = runner.on_event(move |event, _| {
        if let Event::Completed { node: "built", .. } = event {
            signals.send("approve", approval("ada"));
        }
    });
    let graph = dag! {
        approve = signal::<Approval>() with timeout = "5s";
        built   = build();
        shipped = ship(approve);
    };
    let start = Instant::now();
    let out = runner.run(graph).await.unwrap();
    assert_eq!(out.built, 7);
    assert_eq!(out.shipped, "shipped, approved by ada");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[task]
async fn broken() -> Result<u32, String> {
    tokio::time::sleep(Duration::from_millis(50)).await;
    Err("broken".into())
}

#[tokio::test]
async fn a_run_that_stops_at_a_failure_does_not_wait_for_its_signals() {
    let graph = dag! {
        approve = signal::<Approval>() with timeout = "10s";
        bad     = broken();
    };
    let start = Instant::now();
    let err = Runner::in_memory()
        .fail_fast(true)
        .run(graph)
        .await
        .unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(matches!(err, typedag::Error::Failed(_)), "{err}");
    let report = err.report().unwrap();
    assert_eq!(report.node("approve").unwrap().outcome, Outcome::Cancelled);
}

#[tokio::test]
async fn a_signal_under_a_condition_that_does_not_hold_does_not_wait() {
    let graph = dag! {
        needed  = never();
        approve = signal::<Approval>() if needed;
    };
    let start = Instant::now();
    let out = Runner::in_memory().run(graph).await.unwrap();
    assert_eq!(out.approve, None);
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn the_builder_adds_signals_with_a_timeout() {
    let mut graph = Graph::new("built-release");
    let approve = graph.signal::<Approval>("approve").unwrap();
    graph.configure(&approve).timeout(Duration::from_millis(50));
    let shipped = graph.add::<ship>("shipped", (approve,)).unwrap();
    let shipped = graph.keep(shipped);
    assert!(matches!(
        graph.signal::<Approval>("approve"),
        Err(typedag::GraphError::DuplicateId { .. })
    ));
    let runner = Runner::new().without_store();
    runner.signals().send("approve", approval("ada"));
    let out = runner.run(graph).await.unwrap();
    assert_eq!(out.get(&shipped), "shipped, approved by ada");
}

/// Writes `write` into `store` and waits until it is durable.
async fn write(store: &dyn typedag::Store, write: Write) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    store.write(
        write,
        Box::new(move |result| {
            let _ = tx.send(result);
        }),
    );
    rx.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_wait_survives_a_restart_and_takes_the_value_delivered_into_the_store_meanwhile() {
    let dir = TempDir::new("signal-restart");
    {
        // The first run stops while it waits (as a killed program would).
        let cancel = Cancel::new();
        let stop = cancel.clone();
        let runner = Runner::new()
            .store(EmbeddedStore::open(&dir.0).unwrap())
            .cancel_with(cancel)
            .on_event(move |event, _| {
                if matches!(event, Event::Waiting { .. }) {
                    stop.cancel();
                }
            });
        let err = runner.run(release!("10s")).await.unwrap_err();
        let report = err.report().expect("a cancelled run has a report");
        assert_eq!(report.node("approve").unwrap().outcome, Outcome::Cancelled);
        assert!(ran(report, "built").is_some());
    }
    {
        // No program runs: the value goes into the store, as `typedag signal` puts it.
        let store = EmbeddedStore::open(&dir.0).unwrap();
        let delivery = Delivery::new("approve", r#"{"by": "ada"}"#);
        write(
            &store,
            Write::Deliver {
                graph: "release".into(),
                delivery,
            },
        )
        .await;
        assert_eq!(store.deliveries("release").await.unwrap().len(), 1);
    }
    // The next run takes it without waiting, and it is taken once.
    let store = EmbeddedStore::open(&dir.0).unwrap();
    let (runner, waits) = noting_waits(Runner::new().store(store.clone()));
    let partial = runner.run_partial(release!("10s")).await.unwrap();
    assert_eq!(ran(&partial.report, "approve"), Some(Reason::NeverRan));
    assert_eq!(ran(&partial.report, "built"), None);
    assert_eq!(
        partial.outputs.shipped.as_deref(),
        Some("shipped, approved by ada")
    );
    assert!(waits.lock().unwrap().is_empty());
    assert!(store.deliveries("release").await.unwrap().is_empty());
    let again = Runner::new()
        .store(store)
        .run_partial(release!("50ms"))
        .await
        .unwrap();
    assert_eq!(again.report.cached(), 3, "{}", again.report);
}
