//! The cache: a second run loads what it can, a change re-runs exactly what it invalidates,
//! and every run says why each node ran.

use std::marker::PhantomData;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use typedag::prelude::*;
use typedag::{BoxFuture, Codec, Failure, TaskOptions, serde};

#[path = "support/parity_graph.rs"]
mod parity_graph;
use parity_graph::{describe, graph, load, parity};

/// The reason each node ran (or `None` if it was cached), by node id.
fn why(report: &typedag::Report) -> Vec<(String, Option<Reason>)> {
    report
        .nodes()
        .iter()
        .map(|n| {
            let reason = match &n.outcome {
                Outcome::Ran { reason, .. } => Some(*reason),
                Outcome::Cached => None,
                other => panic!("node {} did not complete: {other:?}", n.id),
            };
            (n.id.clone(), reason)
        })
        .collect()
}

fn ran(list: &[(String, Option<Reason>)]) -> Vec<&str> {
    list.iter()
        .filter(|(_, r)| r.is_some())
        .map(|(id, _)| id.as_str())
        .collect()
}

#[tokio::test]
async fn a_second_run_is_all_cached_and_gives_the_same_outputs() {
    let runner = Runner::in_memory();
    let first = runner.run_partial(graph!(4, "four")).await.unwrap();
    assert_eq!(
        why(&first.report),
        [
            ("number".into(), Some(Reason::NeverRan)),
            ("even".into(), Some(Reason::NeverRan)),
            ("text".into(), Some(Reason::NeverRan)),
        ]
    );
    let second = runner.run_partial(graph!(4, "four")).await.unwrap();
    assert_eq!(second.report.cached(), 3);
    assert_eq!(second.report.ran(), 0);
    assert_eq!(second.outputs.text.as_deref(), Some("four: even"));
    assert_eq!(second.outputs.number, Some(4));
}

#[tokio::test]
async fn a_changed_input_reruns_its_node_and_what_its_new_output_reaches() {
    let runner = Runner::in_memory();
    runner.run(graph!(4, "four")).await.unwrap();

    // 4 → 5 changes every output downstream.
    let run = runner.run_partial(graph!(5, "four")).await.unwrap();
    assert_eq!(
        why(&run.report),
        [
            ("number".into(), Some(Reason::InputChanged)),
            ("even".into(), Some(Reason::UpstreamChanged)),
            ("text".into(), Some(Reason::UpstreamChanged)),
        ]
    );

    // A new label touches only the last node.
    let run = runner.run_partial(graph!(5, "five")).await.unwrap();
    assert_eq!(ran(&why(&run.report)), ["text"]);
    assert_eq!(
        run.report.node("text").unwrap().outcome,
        Outcome::Ran {
            attempts: 1,
            duration: match run.report.node("text").unwrap().outcome {
                Outcome::Ran { duration, .. } => duration,
                _ => unreachable!(),
            },
            reason: Reason::InputChanged
        }
    );
}

#[tokio::test]
async fn early_cutoff_a_rerun_with_the_same_output_leaves_dependents_cached() {
    let runner = Runner::in_memory();
    runner.run(graph!(4, "n")).await.unwrap();
    // 6 is even too: `number` and `even` re-run, `even` gives the same bytes, `text` stays.
    let run = runner.run_partial(graph!(6, "n")).await.unwrap();
    let list = why(&run.report);
    assert_eq!(ran(&list), ["number", "even"]);
    assert_eq!(list[1].1, Some(Reason::UpstreamChanged));
    assert_eq!(run.outputs.text.as_deref(), Some("n: even"));
}

