//! The runner: concurrency bounds, no layer barriers, failures and skips, retries, timeouts,
//! panics, freeing outputs, priorities.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use typedag::prelude::*;
use typedag::{FailureKind, Outcome};

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static MAX_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

#[task]
async fn gauge(i: u64) -> u64 {
    let now = IN_FLIGHT.fetch_add(1, Ordering::SeqCst) + 1;
    MAX_IN_FLIGHT.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2)).await;
    IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    i
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency_is_never_exceeded() {
    let mut graph = Graph::new("gauge");
    for i in 0..200 {
        graph.add::<gauge>(format!("g{i}"), (i,)).unwrap();
    }
    Runner::in_memory().concurrency(5).run(graph).await.unwrap();
    let max = MAX_IN_FLIGHT.load(Ordering::SeqCst);
    assert!(max <= 5, "{max} tasks ran at once with concurrency(5)");
    assert!(
        max >= 2,
        "independent tasks should overlap, saw at most {max}"
    );
}

#[task]
async fn sleep_then(ms: u64, tag: &'static str) -> String {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    tag.to_owned()
}

#[task]
async fn sleep_after(prev: &str, ms: u64) -> String {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    format!("{prev}-done")
}

#[tokio::test(start_paused = true)]
async fn each_node_starts_when_its_own_inputs_are_ready() {
    // Two chains with uneven steps: 100 ms then 10 ms, and 10 ms then 100 ms. Without layer
    // barriers the run takes the critical path, 110 ms; layer by layer it would take 200 ms.
    let graph = dag! {
        a1 = sleep_then(100, "a");
        b1 = sleep_then(10, "b");
        a2 = sleep_after(a1, 10);
        b2 = sleep_after(b1, 100);
    };
    let start = Instant::now();
    let out = Runner::in_memory().run(graph).await.unwrap();
    let took = start.elapsed();
    assert_eq!((out.a2.as_str(), out.b2.as_str()), ("a-done", "b-done"));
    assert!(
        took >= Duration::from_millis(110) && took < Duration::from_millis(120),
        "took {took:?}"
    );
}

#[task]
async fn ok(x: u64) -> u64 {
    x
}

#[task]
async fn broken(_x: &u64) -> Result<u64, String> {
    Err("the disk is on fire".to_owned())
}

#[task]
async fn boom(_x: &u64) -> u64 {
    panic!("index out of range in boom")
}

#[task]
async fn after(x: &u64) -> u64 {
    x + 1
}

#[tokio::test]
async fn a_failure_skips_its_dependents_and_independent_branches_finish() {
    let graph = dag! {
        name = "failures";
        root = ok(1);
        bad = broken(root);
        worse = after(bad);
        worst = after(worse);
        fine = after(root);
        finer = after(fine);
    };
    let err = Runner::in_memory().run(graph).await.unwrap_err();
    let report = err.report().expect("a failed run has a report");
    assert!(matches!(
        report.node("root").unwrap().outcome,
        Outcome::Ran { attempts: 1, .. }
    ));
    assert!(matches!(
        report.node("finer").unwrap().outcome,
        Outcome::Ran { .. }
    ));
    let failure = report.node("bad").unwrap().outcome.error().unwrap();
    assert_eq!(failure.message(), "the disk is on fire");
    assert_eq!(failure.kind(), FailureKind::Error);
    for id in ["worse", "worst"] {
        assert_eq!(
            report.node(id).unwrap().outcome,
            Outcome::Skipped {
                because: "bad".into()
            }
        );
    }
    let text = err.to_string();
    assert!(
        text.starts_with(
            "graph `failures`: 1 failed, 2 skipped, 0 cancelled, 3 ran and 0 cached of 6"
        ),
        "{text}"
    );
    assert!(
        text.contains("node `bad` (task `broken`) failed after 1 attempt: the disk is on fire"),
        "{text}"
    );
}

