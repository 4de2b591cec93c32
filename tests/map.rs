//! Map nodes: `each` in `dag!` and `Graph::map` in the builder. Each item is a child with
//! its own record keyed by the item's bytes, not its position: inserting, removing or
//! reordering items runs no other; a failed item fails the node once the others are stored,
//! and the next run runs only the failed ones; a map cancelled partway keeps every item
//! that completed.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::items::only_in;
use support::temp_dir::TempDir;
use typedag::Store as _;
use typedag::prelude::*;

/// How often each item ran, by item: the tests read only their own items, each made of a
/// prefix of their own, so they can run at once.
static RAN: Mutex<Option<HashMap<String, usize>>> = Mutex::new(None);

fn ran(item: &str) {
    *RAN.lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .entry(item.to_owned())
        .or_default() += 1;
}

/// How often each item with this prefix ran so far.
fn runs(prefix: &str) -> HashMap<String, usize> {
    RAN.lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

fn ran_since(before: &HashMap<String, usize>, prefix: &str) -> Vec<String> {
    let mut items: Vec<String> = runs(prefix)
        .into_iter()
        .filter(|(k, v)| before.get(k).copied().unwrap_or(0) < *v)
        .map(|(k, _)| k)
        .collect();
    items.sort();
    items
}

#[task]
async fn files(names: Vec<String>) -> Vec<String> {
    names
}

#[task]
async fn parse(name: &str, suffix: String) -> Result<String, String> {
    ran(name);
    if name.contains("broken") {
        return Err(format!("cannot parse {name}"));
    }
    Ok(format!("{name}{suffix}"))
}

#[task]
async fn size(page: String) -> usize {
    page.len()
}

#[task]
async fn combine(pages: &[String]) -> String {
    pages.join(",")
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

macro_rules! pipeline {
    ($names:expr) => {
        dag! {
            name = "map";
            list  = files($names);
            pages = parse(each list, "!".to_owned());
            sizes = size(each pages);
            all   = combine(pages);
        }
    };
}

#[tokio::test]
async fn each_runs_the_task_per_item_and_the_output_is_the_vec_in_order() {
    let out = Runner::in_memory()
        .run(pipeline!(names(&["order-b", "order-a", "order-c"])))
        .await
        .unwrap();
    let pages: Vec<String> = out.pages;
    let sizes: Vec<usize> = out.sizes;
    assert_eq!(pages, ["order-b!", "order-a!", "order-c!"]);
    assert_eq!(sizes, [8, 8, 8]);
    assert_eq!(out.all, "order-b!,order-a!,order-c!");

    let empty = Runner::in_memory()
        .run(pipeline!(Vec::new()))
        .await
        .unwrap();
    assert!(empty.pages.is_empty());
    assert!(empty.sizes.is_empty());
    assert_eq!(empty.all, "");
}

#[tokio::test]
async fn items_are_cached_by_their_bytes_not_their_position() {
    let runner = Runner::new().store(MemoryStore::new());
    let p = "key-";
    let first = runner
        .run(pipeline!(names(&["key-a", "key-b", "key-c"])))
        .await
        .unwrap();
    assert_eq!(first.all, "key-a!,key-b!,key-c!");

    // Insert one, drop one, reorder: only the new item runs.
    let before = runs(p);
    let second = runner
        .run_partial(pipeline!(names(&["key-c", "key-new", "key-a"])))
        .await
        .unwrap();
    assert_eq!(ran_since(&before, p), ["key-new"]);
    let items = second.report.node("pages").unwrap().items.unwrap();
    assert_eq!((items.total, items.ran, items.cached), (3, 1, 2));
    assert_eq!(
        second.outputs.pages.unwrap(),
        ["key-c!", "key-new!", "key-a!"]
    );

    // The same list again: the map node itself is cached, no item is even looked at.
    let before = runs(p);
    let third = runner
        .run_partial(pipeline!(names(&["key-c", "key-new", "key-a"])))
        .await
        .unwrap();
    assert!(ran_since(&before, p).is_empty());
    assert_eq!(third.report.ran(), 0);
    assert_eq!(third.outputs.all.unwrap(), "key-c!,key-new!,key-a!");
}

#[tokio::test]
async fn a_long_list_with_a_few_edits_runs_only_the_new_items() {
    // Long enough that the list is cut in many chunks: the rerun finds most items by chunk,
    // the rest by key.
    let runner = Runner::new().store(MemoryStore::new());
    let p = "long-";
    let list: Vec<String> = (0..3_000).map(|i| format!("long-{i}")).collect();
    runner.run(pipeline!(list.clone())).await.unwrap();

    let mut edited = list.clone();
    edited.insert(1_500, "long-new-a".to_owned());
    edited.remove(10);
    edited[2_500] = "long-new-b".to_owned();
    edited.swap(100, 2_000);
    edited[2_900..].reverse();
    let before = runs(p);
    let second = runner.run_partial(pipeline!(edited.clone())).await.unwrap();
    assert_eq!(ran_since(&before, p), ["long-new-a", "long-new-b"]);
    let pages: Vec<String> = edited.iter().map(|n| format!("{n}!")).collect();
    assert!(
        second.outputs.pages.as_ref() == Some(&pages),
        "pages out of order"
    );
    let items = second.report.node("pages").unwrap().items.unwrap();
    assert_eq!((items.total, items.ran, items.cached), (3_000, 2, 2_998));

    // And back: the two items the last list did not have run again (the store keeps the
    // items of the last list, not of every list ever mapped); the others are found.
    let before = runs(p);
    let third = runner.run_partial(pipeline!(list.clone())).await.unwrap();
    assert_eq!(ran_since(&before, p), ["long-10", "long-2500"]);
    let pages: Vec<String> = list.iter().map(|n| format!("{n}!")).collect();
    assert!(
        third.outputs.pages.as_ref() == Some(&pages),
        "pages out of order"
    );
}

#[tokio::test]
async fn the_other_inputs_reach_every_item_and_changing_one_runs_every_item() {
    let runner = Runner::new().store(MemoryStore::new());
    let p = "other-";
    let g = |suffix: &str| {
        let suffix = suffix.to_owned();
        dag! {
            name = "other";
            list  = files(names(&["other-a", "other-b"]));
            pages = parse(each list, suffix);
        }
    };
    assert_eq!(
        runner.run(g("?")).await.unwrap().pages,
        ["other-a?", "other-b?"]
    );
    let before = runs(p);
    assert_eq!(
        runner.run(g("?")).await.unwrap().pages,
        ["other-a?", "other-b?"]
    );
    assert!(ran_since(&before, p).is_empty());
    assert_eq!(
        runner.run(g("#")).await.unwrap().pages,
        ["other-a#", "other-b#"]
    );
    assert_eq!(ran_since(&before, p), ["other-a", "other-b"]);
}

#[tokio::test]
async fn a_failed_item_fails_the_node_after_the_others_are_stored_and_only_it_runs_again() {
    let store = MemoryStore::new();
    let runner = Runner::new().store(store.clone());
    let p = "fail-";
    let items = names(&["fail-a", "fail-broken", "fail-c"]);
    let before = runs(p);
    let first = runner.run_partial(pipeline!(items.clone())).await.unwrap();
    let report = &first.report;
    assert!(!report.is_success());
    let error = report.node("pages").unwrap().outcome.error().unwrap();
    assert!(
        error.message().contains("1 of 3 items failed")
            && error
                .message()
                .contains("item 1 (\"fail-broken\"): cannot parse fail-broken"),
        "{error}"
    );
    assert!(matches!(
        report.node("all").unwrap().outcome,
        Outcome::Skipped { .. }
    ));
    assert_eq!(first.outputs.pages, None);
    assert_eq!(ran_since(&before, p), ["fail-a", "fail-broken", "fail-c"]);

    let before = runs(p);
    let second = runner.run_partial(pipeline!(items)).await.unwrap();
    assert_eq!(
        ran_since(&before, p),
        ["fail-broken"],
        "only the failed item runs"
    );
    let items = second.report.node("pages").unwrap().items.unwrap();
    assert_eq!((items.ran, items.cached, items.failed), (1, 2, 1));

    // The broken item replaced: it alone runs, and once the node completes, the store keeps
    // its `Vec` and index, and neither the batches of items nor the failed item's record.
    let before = runs(p);
    let fixed = names(&["fail-a", "fail-fixed", "fail-c"]);
    let third = runner.run_partial(pipeline!(fixed)).await.unwrap();
    assert!(third.report.is_success(), "{}", third.report);
    assert_eq!(ran_since(&before, p), ["fail-fixed"]);
    let mut left: Vec<String> = store
        .load("map")
        .await
        .unwrap()
        .records
        .into_keys()
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "all",
            "list",
            "pages",
            "pages#items",
            "sizes",
            "sizes#items"
        ]
    );
}

