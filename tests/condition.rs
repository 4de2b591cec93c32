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

/// Fields of nodes that may not run, whatever reads what: a node with a condition, a `&T`
/// reader of it and a reader of that reader, an `Option<&T>` reader, a list holding it, a
/// map over a list that may not be made; and a chain too long to write its types out
/// (`dag!` then lets the wiring checks infer them), whose last node is an `Option` too.
#[tokio::test]
async fn fields_of_nodes_that_may_not_run_are_options_however_they_are_read() {
    let _serial = SERIAL.lock().await;
    let graph = dag! {
        name   = "fields";
        s      = stats(1);
        big    = is_big(s);
        alert  = notify(s) if !big;
        loud   = shout(alert);
        louder = shout(loud);
        digest = summary(s, alert);
        both   = shout_all([alert, loud]);
        list   = digits(s) if big;
        each   = double(each list);
    };
    let out = Runner::in_memory().run(graph).await.unwrap();
    let alert: Option<String> = out.alert;
    let louder: Option<String> = out.louder;
    let digest: String = out.digest;
    let both: Option<String> = out.both;
    let each: Option<Vec<u64>> = out.each;
    assert_eq!(alert.as_deref(), Some("alert 10"));
    assert_eq!(louder.as_deref(), Some("ALERT 10"));
    assert_eq!(digest, "10: alert 10");
    assert_eq!(both.as_deref(), Some("alert 10 ALERT 10"));
    assert_eq!(each, None);

    let graph = dag! {
        name = "long";
        s    = stats(1);
        big  = is_big(s);
        c0   = notify(s) if big;
            c1 = shout(c0);
            c2 = shout(c1);
            c3 = shout(c2);
            c4 = shout(c3);
            c5 = shout(c4);
            c6 = shout(c5);
            c7 = shout(c6);
            c8 = shout(c7);
            c9 = shout(c8);
            c10 = shout(c9);
            c11 = shout(c10);
            c12 = shout(c11);
            c13 = shout(c12);
            c14 = shout(c13);
            c15 = shout(c14);
            c16 = shout(c15);
            c17 = shout(c16);
            c18 = shout(c17);
            c19 = shout(c18);
            c20 = shout(c19);
            c21 = shout(c20);
            c22 = shout(c21);
            c23 = shout(c22);
            c24 = shout(c23);
            c25 = shout(c24);
            c26 = shout(c25);
            c27 = shout(c26);
            c28 = shout(c27);
            c29 = shout(c28);
            c30 = shout(c29);
            c31 = shout(c30);
            c32 = shout(c31);
            c33 = shout(c32);
            c34 = shout(c33);
            c35 = shout(c34);
            c36 = shout(c35);
            c37 = shout(c36);
            c38 = shout(c37);
            c39 = shout(c38);
            c40 = shout(c39);
            c41 = shout(c40);
            c42 = shout(c41);
            c43 = shout(c42);
            c44 = shout(c43);
            c45 = shout(c44);
            c46 = shout(c45);
            c47 = shout(c46);
            c48 = shout(c47);
            c49 = shout(c48);
            c50 = shout(c49);
            c51 = shout(c50);
            c52 = shout(c51);
            c53 = shout(c52);
            c54 = shout(c53);
            c55 = shout(c54);
            c56 = shout(c55);
            c57 = shout(c56);
            c58 = shout(c57);
            c59 = shout(c58);
            c60 = shout(c59);
            c61 = shout(c60);
            c62 = shout(c61);
            c63 = shout(c62);
            c64 = shout(c63);
            c65 = shout(c64);
            c66 = shout(c65);
            c67 = shout(c66);
            c68 = shout(c67);
            c69 = shout(c68);
    };
    let out = Runner::in_memory().run_partial(graph).await.unwrap();
    assert!(out.report.is_success(), "{}", out.report);
    let outputs = out.outputs;
    let last: Option<Option<String>> = outputs.c69;
    assert_eq!(last, Some(None));
}

#[task]
async fn shout_all(texts: Vec<String>) -> String {
    texts.join(" ")
}
