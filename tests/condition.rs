//! Nodes that run only under a condition: `if c` / `if !c` in `dag!` and `Graph::add_if`.
//! A node whose condition does not hold is not run, which is not a failure; its field is an
//! `Option`; an `Option<&T>` parameter fed by it gets `None`, a `&T` one is not run with it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use typedag::prelude::*;

static RUNS: [AtomicUsize; 6] = [const { AtomicUsize::new(0) }; 6];

fn ran(i: usize) {
    RUNS[i].fetch_add(1, Ordering::SeqCst);
}

fn runs() -> [usize; 6] {
    std::array::from_fn(|i| RUNS[i].load(Ordering::SeqCst))
}

#[task]
async fn stats(n: u64) -> u64 {
    ran(0);
    n * 10
}

#[task]
async fn is_big(x: &u64) -> bool {
    ran(1);
    *x > 100
}

#[task]
async fn notify(x: &u64) -> String {
    ran(2);
    format!("alert {x}")
}

#[task]
async fn archive(x: &u64) -> String {
    ran(3);
    format!("archived {x}")
}

#[task]
async fn shout(s: &str) -> String {
    ran(4);
    s.to_uppercase()
}

#[task]
async fn summary(x: &u64, alert: Option<&String>) -> String {
    ran(5);
    format!("{x}: {}", alert.map_or("quiet", String::as_str))
}

// Each test counts runs of its own tasks: the counters are shared, so the tests that read
// them run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

macro_rules! branch {
    ($n:expr) => {
        dag! {
            name = "branch";
            s      = stats($n);
            big    = is_big(s);
            alert  = notify(s) if big;
            calm   = archive(s) if !big;
            loud   = shout(alert);
            digest = summary(s, alert);
        }
    };
}

#[tokio::test]
async fn a_condition_runs_one_branch_and_the_other_is_not_run_nor_failed() {
    let _serial = SERIAL.lock().await;
    let before = runs();
    let out = Runner::in_memory().run(branch!(50)).await.unwrap();
    // The fields of nodes that may not run are `Option`s; the others are plain.
    let alert: Option<String> = out.alert;
    let calm: Option<String> = out.calm;
    let loud: Option<String> = out.loud;
    let digest: String = out.digest;
    assert_eq!(alert.as_deref(), Some("alert 500"));
    assert_eq!(calm, None);
    assert_eq!(loud.as_deref(), Some("ALERT 500"));
    assert_eq!(digest, "500: alert 500");
    let after = runs();
    assert_eq!(after[3] - before[3], 0, "archive did not run");

    let partial = Runner::in_memory().run_partial(branch!(5)).await.unwrap();
    let report = &partial.report;
    assert!(report.is_success(), "{report}");
    assert_eq!(report.not_run(), 2);
    assert_eq!(
        report.node("alert").unwrap().outcome,
        Outcome::NotRun {
            condition: "`big` is false".into()
        }
    );
    assert_eq!(
        report.node("loud").unwrap().outcome,
        Outcome::NotRun {
            condition: "it reads `alert`, which did not run".into()
        }
    );
    assert!(report.to_string().contains("2 not run"), "{report}");
    let out = partial.outputs;
    assert_eq!(
        out.alert,
        Some(None),
        "it finished without running: no value"
    );
    assert_eq!(out.calm, Some(Some("archived 50".to_owned())));
    assert_eq!(out.digest.as_deref(), Some("50: quiet"));
}

#[tokio::test]
async fn events_say_which_nodes_did_not_run_and_why() {
    let _serial = SERIAL.lock().await;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let totals = Arc::new(std::sync::Mutex::new(None));
    let (s, t) = (seen.clone(), totals.clone());
    let runner = Runner::in_memory().on_event(move |event, now| {
        if let Event::NotRun {
            node, condition, ..
        } = event
        {
            s.lock().unwrap().push(format!("{node}: {condition}"));
        }
        *t.lock().unwrap() = Some(*now);
    });
    runner.run(branch!(50)).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), ["calm: `big` is true"]);
    let last = totals.lock().unwrap().unwrap();
    assert_eq!(last.not_run, 1);
    assert_eq!(last.finished(), last.total);
}

#[tokio::test]
async fn a_rerun_with_the_same_condition_runs_nothing_and_a_flipped_one_only_what_it_enables() {
    let _serial = SERIAL.lock().await;
    let store = MemoryStore::new();
    let runner = Runner::new().store(store.clone());

    runner.run(branch!(5)).await.unwrap();
    let before = runs();
    let again = runner.run_partial(branch!(5)).await.unwrap();
    assert_eq!(runs(), before, "same condition: nothing runs");
    assert_eq!(again.report.ran(), 0);
    assert_eq!(again.report.not_run(), 2);
    assert_eq!(again.outputs.calm, Some(Some("archived 50".to_owned())));

    // 20 * 10 = 200 is big: stats, is_big, notify, shout and summary run; archive does not.
    let flipped = runner.run(branch!(20)).await.unwrap();
    let after = runs();
    assert_eq!(
        std::array::from_fn::<usize, 6, _>(|i| after[i] - before[i]),
        [1, 1, 1, 0, 1, 1]
    );
    assert_eq!(flipped.alert.as_deref(), Some("alert 200"));
    assert_eq!(flipped.calm, None);

    // Cached condition, read from the store by its digest: still nothing runs.
    let before = runs();
    let cached = runner.run(branch!(20)).await.unwrap();
    assert_eq!(runs(), before);
    assert_eq!(cached.loud.as_deref(), Some("ALERT 200"));
    assert_eq!(cached.calm, None);
}