#[tokio::test]
async fn events_name_each_item_and_count_items_as_work() {
    let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
    let last = std::sync::Arc::new(Mutex::new(None));
    let (s, l) = (seen.clone(), last.clone());
    let runner = Runner::in_memory().on_event(move |event, totals| {
        match event {
            Event::Completed { node, .. } => s.lock().unwrap().push(node.to_string()),
            Event::Mapped { node, items, .. } => s.lock().unwrap().push(format!("{node}: {items}")),
            _ => {}
        }
        *l.lock().unwrap() = Some(*totals);
    });
    runner
        .run(pipeline!(names(&["event-a", "event-b"])))
        .await
        .unwrap();
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen,
        [
            "all", "list", "pages", "pages: 2", "pages[0]", "pages[1]", "sizes", "sizes: 2",
            "sizes[0]", "sizes[1]"
        ]
    );
    let totals = last.lock().unwrap().unwrap();
    assert_eq!(totals.total, 4 + 4, "four nodes and four items");
    assert_eq!(totals.finished(), totals.total);
}

#[tokio::test]
async fn the_builder_maps_with_each() {
    let mut g = Graph::new("built");
    let list = g
        .add::<files>("list", (names(&["built-a", "built-b"]),))
        .unwrap();
    let pages = g
        .map::<parse>("pages", (each(list), "+".to_owned()))
        .unwrap();
    let all = g.add::<combine>("all", (pages,)).unwrap();
    let (pages, all) = (g.keep(pages), g.keep(all));
    let out = Runner::in_memory().run(g).await.unwrap();
    assert_eq!(out.get(&pages), &["built-a+", "built-b+"]);
    assert_eq!(out.get(&all), "built-a+,built-b+");

    let mut g = Graph::new("wrong");
    let list = g.add::<files>("list", (names(&["x"]),)).unwrap();
    let error = g
        .add::<parse>("pages", (each(list), "+".to_owned()))
        .unwrap_err();
    assert!(
        error.to_string().contains("added with `Graph::map`"),
        "{error}"
    );
    let error = g.map::<size>("sizes", ("x".to_owned(),)).unwrap_err();
    assert!(error.to_string().contains("takes exactly one"), "{error}");
}

