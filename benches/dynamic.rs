//! Map nodes (`each`) against the same work written as one builder node per item.
//!
//! - `map_100000/{map,builder}/{no_store,embedded}`: 100,000 trivial items. `map` is one
//!   `dag!` map node, `ys = inc(each xs)`, over a `Vec<u64>` node; `builder` adds the same
//!   100,000 `inc` nodes one by one with `Graph::add`, each with its item as a constant.
//!   Every iteration uses new item values, so every item runs (and, with the embedded store,
//!   every record is written). The time includes building the graph.
//! - `map_100000_rerun/embedded`: the map, already stored, run again: `cached` with the same
//!   list (the map node itself is cached; its 100,000-item output is read and handed back);
//!   `same_items`, where the list's task runs again and gives the same list (so the map node
//!   is cached whole: the list is made, hashed and stored, the map's output read);
//!   and `one_item_changed` with one item new each iteration (that item runs; the other
//!   99,999 are found in the node's last `Vec`; the node is assembled and recorded again).
//!
//! Before the timings, the peak memory (`VmHWM`) of one run of each map/builder case, each in
//! a fresh process, is printed beside each other.
//!
//! Run with:
//!
//! ```text
//! cargo bench --bench dynamic
//! ```

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{BatchSize, Criterion};
use tokio::runtime::Runtime;
use typedag::prelude::*;

const ITEMS: u64 = 100_000;

/// The list; `salt` changes nothing in it, but makes the task run again.
#[task]
async fn items(first: u64, salt: u64) -> Vec<u64> {
    let _ = salt;
    (first..first + ITEMS).collect()
}

#[task]
async fn inc(x: &u64) -> u64 {
    x + 1
}

/// A new first item for every graph, so that every item is new.
static ROUND: AtomicU64 = AtomicU64::new(1);

fn fresh() -> u64 {
    ROUND.fetch_add(1, Ordering::Relaxed) * ITEMS * 4
}

macro_rules! map_graph {
    ($first:expr) => {
        map_graph!($first, 0)
    };
    ($first:expr, $salt:expr) => {
        dag! {
            name = "map";
            xs = items($first, $salt);
            ys = inc(each xs);
        }
    };
}

fn builder_graph(first: u64) -> Graph {
    let mut g = Graph::new("builder");
    for x in first..first + ITEMS {
        g.add::<inc>(format!("n{x}"), (x,)).unwrap();
    }
    g
}

fn temp_store(tag: &str) -> (PathBuf, EmbeddedStore) {
    let dir = std::env::temp_dir().join(format!(
        "typedag-bench-dynamic-{tag}-{}-{}",
        std::process::id(),
        fresh()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let store = EmbeddedStore::open(&dir).expect("a store in the temp dir");
    (dir, store)
}

/// A store in a new temp dir, removed when dropped (after the timing, as a routine's
/// output).
struct FreshStore(PathBuf);

impl Drop for FreshStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn runner_for(store: &str) -> (Runner, Option<FreshStore>) {
    match store {
        "no_store" => (Runner::new().without_store(), None),
        _ => {
            let (dir, s) = temp_store("fresh");
            (Runner::new().store(s), Some(FreshStore(dir)))
        }
    }
}

fn fresh_runs(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let mut group = c.benchmark_group("map_100000");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    for store in ["no_store", "embedded"] {
        // Each iteration starts from an empty store: a first run, every record written.
        group.bench_function(format!("map/{store}"), |b| {
            b.iter_batched(
                || (runner_for(store), map_graph!(fresh())),
                |((runner, dir), g)| {
                    let out = rt.block_on(runner.run(g)).unwrap();
                    assert_eq!(out.ys.len(), ITEMS as usize);
                    (runner, dir)
                },
                BatchSize::PerIteration,
            );
        });
        group.bench_function(format!("builder/{store}"), |b| {
            b.iter_batched(
                || (runner_for(store), fresh()),
                |((runner, dir), first)| {
                    let g = builder_graph(first);
                    let report = rt.block_on(runner.run_partial(g)).unwrap().report;
                    assert_eq!(report.ran(), ITEMS as usize);
                    (runner, dir)
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

fn reruns(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let (dir, store) = temp_store("rerun");
    let runner = Runner::new().store(store);
    let first = fresh();
    rt.block_on(runner.run(map_graph!(first))).unwrap();

    let mut group = c.benchmark_group("map_100000_rerun/embedded");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    group.bench_function("cached", |b| {
        b.iter(|| {
            let out = rt.block_on(runner.run(map_graph!(first))).unwrap();
            assert_eq!(out.ys[0], first + 1);
        });
    });
    // The list's task runs again and gives the same list: the map node is cached whole.
    let mut salt = 0;
    group.bench_function("same_items", |b| {
        b.iter(|| {
            salt += 1;
            let partial = rt
                .block_on(runner.run_partial(map_graph!(first, salt)))
                .unwrap();
            assert_eq!(partial.report.ran(), 1);
        });
    });
    // Each iteration shifts the list by one: one new item at the end, the first one gone,
    // the other 99,999 stored.
    let mut start = first;
    group.bench_function("one_item_changed", |b| {
        b.iter(|| {
            start += 1;
            let partial = rt.block_on(runner.run_partial(map_graph!(start))).unwrap();
            let items = partial.report.node("ys").unwrap().items.unwrap();
            assert_eq!((items.ran, items.cached), (1, ITEMS as usize - 1));
        });
    });
    group.finish();
    drop(runner);
    let _ = std::fs::remove_dir_all(dir);
}

/// One run of `case` in this process, then its peak memory in MiB.
fn measure_memory(case: &str) {
    let rt = Runtime::new().unwrap();
    let (dir, runner) = if case.ends_with("embedded") {
        let (dir, s) = temp_store("memory");
        (Some(dir), Runner::new().store(s))
    } else {
        (None, Runner::new().without_store())
    };
    if case.starts_with("map") {
        rt.block_on(runner.run(map_graph!(fresh()))).unwrap();
    } else {
        rt.block_on(runner.run_partial(builder_graph(fresh())))
            .unwrap();
    }
    drop(runner);
    if let Some(dir) = dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    println!("{}", kib / 1024);
}

/// Each case's peak memory, from a fresh process each.
fn peak_memory() {
    let exe = std::env::current_exe().unwrap();
    let mut line =
        String::from("peak memory (VmHWM), one run of 100,000 items in a fresh process:");
    for case in [
        "map/no_store",
        "builder/no_store",
        "map/embedded",
        "builder/embedded",
    ] {
        let out = std::process::Command::new(&exe)
            .env("TYPEDAG_BENCH_MEMORY", case)
            .output()
            .expect("the bench runs itself");
        let mib = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        line.push_str(&format!(" {case} {mib} MiB;"));
    }
    println!("{line}");
}

fn main() {
    if let Ok(case) = std::env::var("TYPEDAG_BENCH_MEMORY") {
        measure_memory(&case);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    if !std::env::args().any(|a| a == "--list" || a == "--test") {
        peak_memory();
    }
    fresh_runs(&mut c);
    reruns(&mut c);
    c.final_summary();
}
