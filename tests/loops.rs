//! Loop nodes: a task that returns `Loop<S, T>` runs again on its own next state until it
//! returns `Loop::Done`; its node's output is `T`. Each iteration is stored as it completes:
//! a failed, cancelled or bounded loop resumes after its last stored iteration, a rerun with
//! the same inputs is cached whole, and a changed input starts again from the first.
//! Retries and timeouts apply per iteration; events, the report and `explain` count the
//! iterations. (A real SIGKILL mid-loop is in `tests/crash.rs`.)

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use typedag::prelude::*;
use typedag::{GraphError, Outcome};

/// Where a loop is: the page to fetch next, and the items of the pages before it.
#[derive(Clone, Debug, Default, typedag::serde::Serialize, typedag::serde::Deserialize)]
#[serde(crate = "typedag::serde")]
struct Cursor {
    page: u32,
    items: Vec<u32>,
}

/// A fake paged listing: `pages` pages of three items each. Each test has a listing of its
/// own name, so that the tests can run at once.
#[derive(Clone, Debug, typedag::serde::Serialize)]
#[serde(crate = "typedag::serde")]
struct Listing {
    name: String,
    pages: u32,
}

fn listing(name: &str, pages: u32) -> Listing {
    Listing {
        name: name.to_owned(),
        pages,
    }
}

/// The pages fetched so far, by listing, in order.
static FETCHED: Mutex<Option<HashMap<String, Vec<u32>>>> = Mutex::new(None);
/// The pages that fail the next time they are fetched, by listing.
static DOWN: Mutex<Option<HashSet<(String, u32)>>> = Mutex::new(None);

fn fetched(name: &str) -> Vec<u32> {
    let fetched = FETCHED.lock().unwrap();
    fetched
        .as_ref()
        .and_then(|f| f.get(name).cloned())
        .unwrap_or_default()
}

fn fail_once(name: &str, page: u32) {
    DOWN.lock()
        .unwrap()
        .get_or_insert_with(HashSet::new)
        .insert((name.to_owned(), page));
}

/// Fetches the cursor's page of the listing, then goes on to the next page or is done
/// with every item.
#[task]
async fn crawl(cursor: Cursor, listing: &Listing) -> Result<Loop<Cursor, Vec<u32>>, String> {
    let page = cursor.page;
    FETCHED
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .entry(listing.name.clone())
        .or_default()
        .push(page);
    let down = DOWN
        .lock()
        .unwrap()
        .get_or_insert_with(HashSet::new)
        .remove(&(listing.name.clone(), page));
    if down {
        return Err(format!("page {page} is down"));
    }
    let mut items = cursor.items;
    items.extend((0..3).map(|i| page * 10 + i));
    if page + 1 >= listing.pages {
        Ok(Loop::Done(items))
    } else {
        Ok(Loop::Again(Cursor {
            page: page + 1,
            items,
        }))
    }
}

#[task]
async fn count(items: &[u32]) -> usize {
    items.len()
}

fn items(pages: u32) -> Vec<u32> {
    (0..pages)
        .flat_map(|p| (0..3).map(move |i| p * 10 + i))
        .collect()
}

/// `(total, resumed)` of a node's iterations in a report.
fn iterations(report: &typedag::Report, node: &str) -> Option<(u32, u32)> {
    let it = report.node(node)?.iterations?;
    Some((it.total, it.resumed))
}

#[tokio::test]
async fn a_loop_runs_on_its_next_state_until_done_and_a_rerun_is_cached() {
    let runner = Runner::in_memory();
    let l = listing("done", 4);
    let graph = || {
        let l = l.clone();
        dag! {
            all = crawl(Cursor::default(), l);
            n   = count(all);
        }
    };
    let out = runner.run(graph()).await.unwrap();
    assert_eq!(out.all, items(4));
    assert_eq!(out.n, 12);
    assert_eq!(fetched("done"), [0, 1, 2, 3]);

    let again = runner.run_partial(graph()).await.unwrap();
    assert_eq!(again.report.ran(), 0, "{}", again.report);
    assert_eq!(again.outputs.all, Some(items(4)));
    assert_eq!(fetched("done"), [0, 1, 2, 3], "a cached loop runs nothing");
}

