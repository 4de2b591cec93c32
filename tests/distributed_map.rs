//! Map nodes (`each`) in distributed runs against a real PostgreSQL: a map node's items are
//! shared by the processes, each item running once, cached by its bytes as in a local run;
//! a failed item fails the map in every process and is the only one the next run runs, a
//! local run finding what a distributed one stored; a failed item stops the run when it
//! stops at the first failure; the node's duration is the wall span of its items; equal
//! items share one record; a map under a condition runs only when it holds.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::postgres::Cluster;
use support::report::outcomes;
use typedag::prelude::*;
use typedag::{PostgresStore, Store as _};

#[task]
async fn listed(xs: Vec<u64>) -> Vec<u64> {
    xs
}

/// Every item `slow_double` and `picky` ran, in every worker of this test process.
static ITEM_RUNS: Mutex<Vec<u64>> = Mutex::new(Vec::new());

/// How often each of `items` ran so far.
fn item_runs(items: &[u64]) -> HashMap<u64, usize> {
    let mut runs = HashMap::new();
    for x in ITEM_RUNS.lock().unwrap().iter() {
        if items.contains(x) {
            *runs.entry(*x).or_default() += 1;
        }
    }
    runs
}

/// The items of `items` that ran since `before`.
fn items_ran_since(before: &HashMap<u64, usize>, items: &[u64]) -> Vec<u64> {
    let mut ran: Vec<u64> = item_runs(items)
        .into_iter()
        .filter(|(x, n)| before.get(x).copied().unwrap_or(0) < *n)
        .map(|(x, _)| x)
        .collect();
    ran.sort_unstable();
    ran
}

#[task]
async fn slow_double(x: &u64) -> u64 {
    ITEM_RUNS.lock().unwrap().push(*x);
    tokio::time::sleep(Duration::from_millis(40)).await;
    x * 2
}

#[task]
async fn add_up(xs: &[u64]) -> u64 {
    xs.iter().sum()
}

macro_rules! mapped {
    ($xs:expr) => {
        dag! {
            name = "mapped";
            xs    = listed($xs);
            ys    = slow_double(each xs);
            total = add_up(ys);
        }
    };
}

/// Runs `graph` as run `run` with two workers, each with a store of its own (as two
/// processes would have), each logging what it ran, found cached and expanded, prefixed
/// with its name; `tune`, if given, sets up each worker's runner further. Both reports
/// must agree, items included; both partial results are returned with the sorted log.
macro_rules! by_two {
    ($url:expr, $run:expr, $graph:expr) => {
        by_two!($url, $run, $graph, |runner: Runner| runner)
    };
    ($url:expr, $run:expr, $graph:expr, $tune:expr) => {{
        let log = Arc::new(Mutex::new(Vec::<String>::new()));
        let worker = |who: &'static str, retry_s: u64| {
            let log = log.clone();
            let url = $url.clone();
            async move {
                let store = PostgresStore::connect_with(&url, Duration::from_secs(retry_s))
                    .await
                    .unwrap();
                ($tune)(Runner::new())
                    .store(store)
                    .distributed($run)
                    .concurrency(3)
                    .on_event(move |event, _| {
                        let line = match event {
                            Event::Completed { node, .. } => format!("{who} ran {node}"),
                            Event::Cached { node, .. } => format!("{who} cached {node}"),
                            Event::Failed { node, .. } => format!("{who} failed {node}"),
                            Event::Lost { node, .. } => format!("{who} lost {node}"),
                            Event::Mapped { node, items, .. } => {
                                format!("{who} mapped {node} into {items}")
                            }
                            _ => return,
                        };
                        log.lock().unwrap().push(line);
                    })
            }
        };
        let (one, two) = tokio::join!(worker("one", 61), worker("two", 62));
        let (x, y) = tokio::join!(one.run_partial($graph), two.run_partial($graph));
        let (x, y) = (x.unwrap(), y.unwrap());
        assert_eq!(outcomes(&x.report), outcomes(&y.report), "{}", x.report);
        let items = |r: &typedag::Report| -> Vec<Option<(usize, usize, usize, usize)>> {
            r.nodes()
                .iter()
                .map(|n| n.items.map(|i| (i.total, i.ran, i.cached, i.failed)))
                .collect()
        };
        assert_eq!(items(&x.report), items(&y.report), "{}", x.report);
        let mut log = std::mem::take(&mut *log.lock().unwrap());
        log.sort();
        (x, y, log)
    }};
}