#[tokio::test]
async fn the_builder_adds_a_node_under_a_condition() {
    let _serial = SERIAL.lock().await;
    let mut g = Graph::new("built");
    let s = g.add::<stats>("s", (3u64,)).unwrap();
    let big = g.add::<is_big>("big", (s,)).unwrap();
    let alert = g.add_if::<notify>("alert", (s,), &big, true).unwrap();
    let calm = g.add_if::<archive>("calm", (s,), &big, false).unwrap();
    let digest = g.add::<summary>("digest", (s, alert)).unwrap();
    let (alert, calm, digest) = (g.keep(alert), g.keep(calm), g.keep(digest));
    let out = Runner::in_memory().run(g).await.unwrap();
    assert_eq!(out.try_get(&alert), None);
    assert_eq!(out.get(&calm), "archived 30");
    assert_eq!(out.get(&digest), "30: quiet");
}

#[tokio::test]
async fn explain_says_which_nodes_will_not_run() {
    let _serial = SERIAL.lock().await;
    let runner = Runner::new().store(MemoryStore::new());
    let fresh = runner.explain(&branch!(5)).await.unwrap();
    assert_eq!(
        fresh.node("alert"),
        Some(&NodeState::RunsIf {
            on: "big".into(),
            holds: true
        })
    );
    runner.run(branch!(5)).await.unwrap();
    let plan = runner.explain(&branch!(5)).await.unwrap();
    assert_eq!(
        plan.node("alert"),
        Some(&NodeState::NotRun {
            condition: "`big` is false".into()
        })
    );
    assert_eq!(
        plan.node("loud"),
        Some(&NodeState::NotRun {
            condition: "it reads `alert`, which does not run".into()
        })
    );
    assert_eq!(plan.node("calm"), Some(&NodeState::Cached));
    assert_eq!(plan.node("digest"), Some(&NodeState::Cached));
    assert!(plan.to_string().contains("2 not run"), "{plan}");
}

#[task]
async fn digits(n: u64) -> Vec<u64> {
    (0..n).collect()
}

#[task]
async fn double(x: &u64) -> u64 {
    x * 2
}

#[task]
async fn total(xs: Option<&Vec<u64>>) -> u64 {
    xs.map_or(0, |xs| xs.iter().sum())
}

#[tokio::test]
async fn a_map_node_under_a_condition_has_its_vec_or_none() {
    // It runs tasks whose runs other tests count.
    let _serial = SERIAL.lock().await;
    for (n, want) in [
        (20u64, Some((0..20).map(|x| x * 2).collect::<Vec<u64>>())),
        (5, None),
    ] {
        let g = dag! {
            name = "map-if";
            s      = stats(n);
            big    = is_big(s);
            xs     = digits(n);
            twice  = double(each xs) if big;
            sum    = total(twice);
        };
        let out = Runner::new().without_store().run(g).await.unwrap();
        let sum = want.as_ref().map_or(0, |w| w.iter().sum());
        assert_eq!(out.twice, want, "n = {n}");
        assert_eq!(out.sum, sum, "n = {n}");
    }
}

#[task]
async fn owned_summary(x: u64, alert: Option<String>) -> String {
    format!("{x}: {}", alert.unwrap_or_else(|| "quiet".to_owned()))
}

#[task]
async fn maybe_name(x: &u64) -> Option<String> {
    (*x > 100).then(|| format!("n{x}"))
}

#[tokio::test]
async fn an_owned_option_parameter_gets_none_from_a_node_that_did_not_run() {
    // It runs tasks whose runs other tests count.
    let _serial = SERIAL.lock().await;
    for (n, want) in [(50u64, "500: alert 500"), (5, "50: quiet")] {
        let g = dag! {
            name = "owned-option";
            s     = stats(n);
            big   = is_big(s);
            alert = notify(s) if big;
            line  = owned_summary(s, alert);
            // A node whose output is an `Option<String>` feeds it as it is.
            name  = maybe_name(s);
            named = owned_summary(s, name);
        };
        let out = Runner::new().without_store().run(g).await.unwrap();
        assert_eq!(out.line, want);
        let named = if n == 50 { "500: n500" } else { "50: quiet" };
        assert_eq!(out.named, named);
    }
}