#[tokio::test]
async fn events_and_the_report_show_the_iterations() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let runner = Runner::new()
        .without_store()
        .on_event(move |event, totals| {
            assert!(
                totals.running <= 1,
                "a loop node counts as one running node"
            );
            let line = match event {
                Event::Started { node, attempt, .. } => format!("started {node} {attempt}"),
                Event::Iterated {
                    node, iteration, ..
                } => format!("iterated {node} {iteration}"),
                Event::Completed { node, .. } => format!("completed {node}"),
                _ => return,
            };
            log.lock().unwrap().push(line);
        });
    let l = listing("events", 3);
    let partial = runner
        .run_partial(dag! { all = crawl(Cursor::default(), l); })
        .await
        .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "started all 1",
            "iterated all 1",
            "started all 1",
            "iterated all 2",
            "started all 1",
            "completed all",
        ]
    );
    assert_eq!(iterations(&partial.report, "all"), Some((3, 0)));
    let text = partial.report.to_string();
    assert!(
        text.contains("loop node `all` (task `crawl`): 3 iterations"),
        "{text}"
    );
}

#[tokio::test]
async fn a_failed_iteration_resumes_after_the_last_stored_one() {
    let runner = Runner::in_memory();
    let l = listing("resume", 4);
    let graph = |l: &Listing| {
        let l = l.clone();
        dag! { all = crawl(Cursor::default(), l); }
    };
    fail_once("resume", 2);
    let first = runner.run_partial(graph(&l)).await.unwrap().report;
    let error = first.node("all").unwrap().outcome.error().unwrap();
    assert_eq!(error.message(), "page 2 is down");
    assert_eq!(iterations(&first, "all"), Some((2, 0)));
    assert_eq!(fetched("resume"), [0, 1, 2]);

    let plan = runner.explain(&graph(&l)).await.unwrap();
    assert_eq!(plan.iterations("all"), Some(2));
    assert!(
        plan.to_string().contains("resumes after iteration 2"),
        "{plan}"
    );

    let second = runner.run_partial(graph(&l)).await.unwrap();
    assert_eq!(second.outputs.all, Some(items(4)));
    assert_eq!(iterations(&second.report, "all"), Some((4, 2)));
    assert_eq!(fetched("resume"), [0, 1, 2, 2, 3], "resumed at page 2");
    assert_eq!(
        runner.explain(&graph(&l)).await.unwrap().iterations("all"),
        None
    );

    // Another listing is another input: the loop starts again from the first iteration.
    let longer = listing("resume", 5);
    let third = runner.run_partial(graph(&longer)).await.unwrap();
    assert_eq!(third.outputs.all, Some(items(5)));
    assert_eq!(iterations(&third.report, "all"), Some((5, 0)));
    assert_eq!(fetched("resume"), [0, 1, 2, 2, 3, 0, 1, 2, 3, 4]);
}

#[tokio::test]
async fn reaching_max_fails_the_node_and_a_higher_max_goes_on() {
    let runner = Runner::in_memory();
    let l = listing("bound", 4);
    let short = {
        let l = l.clone();
        dag! { all = crawl(Cursor::default(), l) with max = 2; }
    };
    let first = runner.run_partial(short).await.unwrap().report;
    let error = first
        .node("all")
        .unwrap()
        .outcome
        .error()
        .unwrap()
        .message();
    assert!(
        error.contains("reached its bound of 2 iterations without returning `Loop::Done`"),
        "{error}"
    );
    assert_eq!(fetched("bound"), [0, 1]);

    let long = dag! { all = crawl(Cursor::default(), l) with max = 10; };
    let second = runner.run_partial(long).await.unwrap();
    assert_eq!(second.outputs.all, Some(items(4)));
    assert_eq!(iterations(&second.report, "all"), Some((4, 2)));
    assert_eq!(fetched("bound"), [0, 1, 2, 3]);
}

/// Attempts of `slow` by step: the first attempt of each step fails.
static SLOW: Mutex<Option<HashMap<u32, u32>>> = Mutex::new(None);

/// Counts from its state to 3, a step per iteration, each taking 60 ms after a first
/// attempt that fails.
#[task(retries = 1, timeout = "150ms")]
async fn slow(step: &u32) -> Result<Loop<u32, u32>, String> {
    let attempt = {
        let mut slow = SLOW.lock().unwrap();
        let attempts = slow
            .get_or_insert_with(HashMap::new)
            .entry(*step)
            .or_default();
        *attempts += 1;
        *attempts
    };
    if attempt == 1 {
        return Err(format!("step {step} is flaky"));
    }
    tokio::time::sleep(Duration::from_millis(60)).await;
    Ok(if *step >= 3 {
        Loop::Done(*step)
    } else {
        Loop::Again(step + 1)
    })
}