#[tokio::test]
async fn events_say_cached_and_why_a_node_starts() {
    let runner = Runner::in_memory();
    runner.run(graph!(1, "x")).await.unwrap();
    let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let runner = runner.on_event(move |event, totals| {
        let line = match event {
            Event::Cached { node, .. } => format!("cached {node}"),
            Event::Started { node, reason, .. } => format!("started {node}: {reason}"),
            Event::Completed { node, .. } => format!("completed {node}"),
            _ => return,
        };
        log.lock().unwrap().push((line, totals.cached));
    });
    runner.run(graph!(1, "y")).await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("cached number".to_owned(), 1),
            ("cached even".to_owned(), 2),
            ("started text: input changed".to_owned(), 2),
            ("completed text".to_owned(), 2),
        ]
    );
}

mod before {
    use typedag::prelude::*;

    #[task]
    pub async fn step(x: u32) -> u32 {
        x + 1
    }

    #[task(version = "1")]
    pub async fn pinned(x: u32) -> u32 {
        x + 1
    }

    #[derive(Default, typedag::serde::Serialize, typedag::serde::Deserialize)]
    #[serde(crate = "typedag::serde")]
    pub struct Shape {
        pub a: u32,
    }

    #[task]
    pub async fn shaped() -> Shape {
        Shape::default()
    }
}

mod after {
    use typedag::prelude::*;

    #[task]
    pub async fn step(x: u32) -> u32 {
        x + 2
    }

    #[task(version = "1")]
    pub async fn pinned(x: u32) -> u32 {
        x + 2
    }

    #[derive(Default, typedag::serde::Serialize, typedag::serde::Deserialize)]
    #[serde(crate = "typedag::serde")]
    pub struct Shape {
        pub a: u32,
        pub b: String,
    }

    #[task]
    pub async fn shaped() -> Shape {
        Shape::default()
    }
}

/// `After`'s code at `Before`'s path: the task of `before` as the next build of the program,
/// with `after`'s body, would see it. One test binary cannot hold two versions of one path,
/// and a task moved to another module is another task.
struct Edited<Before, After>(PhantomData<fn() -> (Before, After)>);

impl<Before: Task, After: Task> Task for Edited<Before, After> {
    type Output = After::Output;
    const NAME: &'static str = After::NAME;
    const PATH: &'static str = Before::PATH;
    const FINGERPRINT: &'static str = After::FINGERPRINT;

    fn options() -> TaskOptions {
        After::options()
    }

    fn codec() -> Option<Codec<After::Output>> {
        After::codec()
    }

    type Params = After::Params;
    type Wiring = After::Wiring;
    const WIRING: After::Wiring = After::WIRING;

    fn call(inputs: typedag::__private::Inputs) -> BoxFuture<Result<After::Output, Failure>> {
        After::call(inputs)
    }
}

#[allow(non_camel_case_types)]
type edited_step = Edited<before::step, after::step>;
#[allow(non_camel_case_types)]
type edited_pinned = Edited<before::pinned, after::pinned>;
#[allow(non_camel_case_types)]
type edited_shaped = Edited<before::shaped, after::shaped>;

#[tokio::test]
async fn an_edited_task_body_reruns_unless_its_version_pins_it() {
    let runner = Runner::in_memory();
    runner
        .run(dag! { name = "edits"; s = before::step(1); p = before::pinned(1); })
        .await
        .unwrap();
    let run = runner
        .run_partial(dag! { name = "edits"; s = edited_step(1); p = edited_pinned(1); })
        .await
        .unwrap();
    assert_eq!(
        why(&run.report),
        [("s".into(), Some(Reason::CodeChanged)), ("p".into(), None)]
    );
    assert_eq!(run.outputs.s, Some(3));
    assert_eq!(
        run.outputs.p,
        Some(2),
        "pinned by `version`: the stored output"
    );
}

#[tokio::test]
async fn a_changed_output_type_reruns_instead_of_misreading_the_bytes() {
    let runner = Runner::in_memory();
    runner
        .run(dag! { name = "shapes"; v = before::shaped(); })
        .await
        .unwrap();
    let run = runner
        .run_partial(dag! { name = "shapes"; v = edited_shaped(); })
        .await
        .unwrap();
    assert_eq!(
        why(&run.report),
        [("v".into(), Some(Reason::OutputTypeChanged))]
    );
}

