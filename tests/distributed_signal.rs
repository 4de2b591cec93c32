//! Signals in distributed runs against a real PostgreSQL: a signal is waited for by one
//! process, its value taken once, never another graph's; a value sent through one
//! process's handle reaches the process that waits; a wait whose process dies is taken over;
//! a signal that gets no value fails in every process and holds no room while it waits; a
//! run that stops at a failure no longer waits.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::postgres::Cluster;
use support::report::outcomes;
use typedag::PostgresStore;
use typedag::prelude::*;
use typedag::store::Store as _;

static SIGNALLED: AtomicUsize = AtomicUsize::new(0);

/// Doubles a signal's value, counting its runs in this test binary.
#[task]
async fn counted_double(x: &u64) -> u64 {
    SIGNALLED.fetch_add(1, Ordering::SeqCst);
    x * 2
}

/// Delivers `json` to signal `signal` of `graph` through the store, as `typedag signal` or
/// another process would.
async fn deliver(store: &PostgresStore, graph: &str, signal: &str, json: &str) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    typedag::store::Store::write(
        store,
        typedag::store::Write::Deliver {
            graph: graph.into(),
            delivery: typedag::store::Delivery::new(signal, json),
        },
        Box::new(move |result| {
            let _ = tx.send(result);
        }),
    );
    rx.await.unwrap().unwrap();
}

/// A worker of run `run` that logs, as `"{who} {event} {node}"`, when a node starts to wait,
/// completes, is found cached or fails.
fn logging_worker(
    store: &PostgresStore,
    run: &str,
    who: &str,
    log: &Arc<Mutex<Vec<String>>>,
) -> Runner {
    let (who, log) = (who.to_owned(), log.clone());
    Runner::new()
        .store(store.clone())
        .distributed(run)
        .concurrency(1)
        .on_event(move |event, _| {
            let kind = match event {
                typedag::Event::Waiting { .. } => "waits",
                typedag::Event::Completed { .. } => "completed",
                typedag::Event::Cached { .. } => "cached",
                typedag::Event::Failed { .. } => "failed",
                _ => return,
            };
            let line = format!("{who} {kind} {}", event.node());
            log.lock().unwrap().push(line);
        })
}