#[tokio::test]
async fn retries_and_timeouts_apply_per_iteration() {
    let retries = Arc::new(Mutex::new(0));
    let counted = retries.clone();
    let runner = Runner::new().without_store().on_event(move |event, _| {
        if let Event::Retrying { .. } = event {
            *counted.lock().unwrap() += 1;
        }
    });
    // Four iterations of 60 ms each: longer than the timeout together, not one by one.
    let partial = runner.run_partial(dag! { n = slow(0u32); }).await.unwrap();
    assert_eq!(partial.outputs.n, Some(3));
    assert_eq!(*retries.lock().unwrap(), 4, "one retry per iteration");
    match &partial.report.node("n").unwrap().outcome {
        Outcome::Ran { attempts, .. } => assert_eq!(*attempts, 5, "one, and a retry each"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_cancelled_loop_resumes_after_its_last_stored_iteration() {
    let runner = Runner::in_memory();
    let cancel = Cancel::new();
    let stop = cancel.clone();
    let stopping = runner
        .clone()
        .cancel_with(cancel)
        .on_event(move |event, _| {
            if let Event::Iterated { iteration: 2, .. } = event {
                stop.cancel();
            }
        });
    let l = listing("cancel", 6);
    let graph = || {
        let l = l.clone();
        dag! { all = crawl(Cursor::default(), l); }
    };
    let Err(typedag::Error::Cancelled(report)) = stopping.run(graph()).await else {
        panic!("the run is cancelled");
    };
    let (done, _) = iterations(&report, "all").unwrap();
    assert!(done >= 2, "{report}");
    let before = fetched("cancel").len();

    let again = runner.run_partial(graph()).await.unwrap();
    assert_eq!(again.outputs.all, Some(items(6)));
    let (total, resumed) = iterations(&again.report, "all").unwrap();
    assert_eq!(total, 6);
    assert!(resumed >= 2, "{}", again.report);
    let pages: Vec<u32> = fetched("cancel")[before..].to_vec();
    assert_eq!(
        pages,
        (resumed..6).collect::<Vec<_>>(),
        "resumed where it stopped"
    );
}

#[tokio::test]
async fn what_loops_cannot_do_yet_is_refused_before_anything_runs() {
    let mut graph = Graph::new("loops-refused");
    let cursors = graph.add::<cursors>("cursors", ()).unwrap();
    graph
        .map::<crawl>("all", (each(cursors), listing("refused", 2)))
        .unwrap();
    let error = Runner::in_memory().run(graph).await.unwrap_err();
    assert!(
        matches!(&error, typedag::Error::Graph(GraphError::Loop { node, .. }) if node == "all"),
        "{error}"
    );
    assert!(error.to_string().contains("cannot be mapped"), "{error}");

    let l = listing("refused", 2);
    let error = Runner::in_memory()
        .distributed("loops-refused")
        .run(dag! { all = crawl(Cursor::default(), l); })
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("cannot run in a distributed run yet"),
        "{error}"
    );

    let mut graph = Graph::new("max-without-loop");
    let n = graph.add::<count>("n", (vec![1u32],)).unwrap();
    graph.configure(&n).max_iterations(3);
    let error = Runner::in_memory().run(graph).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("`max` bounds the iterations of a loop task"),
        "{error}"
    );
}

#[task]
async fn cursors() -> Vec<Cursor> {
    vec![Cursor::default()]
}

#[task]
async fn start_at(page: u32) -> Cursor {
    Cursor {
        page,
        items: Vec::new(),
    }
}

#[tokio::test]
async fn the_initial_state_can_come_from_a_node() {
    let runner = Runner::in_memory();
    let l = listing("upstream", 4);
    let graph = |first: u32| {
        let l = l.clone();
        dag! {
            start = start_at(first);
            all   = crawl(start, l);
        }
    };
    let out = runner.run(graph(2)).await.unwrap();
    assert_eq!(out.all, [20, 21, 22, 30, 31, 32]);
    assert_eq!(fetched("upstream"), [2, 3]);
    let out = runner.run(graph(1)).await.unwrap();
    assert_eq!(out.all, [10, 11, 12, 20, 21, 22, 30, 31, 32]);
    assert_eq!(
        fetched("upstream"),
        [2, 3, 1, 2, 3],
        "another start, from the first"
    );
}

/// Counts its state up to 3 and stores nothing.
#[task(cache = false)]
async fn uncached(n: u32) -> Loop<u32, u32> {
    if n >= 3 {
        Loop::Done(n)
    } else {
        Loop::Again(n + 1)
    }
}

#[tokio::test]
async fn a_loop_that_stores_nothing_runs_whole_every_time() {
    let runner = Runner::in_memory();
    for _ in 0..2 {
        let partial = runner
            .run_partial(dag! { n = uncached(0u32); })
            .await
            .unwrap();
        assert_eq!(partial.outputs.n, Some(3));
        assert_eq!(iterations(&partial.report, "n"), Some((4, 0)));
    }
}