static VOLATILE_RUNS: AtomicUsize = AtomicUsize::new(0);

#[task(cache = false)]
async fn volatile() -> u64 {
    VOLATILE_RUNS.fetch_add(1, Ordering::SeqCst);
    7
}

#[tokio::test]
async fn an_uncached_task_runs_every_time_and_its_dependents_follow_its_bytes() {
    let runner = Runner::in_memory();
    let g = || dag! { name = "volatile"; v = volatile(); p = parity(v); n = load(3); };
    runner.run(g()).await.unwrap();
    let run = runner.run_partial(g()).await.unwrap();
    // `volatile` runs again; it gives the same bytes, so `parity` stays cached.
    assert_eq!(
        why(&run.report),
        [
            ("v".into(), Some(Reason::CachingOff)),
            ("p".into(), None),
            ("n".into(), None),
        ]
    );
    assert_eq!(VOLATILE_RUNS.load(Ordering::SeqCst), 2);
    assert_eq!(run.outputs.p, Some(false));
}

/// Has no serde impls: an uncached task's only option.
#[derive(Clone, Debug)]
struct Handle(u64);

#[task(cache = false)]
async fn connect() -> Handle {
    Handle(1)
}

#[task]
async fn use_handle(h: &Handle) -> u64 {
    h.0
}

#[tokio::test]
async fn the_dependents_of_an_output_without_serde_run_every_time() {
    let runner = Runner::in_memory();
    let g = || dag! { name = "handle"; h = connect(); u = use_handle(h); };
    runner.run(g()).await.unwrap();
    let run = runner.run_partial(g()).await.unwrap();
    assert_eq!(
        why(&run.report),
        [
            ("h".into(), Some(Reason::CachingOff)),
            ("u".into(), Some(Reason::UpstreamNotCached)),
        ]
    );
}

static FLAKY_FAILS: AtomicUsize = AtomicUsize::new(1);

#[task]
async fn flaky(x: &u64) -> Result<u64, String> {
    if FLAKY_FAILS
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return Err("the service is down".into());
    }
    Ok(*x)
}

#[tokio::test]
async fn a_failure_is_recorded_and_the_next_run_retries_only_what_is_left() {
    let store = MemoryStore::new();
    let runner = Runner::new().store(store.clone());
    let g = || dag! { name = "flaky"; a = load(2); b = flaky(a); c = parity(b); };
    let first = runner.run_partial(g()).await.unwrap();
    assert!(matches!(
        first.report.node("b").unwrap().outcome,
        Outcome::Failed { .. }
    ));
    assert_eq!(store.len(), 2, "a's output and b's failure are recorded");

    let second = runner.run_partial(g()).await.unwrap();
    assert_eq!(
        why(&second.report),
        [
            ("a".into(), None),
            ("b".into(), Some(Reason::FailedBefore)),
            ("c".into(), Some(Reason::NeverRan)),
        ]
    );
    assert_eq!(second.outputs.c, Some(true));
}

#[tokio::test]
async fn two_graphs_with_the_same_node_ids_share_a_store_safely() {
    let runner = Runner::in_memory();
    let one = runner
        .run(dag! { name = "one"; n = load(1); })
        .await
        .unwrap();
    let two = runner
        .run(dag! { name = "two"; n = load(2); })
        .await
        .unwrap();
    assert_eq!((one.n, two.n), (1, 2));
    let again = runner
        .run_partial(dag! { name = "one"; n = load(1); })
        .await
        .unwrap();
    assert_eq!(again.report.cached(), 1);
    assert_eq!(again.outputs.n, Some(1));
}