#[tokio::test]
async fn a_map_survives_the_process_store_across_runners() {
    // A fresh runner on the same store finds the items: records are in the store, not in
    // the runner.
    let store = MemoryStore::new();
    let p = "fresh-";
    Runner::new()
        .store(store.clone())
        .run(pipeline!(names(&["fresh-a", "fresh-b"])))
        .await
        .unwrap();
    let before = runs(p);
    let out = Runner::new()
        .store(store)
        .run(pipeline!(names(&["fresh-b", "fresh-c", "fresh-a"])))
        .await
        .unwrap();
    assert_eq!(ran_since(&before, p), ["fresh-c"]);
    assert_eq!(out.sizes, [8, 8, 8]);
}

#[task]
async fn numbers(n: u64) -> Vec<u64> {
    (0..n).collect()
}

/// Takes 1 to 3 ms, so that a cancel lands mid-map and items finish out of the list's order.
#[task]
async fn slow_square(x: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(1 + x % 3)).await;
    x * x
}

#[tokio::test]
async fn a_cancelled_map_keeps_every_item_completed_and_the_next_run_runs_the_rest() {
    const N: u64 = 2_000;
    const CANCEL_AFTER: usize = 200;
    let dir = TempDir::new("map-cancel");
    let store = EmbeddedStore::open(&dir.0).unwrap();
    let graph = || {
        dag! {
            name = "cancel";
            list    = numbers(N);
            squares = slow_square(each list);
        }
    };
    let item = |node: &str| -> Option<usize> {
        node.strip_prefix("squares[")?
            .strip_suffix(']')?
            .parse()
            .ok()
    };

    // Cancelled once CANCEL_AFTER items are durable.
    let cancel = Cancel::new();
    let completed = Arc::new(Mutex::new(HashSet::new()));
    let runner = Runner::new()
        .store(store.clone())
        .concurrency(8)
        .cancel_with(cancel.clone())
        .on_event({
            let completed = completed.clone();
            move |event, _| {
                if let Event::Completed { node, .. } = event
                    && let Some(i) = item(node)
                {
                    let mut completed = completed.lock().unwrap();
                    completed.insert(i);
                    if completed.len() >= CANCEL_AFTER {
                        cancel.cancel();
                    }
                }
            }
        });
    let error = tokio::time::timeout(Duration::from_secs(30), runner.run(graph()))
        .await
        .expect("a cancelled map ends")
        .unwrap_err();
    assert!(matches!(error, Error::Cancelled(_)), "{error}");
    let report = error.report().unwrap();
    assert_eq!(report.node("squares").unwrap().outcome, Outcome::Cancelled);
    let completed = std::mem::take(&mut *completed.lock().unwrap());
    assert!(
        completed.len() >= CANCEL_AFTER && completed.len() < N as usize,
        "the cancel did not land mid-map: {} of {N} items completed",
        completed.len()
    );
    // The report counts the items the cancelled map got through.
    let counts = report.node("squares").unwrap().items.expect("item counts");
    assert_eq!((counts.total, counts.ran), (N as usize, completed.len()));

    // The next run loads exactly the items that completed, and runs every other once.
    let cached = Arc::new(Mutex::new(HashSet::new()));
    let ran = Arc::new(Mutex::new(Vec::new()));
    let out = Runner::new()
        .store(store)
        .on_event({
            let (cached, ran) = (cached.clone(), ran.clone());
            move |event, _| match event {
                Event::Cached { node, .. } => cached.lock().unwrap().extend(item(node)),
                Event::Started { node, .. } => ran.lock().unwrap().extend(item(node)),
                _ => {}
            }
        })
        .run(graph())
        .await
        .unwrap();
    let cached = std::mem::take(&mut *cached.lock().unwrap());
    assert!(
        cached == completed,
        "the items loaded must be those that completed; completed, not loaded: {}; loaded, never completed: {}",
        only_in("squares", &completed, &cached),
        only_in("squares", &cached, &completed)
    );
    let ran = std::mem::take(&mut *ran.lock().unwrap());
    let ran_once: HashSet<usize> = ran.iter().copied().collect();
    assert_eq!(ran_once.len(), ran.len(), "an item ran twice");
    let rest: HashSet<usize> = (0..N as usize).filter(|i| !completed.contains(i)).collect();
    assert!(
        ran_once == rest,
        "the items that run must be those that did not complete; not completed, not run: {}; run, though completed: {}",
        only_in("squares", &rest, &ran_once),
        only_in("squares", &ran_once, &rest)
    );
    let want: Vec<u64> = (0..N).map(|x| x * x).collect();
    assert!(
        out.squares == want,
        "the output must be every item's square in item order; {} items, the first wrong at {:?}",
        out.squares.len(),
        out.squares.iter().zip(&want).position(|(a, b)| a != b)
    );
}