/// The lines of `log` about map node `node`'s items that say `what` (`ran`, `cached`),
/// without the worker's name.
fn item_lines(log: &[String], what: &str, node: &str) -> Vec<String> {
    let mut lines: Vec<String> = log
        .iter()
        .filter_map(|l| l.split_once(' ').map(|(_, rest)| rest))
        .filter(|l| l.starts_with(&format!("{what} {node}[")))
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_a_maps_items_each_running_once_and_a_rerun_runs_only_new_items() {
    let url = Cluster::shared().database("mapped");
    let list: Vec<u64> = (1000..1012).collect();
    let doubled = |xs: &[u64]| xs.iter().map(|x| x * 2).collect::<Vec<u64>>();

    let before = item_runs(&list);
    let (x, y, log) = by_two!(url, "first", mapped!(list.clone()));
    // Both workers end alike (`by_two!` compares their reports).
    assert!(x.report.is_success(), "{}", x.report);
    assert_eq!(x.outputs.ys.as_deref(), Some(doubled(&list).as_slice()));
    assert_eq!(y.outputs.ys, x.outputs.ys);
    assert_eq!(x.outputs.total, Some(doubled(&list).iter().sum()));
    assert_eq!(y.outputs.total, x.outputs.total);
    let items = y.report.node("ys").unwrap().items.unwrap();
    assert_eq!(
        (items.total, items.ran, items.cached, items.failed),
        (12, 12, 0, 0)
    );
    // Each item ran once in all, both workers ran some, and one expanded the map.
    assert!(
        item_runs(&list).values().all(|&n| n == 1),
        "{:?}",
        item_runs(&list)
    );
    assert_eq!(items_ran_since(&before, &list), list);
    let ran = item_lines(&log, "ran", "ys");
    assert_eq!(ran.len(), 12, "{log:?}");
    assert!(
        ran.iter()
            .all(|l| log.contains(&format!("one {l}")) != log.contains(&format!("two {l}")))
    );
    for who in ["one", "two"] {
        assert!(
            log.iter().any(|l| l.starts_with(&format!("{who} ran ys["))),
            "{log:?}"
        );
    }
    let mapped: Vec<&String> = log.iter().filter(|l| l.contains(" mapped ")).collect();
    assert_eq!(mapped.len(), 1, "{log:?}");
    assert!(mapped[0].ends_with("mapped ys into 12"), "{log:?}");

    // One item more, in the middle: only it runs, in whichever worker claims it.
    let mut more = list.clone();
    more.insert(5, 1500);
    let before = item_runs(&more);
    let (x, _, log) = by_two!(url, "second", mapped!(more.clone()));
    assert_eq!(items_ran_since(&before, &more), [1500]);
    assert_eq!(item_lines(&log, "ran", "ys"), ["ran ys[5]"]);
    assert_eq!(item_lines(&log, "cached", "ys").len(), 12, "{log:?}");
    assert_eq!(x.outputs.ys.as_deref(), Some(doubled(&more).as_slice()));
    let items = x.report.node("ys").unwrap().items.unwrap();
    assert_eq!(
        (items.total, items.ran, items.cached, items.failed),
        (13, 1, 12, 0)
    );

    // The same list again: the map node is cached whole, no item is looked at.
    let (x, _, log) = by_two!(url, "third", mapped!(more.clone()));
    assert_eq!(x.report.ran(), 0, "{}", x.report);
    assert_eq!(x.report.node("ys").unwrap().items, None);
    assert!(!log.iter().any(|l| l.contains("ys[")), "{log:?}");
    assert_eq!(x.outputs.ys.as_deref(), Some(doubled(&more).as_slice()));

    // A local run on the same store finds the items of the distributed ones, and the
    // other way round.
    let store = PostgresStore::connect(&url).await.unwrap();
    let mut local_list = more.clone();
    local_list.push(1600);
    let before = item_runs(&local_list);
    let local = Runner::new()
        .store(store)
        .run(mapped!(local_list.clone()))
        .await
        .unwrap();
    assert_eq!(items_ran_since(&before, &local_list), [1600]);
    assert_eq!(local.ys, doubled(&local_list));
    let mut last = local_list.clone();
    last.insert(0, 1700);
    let before = item_runs(&last);
    let (x, _, _) = by_two!(url, "after-local", mapped!(last.clone()));
    assert_eq!(items_ran_since(&before, &last), [1700]);
    assert_eq!(x.outputs.ys.as_deref(), Some(doubled(&last).as_slice()));
}

/// Declares `$name`, a task over a map's items that records each item it runs, waits
/// `$before` ms, fails on `$bad` while `$flag` is on, and waits `$after` ms on the others.
macro_rules! fails_on {
    ($name:ident, $flag:ident, $bad:literal, $before:literal, $after:literal) => {
        /// Whether the task fails on its item.
        static $flag: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

        #[task]
        async fn $name(x: &u64) -> Result<u64, String> {
            ITEM_RUNS.lock().unwrap().push(*x);
            tokio::time::sleep(Duration::from_millis($before)).await;
            if *x == $bad && $flag.load(Ordering::SeqCst) {
                return Err(format!("cannot take {x}"));
            }
            tokio::time::sleep(Duration::from_millis($after)).await;
            Ok(x + 1)
        }
    };
}

fails_on!(picky, PICKY_BREAKS, 2013, 20, 0);
fails_on!(fussy, FUSSY_BREAKS, 3013, 0, 0);
fails_on!(wary, WARY_BREAKS, 6013, 0, 0);
fails_on!(brittle, BRITTLE_BREAKS, 4000, 0, 100);

/// Runs `$graph` in this process alone, on the store at `$url`.
macro_rules! in_one_process {
    ($url:expr, $graph:expr) => {
        Runner::new()
            .store(PostgresStore::connect(&$url).await.unwrap())
            .run_partial($graph)
            .await
            .unwrap()
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_item_fails_the_map_in_every_worker_and_the_next_run_runs_only_it() {
    let url = Cluster::shared().database("picky");
    let list: Vec<u64> = vec![2000, 2001, 2002, 2003, 2004, 2013, 2005];
    let graph = || {
        dag! {
            name  = "picky";
            xs    = listed(list.clone());
            ys    = picky(each xs);
            total = add_up(ys);
        }
    };
    let before = item_runs(&list);
    let (x, _, log) = by_two!(url, "broken", graph());
    assert_eq!(items_ran_since(&before, &list), {
        let mut all = list.clone();
        all.sort_unstable();
        all
    });
    assert!(item_runs(&list).values().all(|&n| n == 1));
    let report = &x.report;
    let error = report.node("ys").unwrap().outcome.error().unwrap();
    assert!(
        error
            .message()
            .contains("1 of 7 items failed (item 5 (2013): cannot take 2013)"),
        "{error}"
    );
    assert_eq!(
        report.node("total").unwrap().outcome,
        Outcome::Skipped {
            because: "ys".into()
        }
    );
    let items = report.node("ys").unwrap().items.unwrap();
    assert_eq!(
        (items.total, items.ran, items.cached, items.failed),
        (7, 7, 0, 1)
    );
    assert_eq!(item_lines(&log, "failed", "ys"), ["failed ys[5]"]);
    assert_eq!(x.outputs.ys, None);

    // Fixed: the next run runs only the failed item.
    PICKY_BREAKS.store(false, Ordering::SeqCst);
    let before = item_runs(&list);
    let (x, _, log) = by_two!(url, "fixed", graph());
    assert_eq!(items_ran_since(&before, &list), [2013]);
    assert_eq!(item_lines(&log, "ran", "ys"), ["ran ys[5]"]);
    assert!(x.report.is_success(), "{}", x.report);
    let plus_one: Vec<u64> = list.iter().map(|x| x + 1).collect();
    assert_eq!(x.outputs.ys.as_deref(), Some(plus_one.as_slice()));
    let items = x.report.node("ys").unwrap().items.unwrap();
    assert_eq!(
        (items.total, items.ran, items.cached, items.failed),
        (7, 1, 6, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_run_finds_the_items_a_distributed_run_stored_before_its_map_failed() {
    let url = Cluster::shared().database("fussy");
    let list: Vec<u64> = vec![3000, 3001, 3013, 3002];
    let graph = || {
        dag! {
            name  = "fussy";
            xs    = listed(list.clone());
            ys    = fussy(each xs);
        }
    };
    let (x, _, _) = by_two!(url, "broken", graph());
    assert!(!x.report.is_success());

    // Fixed, and run in one process on the same store: only the failed item runs.
    FUSSY_BREAKS.store(false, Ordering::SeqCst);
    let before = item_runs(&list);
    let local = in_one_process!(url, graph());
    assert!(local.report.is_success(), "{}", local.report);
    assert_eq!(items_ran_since(&before, &list), [3013]);
    let items = local.report.node("ys").unwrap().items.unwrap();
    assert_eq!((items.total, items.ran, items.cached), (4, 1, 3));
    let plus_one: Vec<u64> = list.iter().map(|x| x + 1).collect();
    assert_eq!(local.outputs.ys.as_deref(), Some(plus_one.as_slice()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_with_equal_items_finds_them_stored_after_its_map_failed() {
    let url = Cluster::shared().database("wary");
    // Equal items share one key, so one record: the lookups ask for it once.
    let list: Vec<u64> = vec![6000, 6001, 6000, 6013, 6001];
    let graph = || {
        dag! {
            name  = "wary";
            xs    = listed(list.clone());
            ys    = wary(each xs);
        }
    };
    let (x, _, _) = by_two!(url, "broken", graph());
    assert!(!x.report.is_success());

    // A local run on the same store finds the distributed run's items: only 6013 runs.
    let before = item_runs(&list);
    let local = in_one_process!(url, graph());
    assert!(!local.report.is_success());
    assert_eq!(items_ran_since(&before, &list), [6013]);

    // Fixed, and distributed again: only 6013 runs, once.
    WARY_BREAKS.store(false, Ordering::SeqCst);
    let before = item_runs(&list);
    let (x, _, _) = by_two!(url, "fixed", graph());
    assert!(x.report.is_success(), "{}", x.report);
    assert_eq!(items_ran_since(&before, &list), [6013]);
    let items = x.report.node("ys").unwrap().items.unwrap();
    assert_eq!((items.total, items.ran, items.cached), (5, 1, 4));
    let plus_one: Vec<u64> = list.iter().map(|x| x + 1).collect();
    assert_eq!(x.outputs.ys.as_deref(), Some(plus_one.as_slice()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_fail_fast_a_failed_item_stops_the_run_and_the_next_runs_only_what_did_not_succeed() {
    let url = Cluster::shared().database("brittle");
    let list: Vec<u64> = (4000..4020).collect();
    let graph = || {
        dag! {
            name  = "brittle";
            xs    = listed(list.clone());
            ys    = brittle(each xs);
            total = add_up(ys);
        }
    };
    let fail_fast = |runner: Runner| runner.fail_fast(true);
    let before = item_runs(&list);
    let start = Instant::now();
    // The failing item is the first, claimed at once; six run at a time, 100 ms each.
    let (x, _, log) = by_two!(url, "broken", graph(), fail_fast);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    let report = &x.report;
    assert!(!report.is_success(), "{report}");
    let error = report.node("ys").unwrap().outcome.error().unwrap();
    assert!(
        error
            .message()
            .contains("1 of 20 items failed (item 0 (4000): cannot take 4000), and "),
        "{error}"
    );
    assert!(
        error
            .message()
            .contains("did not start (the run stops at the first failure)"),
        "{error}"
    );
    assert_eq!(
        report.node("total").unwrap().outcome,
        Outcome::Skipped {
            because: "ys".into()
        }
    );
    assert_eq!(item_lines(&log, "failed", "ys"), ["failed ys[0]"]);
    // Items started before the stop ran to their end; none started after it.
    let ran = items_ran_since(&before, &list);
    assert!(ran.len() < list.len(), "{ran:?}");
    assert!(item_runs(&list).values().all(|&n| n == 1));
    let items = report.node("ys").unwrap().items.unwrap();
    assert_eq!(
        (items.total, items.ran, items.cached, items.failed),
        (20, ran.len(), 0, 1)
    );
    assert!(
        error
            .message()
            .contains(&format!("and {} did not start", 20 - ran.len())),
        "{error}"
    );
    assert_eq!(x.outputs.ys, None);

    // The items that did not start, and `total`, stay waiting or ready for good, nothing
    // claimed: the run has ended, and forgetting it drops it (its records stay).
    let store = PostgresStore::connect(&url).await.unwrap();
    let coordinator = store.coordinator().unwrap();
    let progress = coordinator.progress("broken".into()).await.unwrap();
    assert!(progress.unfinished > 0, "{progress:?}");
    assert_eq!((progress.claimed, progress.stopping), (0, true));
    let runs = coordinator.runs().await.unwrap();
    let broken = runs.iter().find(|r| r.run == "broken").unwrap();
    assert!(broken.ended, "{broken:?}");
    coordinator
        .forget_runs(vec!["broken".into()])
        .await
        .unwrap();
    let runs = coordinator.runs().await.unwrap();
    assert!(runs.iter().all(|r| r.run != "broken"), "{runs:?}");

    // Fixed: the next run runs the failed item and those that did not start, no other.
    BRITTLE_BREAKS.store(false, Ordering::SeqCst);
    let succeeded: Vec<u64> = ran.iter().copied().filter(|&x| x != 4000).collect();
    let rest: Vec<u64> = list
        .iter()
        .copied()
        .filter(|x| !succeeded.contains(x))
        .collect();
    let before = item_runs(&list);
    let (x, _, _) = by_two!(url, "fixed", graph(), fail_fast);
    assert!(x.report.is_success(), "{}", x.report);
    assert_eq!(items_ran_since(&before, &list), rest);
    let items = x.report.node("ys").unwrap().items.unwrap();
    assert_eq!(
        (items.total, items.ran, items.cached, items.failed),
        (20, rest.len(), succeeded.len(), 0)
    );
    let plus_one: Vec<u64> = list.iter().map(|x| x + 1).collect();
    assert_eq!(x.outputs.ys.as_deref(), Some(plus_one.as_slice()));
    assert_eq!(x.outputs.total, Some(plus_one.iter().sum()));
}

/// The time every `nap` took, in microseconds, summed.
static NAPPED_US: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[task]
async fn nap(x: &u64) -> u64 {
    let start = Instant::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let took = u64::try_from(start.elapsed().as_micros()).unwrap();
    NAPPED_US.fetch_add(took, Ordering::SeqCst);
    *x
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distributed_maps_duration_is_the_wall_span_of_its_items() {
    let url = Cluster::shared().database("napping");
    let list: Vec<u64> = (5000..5012).collect();
    let graph = || {
        dag! {
            name = "napping";
            xs   = listed(list.clone());
            ys   = nap(each xs);
        }
    };
    let start = Instant::now();
    let (x, y, _) = by_two!(url, "naps", graph());
    let wall = start.elapsed();
    let napped = Duration::from_micros(NAPPED_US.load(Ordering::SeqCst));
    for report in [&x.report, &y.report] {
        let Outcome::Ran { duration, .. } = report.node("ys").unwrap().outcome else {
            panic!("{report}");
        };
        // Six items at a time, over two workers: the map took about two items' time, not
        // the twelve items' summed.
        assert!(duration >= Duration::from_millis(50), "{duration:?}");
        assert!(duration <= wall, "{duration:?} of a run of {wall:?}");
        assert!(
            duration < napped,
            "{duration:?}, and the items took {napped:?} in all"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_map_under_a_condition_runs_only_when_it_holds() {
    let url = Cluster::shared().database("gated");
    let list: Vec<u64> = vec![3000, 3001, 3002];
    let graph = |n: u64| {
        dag! {
            name  = "gated";
            s     = measure(n);
            big   = is_big(s);
            xs    = listed(list.clone());
            ys    = slow_double(each xs) if big;
            total = add_up(ys);
        }
    };
    let (x, _, log) = by_two!(url, "small", graph(5));
    assert_eq!(
        x.report.node("ys").unwrap().outcome,
        Outcome::NotRun {
            condition: "`big` is false".into()
        }
    );
    assert_eq!(x.outputs.total, Some(None));
    assert!(!log.iter().any(|l| l.contains("ys[")), "{log:?}");

    let before = item_runs(&list);
    let (x, _, _) = by_two!(url, "big", graph(50));
    assert!(x.report.is_success(), "{}", x.report);
    assert_eq!(x.outputs.total, Some(Some(6000 + 6002 + 6004)));
    assert_eq!(items_ran_since(&before, &list), list);
}

#[task]
async fn measure(n: u64) -> u64 {
    n * 10
}

#[task]
async fn is_big(x: &u64) -> bool {
    *x > 100
}

/// Items of `steady` that have ended, for `boom` to fail after some.
static STEADY_DONE: AtomicUsize = AtomicUsize::new(0);

/// Takes 100 ms on each item.
#[task]
async fn steady(x: &u64) -> u64 {
    ITEM_RUNS.lock().unwrap().push(*x);
    tokio::time::sleep(Duration::from_millis(100)).await;
    STEADY_DONE.fetch_add(1, Ordering::SeqCst);
    x + 1
}

/// Whether `boom` fails.
static BOOM_BREAKS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Fails, once `after` items of `steady` have ended, until `BOOM_BREAKS` is turned off.
#[task]
async fn boom(after: usize) -> Result<u64, String> {
    let start = Instant::now();
    while BOOM_BREAKS.load(Ordering::SeqCst)
        && STEADY_DONE.load(Ordering::SeqCst) < after
        && start.elapsed() < Duration::from_secs(20)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if BOOM_BREAKS.load(Ordering::SeqCst) {
        return Err("the disk is full".into());
    }
    Ok(1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_fail_fast_a_node_failing_beside_a_map_stops_it_midway_and_the_next_run_runs_the_rest()
{
    let url = Cluster::shared().database("steady");
    let list: Vec<u64> = (5000..5020).collect();
    let graph = || {
        dag! {
            name  = "steady";
            xs    = listed(list.clone());
            ys    = steady(each xs);
            total = add_up(ys);
            b     = boom(3);
        }
    };
    let fail_fast = |runner: Runner| runner.fail_fast(true);
    let before = item_runs(&list);
    // `b` fails once 3 items have ended, while about 5 others run (six at a time, `b`
    // holding one): the items not started by then do not start.
    let (x, _, _) = by_two!(url, "broken", graph(), fail_fast);
    let report = &x.report;
    assert!(!report.is_success(), "{report}");
    assert_eq!(
        report.node("b").unwrap().outcome.error().unwrap().message(),
        "the disk is full"
    );
    let ran = items_ran_since(&before, &list);
    assert!((3..list.len()).contains(&ran.len()), "{ran:?}");
    let unstarted = list.len() - ran.len();
    let error = report.node("ys").unwrap().outcome.error().unwrap();
    assert_eq!(
        error.message(),
        format!(
            "the run stopped before {unstarted} of its 20 items started; the others are stored, and the next run runs the rest"
        )
    );
    let items = report.node("ys").unwrap().items.unwrap();
    assert_eq!(
        (items.total, items.ran, items.cached, items.failed),
        (20, ran.len(), 0, 0)
    );
    assert_eq!(
        report.node("total").unwrap().outcome,
        Outcome::Skipped {
            because: "ys".into()
        }
    );

    // Fixed: the next run runs `b` and the items that did not start, no other.
    BOOM_BREAKS.store(false, Ordering::SeqCst);
    let rest: Vec<u64> = list.iter().copied().filter(|x| !ran.contains(x)).collect();
    let before = item_runs(&list);
    let (x, _, _) = by_two!(url, "fixed", graph(), fail_fast);
    assert!(x.report.is_success(), "{}", x.report);
    assert_eq!(items_ran_since(&before, &list), rest);
    let plus_one: Vec<u64> = list.iter().map(|x| x + 1).collect();
    assert_eq!(x.outputs.total, Some(plus_one.iter().sum()));
}