#[tokio::test]
async fn explain_says_what_a_run_would_do_without_running() {
    let runner = Runner::in_memory();
    let plan = runner.explain(&graph!(4, "a")).await.unwrap();
    assert!(
        plan.nodes()
            .all(|(_, _, s)| *s == NodeState::Runs(Reason::NeverRan))
    );

    runner.run(graph!(4, "a")).await.unwrap();
    let plan = runner.explain(&graph!(4, "a")).await.unwrap();
    assert!(
        plan.nodes().all(|(_, _, s)| *s == NodeState::Cached),
        "{plan}"
    );

    let plan = runner.explain(&graph!(8, "b")).await.unwrap();
    assert_eq!(
        plan.node("number"),
        Some(&NodeState::Runs(Reason::InputChanged))
    );
    assert_eq!(
        plan.node("even"),
        Some(&NodeState::Waits {
            on: "number".into()
        })
    );
    // Its own input changed: it runs whatever `even` gives.
    assert_eq!(
        plan.node("text"),
        Some(&NodeState::Runs(Reason::InputChanged))
    );
    let text = plan.to_string();
    assert!(
        text.starts_with("graph `parity`: 0 cached, 2 to run, 1 depending"),
        "{text}"
    );
    assert!(
        text.contains("cached unless `number` changes its output"),
        "{text}"
    );

    // Nothing ran: the store still answers for the first graph.
    let again = runner.run_partial(graph!(4, "a")).await.unwrap();
    assert_eq!(again.report.cached(), 3);
}

/// Counts how many values are decoded from the store.
static DECODED: AtomicUsize = AtomicUsize::new(0);

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(crate = "typedag::serde")]
struct Counted(u64);

impl<'de> serde::Deserialize<'de> for Counted {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        DECODED.fetch_add(1, Ordering::SeqCst);
        u64::deserialize(d).map(Counted)
    }
}

#[task]
async fn seed(n: u64) -> Counted {
    Counted(n)
}

#[task]
async fn bump(x: &Counted, by: u64) -> Counted {
    Counted(x.0 + by)
}

#[tokio::test]
async fn a_cached_rerun_decodes_only_what_is_read() {
    let runner = Runner::in_memory();
    let build = |last: u64| {
        let mut g = Graph::new("lazy");
        let mut prev = g.add::<seed>("n0", (1,)).unwrap();
        for i in 1..50 {
            let by = if i == 49 { last } else { 1 };
            prev = g.add::<bump>(format!("n{i}"), (prev, by)).unwrap();
        }
        let kept = g.keep(prev);
        (g, kept)
    };
    let (g, kept) = build(1);
    let out = runner.run(g).await.unwrap();
    assert_eq!(out.get(&kept), &Counted(50));

    let before = DECODED.load(Ordering::SeqCst);
    let (g, kept) = build(1);
    let out = runner.run(g).await.unwrap();
    assert_eq!(out.get(&kept), &Counted(50));
    assert_eq!(
        DECODED.load(Ordering::SeqCst) - before,
        1,
        "only the kept output"
    );

    // The last node's input changes: it reads its one upstream output, nothing else.
    let before = DECODED.load(Ordering::SeqCst);
    let (g, kept) = build(2);
    let out = runner.run(g).await.unwrap();
    assert_eq!(out.get(&kept), &Counted(51));
    assert_eq!(DECODED.load(Ordering::SeqCst) - before, 1, "only n48");
}

struct Unserializable;

impl serde::Serialize for Unserializable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(
            "this value refuses to be written",
        ))
    }
}

impl<'de> serde::Deserialize<'de> for Unserializable {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Ok(Unserializable)
    }
}

#[task]
async fn refuse() -> Unserializable {
    Unserializable
}

#[tokio::test]
async fn an_output_that_cannot_be_serialized_fails_its_node_clearly() {
    let run = Runner::in_memory()
        .run_partial(dag! { name = "refuse"; r = refuse(); n = load(1); })
        .await
        .unwrap();
    let error = run
        .report
        .node("r")
        .unwrap()
        .outcome
        .error()
        .unwrap()
        .to_string();
    assert!(
        error.contains("could not be serialized for the store") && error.contains("cache = false"),
        "{error}"
    );
    assert_eq!(run.outputs.n, Some(1));
}