#[tokio::test]
async fn a_panicking_task_fails_its_node_and_the_runner_goes_on() {
    let graph = dag! {
        root = ok(1);
        bad = boom(root);
        fine = after(root);
    };
    let err = Runner::in_memory()
        .retries(1)
        .backoff(Backoff::fixed(Duration::ZERO))
        .run(graph)
        .await
        .unwrap_err();
    let report = err.report().unwrap();
    let Outcome::Failed { attempts } = &report.node("bad").unwrap().outcome else {
        panic!("{report:?}")
    };
    assert_eq!(
        attempts.len(),
        2,
        "a panic is a failed attempt, retried like any other"
    );
    assert_eq!(attempts[1].kind(), FailureKind::Panic);
    assert!(
        attempts[1].message().contains("index out of range in boom"),
        "{}",
        attempts[1]
    );
    assert!(matches!(
        report.node("fine").unwrap().outcome,
        Outcome::Ran { .. }
    ));
}

#[tokio::test]
async fn fail_fast_starts_nothing_new() {
    let graph = dag! {
        root = ok(1);
        bad = broken(root) with priority = 9;
        later = after(root);
    };
    let err = Runner::in_memory()
        .concurrency(1)
        .fail_fast(true)
        .run(graph)
        .await
        .unwrap_err();
    let report = err.report().unwrap();
    assert!(report.node("bad").unwrap().outcome.error().is_some());
    assert_eq!(report.node("later").unwrap().outcome, Outcome::Cancelled);
}

#[tokio::test(start_paused = true)]
async fn retries_follow_the_backoff_on_the_paused_clock() {
    static STARTED: Mutex<Option<Instant>> = Mutex::new(None);
    static SEEN: Mutex<Vec<Duration>> = Mutex::new(Vec::new());

    #[task(retries = 2, backoff = exponential("100ms"))]
    async fn flaky() -> Result<u32, String> {
        let start = *STARTED.lock().unwrap().get_or_insert_with(Instant::now);
        let mut seen = SEEN.lock().unwrap();
        seen.push(start.elapsed());
        if seen.len() < 3 {
            Err(format!("attempt {} failed", seen.len()))
        } else {
            Ok(seen.len() as u32)
        }
    }

    let graph = dag! { f = flaky(); };
    let out = Runner::in_memory().run(graph).await.unwrap();
    assert_eq!(out.f, 3);
    let ms = Duration::from_millis;
    // First attempt at 0, then 100 ms later, then 200 ms after that.
    assert_eq!(*SEEN.lock().unwrap(), [ms(0), ms(100), ms(300)]);
}

#[allow(
    clippy::ptr_arg,
    reason = "`retry_if` takes `&E`, and this task's `E` is `String`"
)]
fn is_transient(e: &String) -> bool {
    e.contains("transient")
}

#[tokio::test]
async fn retry_if_stops_on_permanent_errors() {
    static CALLS: AtomicUsize = AtomicUsize::new(0);

    #[task(retries = 5, backoff = fixed("1ms"), retry_if = is_transient)]
    async fn permanent() -> Result<u32, String> {
        CALLS.fetch_add(1, Ordering::SeqCst);
        Err("permanent: no such file".to_owned())
    }

    let graph = dag! { p = permanent(); };
    let err = Runner::in_memory().run(graph).await.unwrap_err();
    assert_eq!(
        CALLS.load(Ordering::SeqCst),
        1,
        "a permanent error is not retried"
    );
    let failure = err
        .report()
        .unwrap()
        .node("p")
        .unwrap()
        .outcome
        .error()
        .unwrap()
        .clone();
    assert!(!failure.is_retryable());
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_attempt_fails_and_is_retried() {
    static CALLS: AtomicUsize = AtomicUsize::new(0);

    #[task(timeout = "50ms", retries = 1, backoff = fixed("1ms"))]
    async fn slow_then_fast() -> u32 {
        if CALLS.fetch_add(1, Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
        7
    }

    let graph = dag! { s = slow_then_fast(); };
    let start = Instant::now();
    let out = Runner::in_memory().run(graph).await.unwrap();
    assert_eq!(out.s, 7);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "the slow attempt was cut at 50 ms"
    );

    CALLS.store(0, Ordering::SeqCst);
    let graph = dag! { s = slow_then_fast() with retries = 0; };
    let err = Runner::in_memory().run(graph).await.unwrap_err();
    let failure = err
        .report()
        .unwrap()
        .node("s")
        .unwrap()
        .outcome
        .error()
        .unwrap()
        .clone();
    assert_eq!(failure.kind(), FailureKind::Timeout);
    assert_eq!(failure.message(), "timed out after 50ms");
}

static BIG_DROPPED: AtomicBool = AtomicBool::new(false);

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(crate = "typedag::serde")]
struct Big(Vec<u8>);