#[tokio::test]
async fn explain_says_how_many_items_a_run_would_load_and_run() {
    let runner = Runner::new().store(MemoryStore::new());
    runner
        .run(pipeline!(names(&["plan-a", "plan-b"])))
        .await
        .unwrap();
    // Explain reads the items of a list the store holds: store the new list under the
    // graph's `list` node first, with a graph of the same name that has only that node.
    let wanted = names(&["plan-b", "plan-new", "plan-a"]);
    runner
        .run(dag! { name = "map"; list = files(wanted.clone()); })
        .await
        .unwrap();
    let plan = runner.explain(&pipeline!(wanted)).await.unwrap();
    assert!(matches!(plan.node("pages"), Some(NodeState::Runs(_))));
    let items = plan.items("pages").unwrap();
    assert_eq!((items.total, items.stored, items.to_run), (3, 2, 1));
    assert!(
        plan.to_string().contains("3 items: 2 stored, 1 to run"),
        "{plan}"
    );
}

/// How many of the tasks below run at this moment, and the most there ever were.
static NOW: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static MOST: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static LIMITED_NOW: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static LIMITED_MOST: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

async fn busy(now: &std::sync::atomic::AtomicUsize, most: &std::sync::atomic::AtomicUsize) {
    use std::sync::atomic::Ordering::SeqCst;
    let n = now.fetch_add(1, SeqCst) + 1;
    most.fetch_max(n, SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(15)).await;
    now.fetch_sub(1, SeqCst);
}

