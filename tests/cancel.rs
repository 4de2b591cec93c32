//! Cancellation: in-flight attempts are dropped, nothing new starts, the report says cancelled.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use typedag::prelude::*;
use typedag::{Cancel, Outcome};

#[task]
async fn quick(x: u64) -> u64 {
    x
}

#[task]
async fn slow(x: u64) -> u64 {
    tokio::time::sleep(Duration::from_secs(10)).await;
    x
}

#[task]
async fn after(x: &u64) -> u64 {
    x + 1
}

#[tokio::test(start_paused = true)]
async fn cancelling_drops_attempts_in_flight_and_reports_every_node() {
    let cancel = Cancel::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        trigger.cancel();
    });
    let graph = dag! {
        done = quick(1);
        long = slow(2);
        next = after(long);
    };
    let start = Instant::now();
    let err = Runner::in_memory()
        .cancel_with(cancel)
        .run(graph)
        .await
        .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "the 10 s attempt was dropped"
    );
    let report = err.report().expect("a cancelled run has a report");
    assert!(matches!(
        report.node("done").unwrap().outcome,
        Outcome::Ran { .. }
    ));
    assert_eq!(report.node("long").unwrap().outcome, Outcome::Cancelled);
    assert_eq!(report.node("next").unwrap().outcome, Outcome::Cancelled);
    assert!(err.to_string().starts_with("run cancelled: "), "{err}");
}

static STARTED_AFTER_CANCEL: AtomicUsize = AtomicUsize::new(0);
static HANDLE: OnceLock<Cancel> = OnceLock::new();

#[task]
async fn cancels(x: u64) -> u64 {
    HANDLE.get().unwrap().cancel();
    x
}

#[task]
async fn must_not_start(x: &u64) -> u64 {
    STARTED_AFTER_CANCEL.fetch_add(1, Ordering::SeqCst);
    *x
}

#[tokio::test]
async fn nothing_new_starts_after_a_cancel() {
    let cancel = HANDLE.get_or_init(Cancel::new).clone();
    let graph = dag! {
        a = cancels(1);
        b = must_not_start(a);
        c = must_not_start(b);
    };
    let err = Runner::in_memory()
        .cancel_with(cancel)
        .run(graph)
        .await
        .unwrap_err();
    assert!(matches!(err, typedag::Error::Cancelled(_)), "{err}");
    assert_eq!(STARTED_AFTER_CANCEL.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_handle_cancelled_before_the_run_runs_nothing() {
    let cancel = Cancel::new();
    cancel.cancel();
    let graph = dag! { a = quick(1); };
    let err = Runner::in_memory()
        .cancel_with(cancel)
        .run(graph)
        .await
        .unwrap_err();
    assert_eq!(
        err.report().unwrap().node("a").unwrap().outcome,
        Outcome::Cancelled
    );
}