impl Drop for Big {
    fn drop(&mut self) {
        BIG_DROPPED.store(true, Ordering::SeqCst);
    }
}

use typedag::serde;

#[task]
async fn big() -> Big {
    Big(vec![0; 1 << 20])
}

#[task]
async fn measure(b: &Big) -> usize {
    b.0.len()
}

#[task]
async fn was_big_dropped(n: &usize) -> bool {
    let _ = n;
    BIG_DROPPED.load(Ordering::SeqCst)
}

#[tokio::test]
async fn an_output_is_freed_once_no_pending_node_needs_it() {
    let mut graph = Graph::new("free");
    let b = graph.add::<big>("big", ()).unwrap();
    let n = graph.add::<measure>("measure", (b,)).unwrap();
    let dropped = graph.add::<was_big_dropped>("check", (n,)).unwrap();
    let dropped = graph.keep(dropped);
    let out = Runner::in_memory().run(graph).await.unwrap();
    assert!(
        *out.get(&dropped),
        "`big` was still held after its only reader finished"
    );
}

static ORDER: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

#[task]
async fn record(tag: &'static str) {
    ORDER.lock().unwrap().push(tag);
}

#[task(priority = 5)]
async fn urgent(tag: &'static str) {
    ORDER.lock().unwrap().push(tag);
}

#[tokio::test]
async fn higher_priority_first_then_declaration_order() {
    let graph = dag! {
        a = record("a");
        b = record("b");
        c = urgent("c");
        d = record("d") with priority = 9;
        e = record("e");
    };
    Runner::in_memory().concurrency(1).run(graph).await.unwrap();
    assert_eq!(*ORDER.lock().unwrap(), ["d", "c", "a", "b", "e"]);
}

static LIMITED_NOW: AtomicUsize = AtomicUsize::new(0);
static LIMITED_MAX: AtomicUsize = AtomicUsize::new(0);

#[task(limit = 3)]
async fn rate_limited(i: u64) -> u64 {
    let now = LIMITED_NOW.fetch_add(1, Ordering::SeqCst) + 1;
    LIMITED_MAX.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2)).await;
    LIMITED_NOW.fetch_sub(1, Ordering::SeqCst);
    i
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_limit_is_never_exceeded() {
    let mut graph = Graph::new("limit");
    let mut all = Vec::new();
    for i in 0..40 {
        all.push(graph.add::<rate_limited>(format!("r{i}"), (i,)).unwrap());
        graph.add::<ok>(format!("free{i}"), (i,)).unwrap();
    }
    Runner::in_memory()
        .concurrency(10)
        .run(graph)
        .await
        .unwrap();
    let max = LIMITED_MAX.load(Ordering::SeqCst);
    assert!(max <= 3, "{max} nodes of a `limit = 3` task ran at once");
    assert!(
        max >= 2,
        "limited nodes should still overlap, saw at most {max}"
    );
}

#[tokio::test]
async fn after_a_failure_the_completed_outputs_stay_reachable() {
    let graph = dag! {
        root = ok(1);
        bad = broken(root);
        worse = after(bad);
        fine = after(root);
    };
    let partial = Runner::in_memory().run_partial(graph).await.unwrap();
    assert_eq!(
        (partial.outputs.root, partial.outputs.fine),
        (Some(1), Some(2))
    );
    assert_eq!((partial.outputs.bad, partial.outputs.worse), (None, None));
    assert!(
        partial
            .report
            .node("bad")
            .unwrap()
            .outcome
            .error()
            .is_some()
    );

    let mut graph = Graph::new("partial-builder");
    let root = graph.add::<ok>("root", (1,)).unwrap();
    let bad = graph.add::<broken>("bad", (root,)).unwrap();
    let fine = graph.add::<after>("fine", (root,)).unwrap();
    let (bad, fine) = (graph.keep(bad), graph.keep(fine));
    let partial = Runner::in_memory().run_partial(graph).await.unwrap();
    assert_eq!(partial.outputs.try_get(&fine), Some(&2));
    assert_eq!(partial.outputs.try_get(&bad), None);
}