#[task]
async fn slow_item(x: &u64) -> u64 {
    busy(&NOW, &MOST).await;
    *x
}

#[task]
async fn slow_node(x: u64) -> u64 {
    busy(&NOW, &MOST).await;
    x
}

#[task(limit = 2)]
async fn limited_item(x: &u64) -> u64 {
    busy(&LIMITED_NOW, &LIMITED_MOST).await;
    *x
}

#[task]
async fn count_to(n: u64) -> Vec<u64> {
    (0..n).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn map_items_count_against_the_runs_concurrency_and_the_tasks_limit() {
    let graph = dag! {
        name = "bounded";
        xs = count_to(12);
        a  = slow_item(each xs);
        b  = slow_node(1);
        c  = slow_node(2);
        d  = slow_node(3);
        e  = slow_node(4);
    };
    let out = Runner::in_memory().concurrency(3).run(graph).await.unwrap();
    assert_eq!(out.a.len(), 12);
    let most = MOST.load(std::sync::atomic::Ordering::SeqCst);
    assert!(most <= 3, "{most} tasks ran at once with concurrency 3");
    assert!(most >= 2, "the map's items ran one at a time");

    let graph = dag! {
        name = "limited";
        xs = count_to(8);
        p  = limited_item(each xs);
        q  = limited_item(each xs);
    };
    let out = Runner::in_memory().run(graph).await.unwrap();
    assert_eq!((out.p.len(), out.q.len()), (8, 8));
    let most = LIMITED_MOST.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        most <= 2,
        "{most} items of a task with limit = 2 ran at once"
    );
}

#[tokio::test]
async fn with_fail_fast_no_item_starts_after_one_failed() {
    let p = "ff-";
    let mut items: Vec<String> = vec!["ff-broken".to_owned()];
    items.extend((0..50).map(|i| format!("ff-{i}")));
    let before = runs(p);
    let graph = dag! {
        name = "fail-fast";
        list  = files(items);
        pages = parse(each list, "!".to_owned());
    };
    let partial = Runner::in_memory()
        .concurrency(1)
        .fail_fast(true)
        .run_partial(graph)
        .await
        .unwrap();
    let error = partial
        .report
        .node("pages")
        .unwrap()
        .outcome
        .error()
        .unwrap();
    assert!(error.message().contains("50 did not start"), "{error}");
    assert_eq!(ran_since(&before, p), ["ff-broken"]);
    let items = partial.report.node("pages").unwrap().items.unwrap();
    assert_eq!((items.ran, items.failed), (1, 1));
}

#[task]
async fn boom() -> Result<u64, String> {
    tokio::time::sleep(Duration::from_millis(10)).await;
    Err("boom".to_owned())
}

#[tokio::test]
async fn with_fail_fast_no_item_starts_once_another_node_failed() {
    let graph = dag! {
        name = "fail-fast-other";
        bad     = boom();
        list    = numbers(400);
        squares = slow_square(each list);
    };
    let partial = Runner::in_memory()
        .concurrency(2)
        .fail_fast(true)
        .run_partial(graph)
        .await
        .unwrap();
    let node = partial.report.node("squares").unwrap();
    let error = node.outcome.error().expect("the map stops with the run");
    assert!(
        error.message().contains("the run stopped before")
            && error.message().contains("of its 400 items started"),
        "{error}"
    );
    let items = node.items.unwrap();
    assert!(items.ran < 400 && items.failed == 0, "{items:?}");
}