/// The lines of `log` that end with `what`.
fn logged(log: &Arc<Mutex<Vec<String>>>, what: &str) -> Vec<String> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|l| l.ends_with(what))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_is_waited_for_by_one_worker_and_its_value_taken_once() {
    let url = Cluster::shared().database("signal");
    let store = PostgresStore::connect(&url).await.unwrap();
    // Another process's connection, which delivers the value while the workers run.
    let other = PostgresStore::connect_with(&url, Duration::from_secs(59))
        .await
        .unwrap();
    let graph = || {
        dag! {
            name = "approval";
            x = signal::<u64>() with timeout = "20s";
            y = counted_double(x);
            d = plus(7, 1);
        }
    };
    let log = Arc::new(Mutex::new(Vec::new()));
    let one = logging_worker(&store, "first", "one", &log);
    let two = logging_worker(&store, "first", "two", &log);
    let sender = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        deliver(&other, "approval", "x", "21").await;
    });
    let (a, b) = tokio::join!(one.run_partial(graph()), two.run_partial(graph()));
    sender.await.unwrap();
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!((a.outputs.y, b.outputs.y), (Some(42), Some(42)));
    assert_eq!(
        SIGNALLED.load(Ordering::SeqCst),
        1,
        "the dependent ran once"
    );
    assert_eq!(outcomes(&a.report), outcomes(&b.report));
    assert_eq!(logged(&log, "waits x").len(), 1, "{log:?}");
    assert_eq!(logged(&log, "completed x").len(), 1, "{log:?}");
    assert_eq!(logged(&log, "completed y").len(), 1, "{log:?}");
    assert!(store.deliveries("approval").await.unwrap().is_empty());

    // A rerun finds the value stored, and waits for nothing.
    log.lock().unwrap().clear();
    let again = logging_worker(&store, "second", "one", &log)
        .run_partial(graph())
        .await
        .unwrap();
    assert_eq!(again.outputs.y, Some(42));
    assert_eq!(again.report.node("x").unwrap().outcome, Outcome::Cached);
    assert_eq!(SIGNALLED.load(Ordering::SeqCst), 1);
    assert!(logged(&log, "waits x").is_empty(), "{log:?}");

    // A new value, delivered before the next run, is taken by it and runs its dependent.
    deliver(&store, "approval", "x", "50").await;
    let third = logging_worker(&store, "third", "one", &log)
        .run_partial(graph())
        .await
        .unwrap();
    assert_eq!(third.outputs.y, Some(100));
    assert_eq!(SIGNALLED.load(Ordering::SeqCst), 2);
    assert!(store.deliveries("approval").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_that_gets_no_value_fails_in_every_worker_and_holds_no_room_while_it_waits() {
    let url = Cluster::shared().database("signal-timeout");
    let store = PostgresStore::connect(&url).await.unwrap();
    let graph = || {
        dag! {
            name = "late";
            x = signal::<u64>() with timeout = "1s";
            y = plus(x, 1);
            d = plus(7, 1);
        }
    };
    let log = Arc::new(Mutex::new(Vec::new()));
    let one = logging_worker(&store, "late", "one", &log);
    let two = logging_worker(&store, "late", "two", &log);
    let (a, b) = tokio::join!(one.run_partial(graph()), two.run_partial(graph()));
    for partial in [a.unwrap(), b.unwrap()] {
        let report = &partial.report;
        let x = report.node("x").unwrap();
        assert!(matches!(x.outcome, Outcome::Failed { .. }), "{report}");
        let message = x.outcome.error().map(typedag::Failure::message).unwrap();
        assert!(
            message.contains("no value for signal `x` arrived within 1s"),
            "{message}"
        );
        assert_eq!(
            report.node("y").unwrap().outcome,
            Outcome::Skipped {
                because: "x".into()
            },
            "{report}"
        );
        assert_eq!(partial.outputs.d, Some(8));
    }
    // One worker that may run one node at a time runs `d` while `x` waits.
    log.lock().unwrap().clear();
    let solo = logging_worker(&store, "solo", "one", &log)
        .run_partial(dag! {
            name = "late-solo";
            x = signal::<u64>() with timeout = "1s";
            d = plus(9, 1);
        })
        .await
        .unwrap();
    assert_eq!(solo.outputs.d, Some(10));
    let log = log.lock().unwrap().clone();
    let at = |line: &str| log.iter().position(|l| l == line);
    let d = at("one completed d").or_else(|| at("one cached d"));
    assert!(d.is_some() && d < at("one failed x"), "{log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_graphs_with_signals_of_one_type_never_share_a_value() {
    let url = Cluster::shared().database("signal-graphs");
    let store = PostgresStore::connect(&url).await.unwrap();
    let left = || {
        dag! {
            name = "left";
            x = signal::<u64>() with timeout = "2s";
            y = plus(x, 1);
        }
    };
    let right = || {
        dag! {
            name = "right";
            x = signal::<u64>() with timeout = "2s";
            y = plus(x, 1);
        }
    };
    deliver(&store, "left", "x", "5").await;
    let one = Runner::new().store(store.clone()).distributed("left-1");
    let two = Runner::new().store(store.clone()).distributed("right-1");
    let (l, r) = tokio::join!(one.run_partial(left()), two.run_partial(right()));
    let (l, r) = (l.unwrap(), r.unwrap());
    assert_eq!(l.outputs.y, Some(6));
    assert!(
        matches!(r.report.node("x").unwrap().outcome, Outcome::Failed { .. }),
        "the value of `left` is not `right`'s: {}",
        r.report
    );
    // `right` takes its own value, the same JSON, when it gets one.
    deliver(&store, "right", "x", "5").await;
    let r = Runner::new()
        .store(store.clone())
        .distributed("right-2")
        .run_partial(right())
        .await
        .unwrap();
    assert_eq!(r.outputs.y, Some(6));
    assert!(
        matches!(r.report.node("x").unwrap().outcome, Outcome::Ran { .. }),
        "{}",
        r.report
    );
    assert!(store.deliveries("right").await.unwrap().is_empty());
}

#[task]
async fn tripled(x: &u64) -> u64 {
    x * 3
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_sent_through_one_workers_handle_reaches_the_worker_that_waits() {
    let url = Cluster::shared().database("signal-handle");
    let store = PostgresStore::connect(&url).await.unwrap();
    let graph = || {
        dag! {
            name = "handoff";
            x = signal::<u64>() with timeout = "20s";
            y = tripled(x);
        }
    };
    let log = Arc::new(Mutex::new(Vec::new()));
    // Worker two holds the wait before worker one starts; the value goes through one.
    let two = logging_worker(&store, "handoff-1", "two", &log);
    let waiting = tokio::spawn(async move { two.run_partial(graph()).await });
    let mut tries = 0;
    while logged(&log, "two waits x").is_empty() {
        tries += 1;
        assert!(tries < 500, "worker two never waited: {log:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let one = logging_worker(&store, "handoff-1", "one", &log);
    one.signals().send("x", 7u64);
    let a = one.run_partial(graph()).await.unwrap();
    let b = waiting.await.unwrap().unwrap();
    assert_eq!((a.outputs.y, b.outputs.y), (Some(21), Some(21)));
    assert_eq!(outcomes(&a.report), outcomes(&b.report));
    assert_eq!(logged(&log, "completed x"), ["two completed x"], "{log:?}");
    assert_eq!(logged(&log, "completed y").len(), 1, "{log:?}");
    assert!(store.deliveries("handoff").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_whose_process_dies_is_taken_over_when_its_lease_runs_out() {
    let url = Cluster::shared().database("signal-lease");
    let store = PostgresStore::connect(&url).await.unwrap();
    let graph = || {
        dag! {
            name = "takeover";
            x = signal::<u64>() with timeout = "20s";
            y = tripled(x);
        }
    };
    let log = Arc::new(Mutex::new(Vec::new()));
    let lease = Duration::from_millis(600);
    let waits = |who: &str| {
        let line = format!("{who} waits x");
        let log = log.clone();
        async move {
            let mut tries = 0;
            while !log.lock().unwrap().contains(&line) {
                tries += 1;
                assert!(tries < 500, "no `{line}`: {log:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    // Worker one claims the signal and dies as it waits: its claim is neither renewed nor
    // let go.
    let one = logging_worker(&store, "takeover-1", "one", &log).lease(lease);
    let dying = tokio::spawn(async move { one.run_partial(graph()).await });
    waits("one").await;
    dying.abort();
    let two = logging_worker(&store, "takeover-1", "two", &log).lease(lease);
    let survivor = tokio::spawn(async move { two.run_partial(graph()).await });
    waits("two").await;
    deliver(&store, "takeover", "x", "4").await;
    let b = survivor.await.unwrap().unwrap();
    assert_eq!(b.outputs.y, Some(12));
    assert!(
        matches!(b.report.node("x").unwrap().outcome, Outcome::Ran { .. }),
        "{}",
        b.report
    );
    assert!(store.deliveries("takeover").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_stops_at_a_failure_no_longer_waits_for_a_signal() {
    let url = Cluster::shared().database("signal-stop");
    let store = PostgresStore::connect(&url).await.unwrap();
    let graph = || {
        dag! {
            name = "stop";
            x = signal::<u64>();
            y = tripled(x);
            a = fragile(true);
        }
    };
    let worker = || {
        Runner::new()
            .store(store.clone())
            .distributed("stop-1")
            .fail_fast(true)
    };
    let start = Instant::now();
    let (one, two) = (worker(), worker());
    let (a, b) = tokio::join!(one.run_partial(graph()), two.run_partial(graph()));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(outcomes(&a.report), outcomes(&b.report));
    assert!(
        matches!(a.report.node("a").unwrap().outcome, Outcome::Failed { .. }),
        "{}",
        a.report
    );
    assert_eq!(
        a.report.node("x").unwrap().outcome,
        Outcome::Cancelled,
        "{}",
        a.report
    );
}

#[task]
async fn plus(x: &u64, k: u64) -> u64 {
    x + k
}

/// Fails when asked to: the failure a run stops at.
#[task]
async fn fragile(fail: bool) -> Result<u64, String> {
    if fail {
        Err("the disk is full".into())
    } else {
        Ok(1)
    }
}
