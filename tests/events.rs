//! Progress events: one per state change, in order, with running totals.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use typedag::prelude::*;
use typedag::{Event, Totals};

#[task]
async fn ok(x: u64) -> u64 {
    x
}

static FLAKY_CALLS: AtomicU32 = AtomicU32::new(0);

#[task(retries = 1, backoff = fixed("1ms"))]
async fn flaky(x: &u64) -> Result<u64, String> {
    if FLAKY_CALLS.fetch_add(1, Ordering::SeqCst) == 0 {
        Err("first try fails".into())
    } else {
        Ok(*x)
    }
}

#[task]
async fn broken(_x: &u64) -> Result<u64, String> {
    Err("always fails".into())
}

#[task]
async fn after(x: &u64) -> u64 {
    x + 1
}

#[tokio::test]
async fn every_state_change_is_an_event_with_totals() {
    let seen: Arc<Mutex<Vec<(String, Totals)>>> = Arc::default();
    let sink = seen.clone();
    let graph = dag! {
        a = ok(1);
        b = flaky(a);
        c = broken(a);
        d = after(c);
    };
    let runner = Runner::in_memory()
        .concurrency(1)
        .on_event(move |event, totals| {
            let line = match event {
                Event::Started { node, attempt, .. } => format!("started {node} #{attempt}"),
                Event::Retrying {
                    node,
                    attempt,
                    error,
                    ..
                } => format!("retrying {node} after #{attempt}: {error}"),
                Event::Completed { node, attempts, .. } => {
                    format!("completed {node} in {attempts}")
                }
                Event::Failed { node, error, .. } => format!("failed {node}: {error}"),
                Event::Skipped { node, because, .. } => format!("skipped {node} because {because}"),
                Event::Cancelled { node, .. } => format!("cancelled {node}"),
                _ => format!("other {}", event.node()),
            };
            sink.lock().unwrap().push((line, *totals));
        });
    let err = runner.run(graph).await.unwrap_err();
    assert!(
        err.to_string().contains("node `c` (task `broken`)"),
        "{err}"
    );

    let seen = seen.lock().unwrap();
    let lines: Vec<&str> = seen.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        lines,
        [
            "started a #1",
            "completed a in 1",
            "started b #1",
            "retrying b after #1: first try fails",
            "started b #2",
            "completed b in 2",
            "started c #1",
            "failed c: always fails",
            "skipped d because c",
        ]
    );
    let last = seen.last().unwrap().1;
    assert_eq!(
        (
            last.total,
            last.running,
            last.completed,
            last.failed,
            last.skipped
        ),
        (4, 0, 2, 1, 1)
    );
    assert_eq!(last.finished(), last.total);
    let during_b = seen[4].1;
    assert_eq!(
        (during_b.running, during_b.completed),
        (1, 1),
        "a retry is still one running node"
    );
}

#[tokio::test]
async fn a_callback_that_panics_does_not_stop_the_run() {
    // With the embedded store, `Completed` is sent from the store's writer thread: a panic
    // there must not kill it, or the run would wait forever.
    let dir = std::env::temp_dir().join(format!("typedag-events-panic-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let runner = Runner::new()
        .store(EmbeddedStore::open(&dir).unwrap())
        .on_event(|event, _| {
            if matches!(event, Event::Completed { .. }) {
                panic!("a callback that panics");
            }
        });
    let graph = dag! {
        name = "panicky";
        a = ok(1);
        b = ok(2);
    };
    let out = tokio::time::timeout(std::time::Duration::from_secs(20), runner.run(graph))
        .await
        .expect("the run ends")
        .unwrap();
    assert_eq!((out.a, out.b), (1, 2));
    let _ = std::fs::remove_dir_all(&dir);
}