static GROW_NOW: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static GROW_MOST: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[task]
async fn grow_item(x: &u64) -> u64 {
    busy(&GROW_NOW, &GROW_MOST).await;
    *x
}

/// Holds a slot of the run for 100 ms.
#[task]
async fn hold(x: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(100)).await;
    x
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_running_map_takes_the_slots_that_free_up() {
    // Three nodes hold three of the four slots when the map starts, so it starts with one
    // worker; once they end, it runs four items at once.
    let graph = dag! {
        name = "grow";
        h1 = hold(1);
        h2 = hold(2);
        h3 = hold(3);
        xs = count_to(60);
        ys = grow_item(each xs);
    };
    let out = Runner::in_memory().concurrency(4).run(graph).await.unwrap();
    assert_eq!(out.ys, (0..60).collect::<Vec<u64>>());
    let most = GROW_MOST.load(std::sync::atomic::Ordering::SeqCst);
    assert!(most <= 4, "{most} items ran at once with concurrency 4");
    assert!(
        most >= 3,
        "the map never took the slots freed by the others: {most} at once"
    );
}

#[task]
async fn paths(names: Vec<String>) -> Vec<std::path::PathBuf> {
    names.into_iter().map(std::path::PathBuf::from).collect()
}

/// Takes each item as a `&Path`, borrowed from the list's `PathBuf`.
#[task]
async fn extension(path: &std::path::Path) -> String {
    path.extension()
        .map_or_else(String::new, |e| e.to_string_lossy().into_owned())
}

/// Takes a map node that may not run as an `Option`.
#[task]
async fn count_or_zero(exts: Option<&Vec<String>>) -> usize {
    exts.map_or(0, Vec::len)
}

#[task]
async fn is_long(names: &[String]) -> bool {
    names.len() > 2
}

static TOTALS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[task]
async fn total_len(lens: &[usize]) -> usize {
    TOTALS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    lens.iter().sum()
}

#[task]
async fn len_of(name: &str) -> usize {
    name.len()
}

#[tokio::test]
async fn items_borrowed_as_path_and_a_conditional_map_read_through_an_option() {
    for (names, want) in [
        (names(&["a.txt", "b.rs", "c"]), Some(vec!["txt", "rs", ""])),
        (names(&["a.txt"]), None),
    ] {
        let g = dag! {
            name = "paths";
            list  = paths(names.clone());
            long  = is_long(names.clone());
            exts  = extension(each list) if long;
            count = count_or_zero(exts);
        };
        let out = Runner::new().without_store().run(g).await.unwrap();
        let want: Option<Vec<String>> = want.map(|w| w.into_iter().map(String::from).collect());
        assert_eq!(out.count, want.as_ref().map_or(0, Vec::len));
        assert_eq!(out.exts, want);
    }
}

#[tokio::test]
async fn an_edited_item_whose_output_has_the_same_bytes_leaves_dependents_cached() {
    let runner = Runner::new().store(MemoryStore::new());
    let graph = |names: Vec<String>| {
        dag! {
            name = "same-bytes";
            list  = files(names);
            lens  = len_of(each list);
            total = total_len(lens);
        }
    };
    let first = runner.run(graph(names(&["ab", "cde", "f"]))).await.unwrap();
    assert_eq!(first.total, 6);
    let before = TOTALS.load(std::sync::atomic::Ordering::SeqCst);
    // "cde" becomes "xyz": its item runs, the `Vec` of lengths has the same bytes, and the
    // node that reads it is cached.
    let second = runner
        .run_partial(graph(names(&["ab", "xyz", "f"])))
        .await
        .unwrap();
    let items = second.report.node("lens").unwrap().items.unwrap();
    assert_eq!((items.ran, items.cached), (1, 2));
    assert_eq!(
        second.report.node("total").unwrap().outcome,
        Outcome::Cached
    );
    assert_eq!(TOTALS.load(std::sync::atomic::Ordering::SeqCst), before);
}
