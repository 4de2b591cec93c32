//! Crash safety: a child process runs a graph against an embedded store and is killed with
//! SIGKILL at random moments. After every kill the store must open, every record must be
//! intact, and every node the child reported completed must be there; the graph then
//! finishes, and no node ever ran more often than once plus the kills that caught it in
//! flight.
//!
//! A map of 2,400 items is killed the same way partway through, child after child: every
//! item reported completed is in the store, and no stored item runs again; a last run
//! loads exactly the stored items, runs the others, and hands back every item's output in
//! item order.
//!
//! A loop of 60 iterations is killed the same way: each child resumes at or after the last
//! iteration reported stored, never past one that no child reached; the last one finishes
//! with the right output, and a rerun runs no iteration.
//!
//! A program killed while a signal waits: the value delivered into the store meanwhile is
//! taken by the program started again, without waiting, and what it stored before stays.

mod support;

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::items::only_in;
use support::temp_dir::TempDir;
use typedag::prelude::*;
use typedag::store::{Loaded, RecordState, Store};

const NODES: u64 = 240;
const KILLS: usize = 20;

/// A task that takes a while and whose output depends on all of its inputs.
#[task]
async fn work(i: u64, sleep_ms: u64, inputs: Vec<u64>) -> u64 {
    tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
    inputs
        .iter()
        .fold(i.wrapping_mul(0x9e37_79b9_7f4a_7c15), |acc, x| {
            acc.rotate_left(7) ^ x
        })
}

/// The graph: node i reads up to two earlier nodes; sleeps of 2 to 9 ms.
fn shape() -> Vec<(u64, u64, Vec<usize>)> {
    let mut rng = Rng(7);
    (0..NODES)
        .map(|i| {
            let sleep = 2 + rng.below(8);
            let mut inputs = Vec::new();
            if i >= 4 {
                for _ in 0..2 {
                    let j = usize::try_from(rng.below(i)).unwrap();
                    if !inputs.contains(&j) {
                        inputs.push(j);
                    }
                }
            }
            (i, sleep, inputs)
        })
        .collect()
}

/// Each node's output, computed here without typedag.
fn expected() -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    for (i, _, inputs) in shape() {
        let v = inputs
            .iter()
            .fold(i.wrapping_mul(0x9e37_79b9_7f4a_7c15), |acc, &j| {
                acc.rotate_left(7) ^ out[j]
            });
        out.push(v);
    }
    out
}

fn build(name: &str) -> (Graph, Vec<typedag::Kept<u64>>) {
    let mut graph = Graph::new(name);
    let mut nodes = Vec::new();
    for (i, sleep, inputs) in shape() {
        let list: Vec<_> = inputs.iter().map(|&j| nodes[j]).collect();
        nodes.push(
            graph
                .add::<work>(format!("n{i}"), (i, sleep, list))
                .unwrap(),
        );
    }
    let kept = nodes.into_iter().map(|n| graph.keep(n)).collect();
    (graph, kept)
}

/// xorshift64*: enough randomness for kill times, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The child: runs graph `TYPEDAG_CRASH_GRAPH` in store `TYPEDAG_CRASH_STORE`, printing
/// `start ID` when a node starts and `done ID` when its output is durable.
#[test]
#[ignore = "the child process of `sigkill_at_random_moments_loses_nothing_reported_done`"]
fn crash_child() {
    let (Ok(dir), Ok(name)) = (
        std::env::var("TYPEDAG_CRASH_STORE"),
        std::env::var("TYPEDAG_CRASH_GRAPH"),
    ) else {
        return;
    };
    let runner = Runner::new()
        .store(EmbeddedStore::open(dir).unwrap())
        .concurrency(4)
        .on_event(|event, _| print_progress(event));
    let (graph, _) = build(&name);
    child_runtime().block_on(runner.run(graph)).unwrap();
    println!("finished");
}

/// The runtime a child runs its graph on.
fn child_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

/// What a child prints for the parent, a line at a time as it happens: `start ID` when a
/// node (or item) starts, `done ID` once its output is durable.
fn print_progress(event: &Event<'_>) {
    match event {
        Event::Started {
            node, attempt: 1, ..
        } => say(&format!("start {node}")),
        Event::Completed { node, .. } => say(&format!("done {node}")),
        _ => {}
    }
}

/// Prints a line for the parent at once.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// A child process running one of this binary's ignored `*_child` tests, and the lines it
/// has printed so far.
struct Child {
    process: std::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: std::thread::JoinHandle<()>,
}

impl Child {
    fn spawn(test: &str, env: &[(&str, &OsStr)]) -> Self {
        let mut process = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", test, "--ignored", "--nocapture", "--quiet"])
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let reader = {
            let lines = lines.clone();
            let stdout = process.stdout.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            })
        };
        Self {
            process,
            lines,
            reader,
        }
    }

    /// Waits until the lines printed so far satisfy `seen`: `false` if the child exited
    /// first, or 20 s went by.
    fn wait_for(&mut self, seen: impl Fn(&[String]) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if seen(&self.lines.lock().unwrap()) {
                return true;
            }
            if Instant::now() >= deadline || self.process.try_wait().unwrap().is_some() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Kills the child with SIGKILL if `kill`, waits for it to end, and hands back how it
    /// ended and every line it printed.
    fn end(mut self, kill: bool) -> (ExitStatus, Vec<String>) {
        if kill {
            let _ = self.process.kill(); // SIGKILL
        }
        let status = self.process.wait().unwrap();
        self.reader.join().unwrap();
        let lines = std::mem::take(&mut *self.lines.lock().unwrap());
        (status, lines)
    }
}

/// What one child printed before it died or finished.
struct Life {
    started: Vec<String>,
    done: HashSet<String>,
    finished: bool,
}

fn spawn_child(dir: &Path, graph: &str, kill_after: Option<Duration>) -> Life {
    let mut child = Child::spawn(
        "crash_child",
        &[
            ("TYPEDAG_CRASH_STORE", dir.as_os_str()),
            ("TYPEDAG_CRASH_GRAPH", OsStr::new(graph)),
        ],
    );
    if let Some(delay) = kill_after {
        // Kill only once the child is at work, so that every kill can catch something.
        child.wait_for(|lines| lines.iter().any(|l| l.starts_with("start ")));
        std::thread::sleep(delay);
    }
    let (status, lines) = child.end(kill_after.is_some());
    let finished = lines.iter().any(|l| l == "finished");
    if kill_after.is_none() {
        assert!(
            status.success() && finished,
            "the last run must finish: {status}"
        );
    }
    let mut life = Life {
        started: Vec::new(),
        done: HashSet::new(),
        finished,
    };
    for line in lines {
        if let Some(id) = line.strip_prefix("start ") {
            life.started.push(id.to_owned());
        } else if let Some(id) = line.strip_prefix("done ") {
            life.done.insert(id.to_owned());
        }
    }
    life
}

/// Opens the store as the next run would, and checks every record of `graph`.
fn check_store(dir: &Path, graph: &str, reported_done: &HashSet<String>) -> usize {
    let store = EmbeddedStore::open(dir).expect("the store opens after a kill");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let snapshot = rt.block_on(store.load(graph)).unwrap();
    let want = expected();
    let mut done = 0;
    for (node, loaded) in &snapshot.records {
        let Loaded::Record(record) = loaded else {
            panic!("record of {node} is damaged: {loaded:?}");
        };
        if let RecordState::Done { digest, .. } = &record.state {
            let bytes = rt
                .block_on(store.output(graph, node, digest))
                .unwrap()
                .unwrap_or_else(|| panic!("output of {node} is missing or damaged"));
            let value: u64 = postcard::from_bytes(&bytes).unwrap();
            let i: usize = node[1..].parse().unwrap();
            assert_eq!(value, want[i], "the stored output of {node} is wrong");
            done += 1;
        }
    }
    for node in reported_done {
        match snapshot.records.get(node) {
            Some(Loaded::Record(r)) if matches!(r.state, RecordState::Done { .. }) => {}
            other => panic!("{node} was reported done but the store has {other:?}"),
        }
    }
    done
}

#[test]
fn sigkill_at_random_moments_loses_nothing_reported_done() {
    let dir: PathBuf = std::env::temp_dir().join(format!("typedag-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill times seeded with {seed}");
    let mut rng = Rng(seed);
    let mut kills = 0;
    let mut caught = 0;
    let mut round = 0;
    while kills < KILLS {
        round += 1;
        let graph = format!("crash-{round}");
        let mut starts: HashMap<String, usize> = HashMap::new();
        let mut in_flight_kills: HashMap<String, usize> = HashMap::new();
        let mut reported: HashSet<String> = HashSet::new();
        loop {
            let kill = kills < KILLS;
            let delay = Duration::from_millis(rng.below(60));
            let life = spawn_child(&dir, &graph, kill.then_some(delay));
            for id in &life.started {
                *starts.entry(id.clone()).or_default() += 1;
            }
            reported.extend(life.done.iter().cloned());
            if life.finished {
                break;
            }
            kills += 1;
            let in_flight: Vec<_> = life
                .started
                .iter()
                .filter(|id| !life.done.contains(*id))
                .collect();
            if !in_flight.is_empty() {
                caught += 1;
            }
            for id in in_flight {
                *in_flight_kills.entry(id.clone()).or_default() += 1;
            }
            let done = check_store(&dir, &graph, &reported);
            eprintln!(
                "kill {kills}: after {delay:?}, {} started, {} done in this life, {done} stored",
                life.started.len(),
                life.done.len()
            );
        }
        assert_eq!(check_store(&dir, &graph, &reported), NODES as usize);
        for (id, n) in &starts {
            let bound = 1 + in_flight_kills.get(id).copied().unwrap_or(0);
            assert!(*n <= bound, "{id} ran {n} times; bound {bound}");
        }

        // A last run in this process: everything cached, every output right.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let (g, kept) = build(&graph);
        let runner = Runner::new().store(EmbeddedStore::open(&dir).unwrap());
        let partial = rt.block_on(runner.run_partial(g)).unwrap();
        assert_eq!(
            partial.report.cached(),
            NODES as usize,
            "{}",
            partial.report
        );
        let want = expected();
        for (k, w) in kept.iter().zip(&want) {
            assert_eq!(partial.outputs.try_get(k), Some(w));
        }
    }
    assert!(
        caught >= KILLS / 2,
        "only {caught} of {kills} kills caught a node in flight"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Items in the map of `sigkill_mid_map_loses_no_item_reported_done`.
const ITEMS: u64 = 2_400;
/// Children killed mid-map before the map runs to its end in the test's own process.
const MAP_KILLS: usize = 3;

/// The map's list: distinct items, out of the order of their values, so that a `Vec`
/// assembled in any order but the list's is wrong.
#[task]
async fn items(n: u64) -> Vec<u64> {
    (0..n).map(item).collect()
}

/// Item `i` of the list; the multiplier is odd, so no two items are equal.
fn item(i: u64) -> u64 {
    i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// One item's page: the item itself, so that a stored output tells which item it is, and
/// a value computed from it. Takes 1 to 3 ms, so that a kill lands mid-map and items
/// finish out of the list's order.
#[task]
async fn page(x: u64) -> (u64, u64) {
    tokio::time::sleep(Duration::from_millis(1 + x % 3)).await;
    (x, page_value(x))
}

fn page_value(x: u64) -> u64 {
    x.rotate_left(17) ^ 0x5bd1_e995
}

/// The map's output, computed here without typedag.
fn expected_pages() -> Vec<(u64, u64)> {
    (0..ITEMS).map(|i| (item(i), page_value(item(i)))).collect()
}

fn map_graph() -> (Graph, typedag::Kept<Vec<(u64, u64)>>) {
    let mut graph = Graph::new("map-crash");
    let list = graph.add::<items>("list", (ITEMS,)).unwrap();
    let pages = graph.map::<page>("pages", (each(list),)).unwrap();
    let pages = graph.keep(pages);
    (graph, pages)
}

/// Which item an event or a line names: `i` of `pages[i]`.
fn item_of(node: &str) -> Option<usize> {
    node.strip_prefix("pages[")?.strip_suffix(']')?.parse().ok()
}

/// The child: runs the map in store `TYPEDAG_MAP_CRASH_STORE`, printing `start pages[i]` when
/// an item starts and `done pages[i]` when its output is durable.
#[test]
#[ignore = "the child process of `sigkill_mid_map_loses_no_item_reported_done`"]
fn map_crash_child() {
    let Ok(dir) = std::env::var("TYPEDAG_MAP_CRASH_STORE") else {
        return;
    };
    let runner = Runner::new()
        .store(EmbeddedStore::open(dir).unwrap())
        .concurrency(8)
        .on_event(|event, _| print_progress(event));
    child_runtime().block_on(runner.run(map_graph().0)).unwrap();
    println!("finished");
}

/// A batch of finished items as the store holds it (`pages#log<k>`): the context they were
/// computed in, then each item's key and output bytes (`None` for a failed item).
type Batch = ([u8; 32], Vec<([u8; 16], Option<Vec<u8>>)>);

/// The items whose output the store holds, by position, each checked against its item.
/// While the map has not completed, items are in batch records, each named `pages#log<k>`.
fn stored_items(rt: &tokio::runtime::Runtime, store: &EmbeddedStore) -> HashSet<usize> {
    let position: HashMap<u64, usize> = (0..ITEMS)
        .map(|i| (item(i), usize::try_from(i).unwrap()))
        .collect();
    let snapshot = rt.block_on(store.load("map-crash")).unwrap();
    let mut stored = HashSet::new();
    for (node, loaded) in &snapshot.records {
        assert_ne!(
            node, "pages",
            "the map node is recorded before every item was done"
        );
        if node == "list" {
            continue;
        }
        assert!(
            node.starts_with("pages#log"),
            "{node}: a record that is neither the list nor a batch of items"
        );
        let Loaded::Record(record) = loaded else {
            panic!("record of {node} is damaged: {loaded:?}");
        };
        let RecordState::Done { digest, .. } = &record.state else {
            panic!("{node} is recorded as {:?}", record.state);
        };
        let bytes = rt
            .block_on(store.output("map-crash", node, digest))
            .unwrap()
            .unwrap_or_else(|| panic!("output of {node} is missing or damaged"));
        let (_, items): Batch = postcard::from_bytes(&bytes).unwrap();
        for (_, output) in items {
            let output = output.unwrap_or_else(|| panic!("{node} names a failed item"));
            let (x, value): (u64, u64) = postcard::from_bytes(&output).unwrap();
            assert_eq!(
                value,
                page_value(x),
                "the stored output of item {x} is wrong"
            );
            let i = position[&x];
            assert!(stored.insert(i), "item {i} is stored twice");
        }
    }
    stored
}

#[test]
fn sigkill_mid_map_loses_no_item_reported_done() {
    let dir = TempDir::new("map-crash");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill points seeded with {seed}");
    let mut rng = Rng(seed);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let mut done: HashSet<usize> = HashSet::new();
    let mut stored: HashSet<usize> = HashSet::new();
    for kill in 1..=MAP_KILLS {
        // Each child resumes the map and is killed after 5% to 20% of the items are newly
        // reported done: past its first commits, and with items left to run.
        let target = usize::try_from(ITEMS / 20 + rng.below(ITEMS * 3 / 20)).unwrap();
        let mut child = Child::spawn(
            "map_crash_child",
            &[("TYPEDAG_MAP_CRASH_STORE", dir.0.as_os_str())],
        );
        let reached = child.wait_for(|lines| {
            lines
                .iter()
                .filter(|l| l.starts_with("done pages["))
                .count()
                >= target
        });
        let (_, lines) = child.end(true);
        assert!(
            reached,
            "child {kill} stopped before {target} items were done; its last line: {:?}",
            lines.last()
        );
        assert!(!lines.iter().any(|l| l == "finished"));
        let on = |prefix: &str| -> HashSet<usize> {
            lines
                .iter()
                .filter_map(|l| item_of(l.strip_prefix(prefix)?))
                .collect()
        };
        let (started, done_now) = (on("start "), on("done "));
        if let Some(i) = started.intersection(&stored).next() {
            panic!("pages[{i}] was stored before child {kill} started, and ran again");
        }
        let first_done = lines.iter().position(|l| l.starts_with("done pages["));
        let last_start = lines.iter().rposition(|l| l.starts_with("start pages["));
        assert!(
            matches!((first_done, last_start), (Some(d), Some(s)) if d < s),
            "child {kill} reported no item done before its last item started: items must be recorded as they finish"
        );
        done.extend(done_now);

        let store = EmbeddedStore::open(&dir.0).expect("the store opens after a kill");
        stored = stored_items(&rt, &store);
        for i in &done {
            assert!(
                stored.contains(i),
                "pages[{i}] was reported done before kill {kill}, but the store does not have it"
            );
        }
        eprintln!(
            "kill {kill}: {} items started, {} reported done in all, {} stored",
            started.len(),
            done.len(),
            stored.len()
        );
    }
    let store = EmbeddedStore::open(&dir.0).unwrap();

    // The same graph in this process: the items the store has are loaded, the others run.
    let cached = Arc::new(Mutex::new(HashSet::new()));
    let ran = Arc::new(Mutex::new(Vec::new()));
    let runner = Runner::new().store(store.clone()).on_event({
        let (cached, ran) = (cached.clone(), ran.clone());
        move |event, _| match event {
            Event::Cached { node, .. } => cached.lock().unwrap().extend(item_of(node)),
            Event::Started { node, .. } => ran.lock().unwrap().extend(item_of(node)),
            _ => {}
        }
    });
    let (graph, pages) = map_graph();
    let rerun = rt.block_on(runner.run_partial(graph)).unwrap();
    let cached = std::mem::take(&mut *cached.lock().unwrap());
    let ran = std::mem::take(&mut *ran.lock().unwrap());
    for i in &done {
        assert!(
            cached.contains(i),
            "pages[{i}] was reported done before a kill, but was not loaded from the store"
        );
    }
    assert!(
        cached == stored,
        "the items loaded must be the items stored; stored, not loaded: {}; loaded, not stored: {}",
        only_in("pages", &stored, &cached),
        only_in("pages", &cached, &stored)
    );
    let ran_once: HashSet<usize> = ran.iter().copied().collect();
    assert_eq!(ran_once.len(), ran.len(), "an item ran twice");
    let not_stored: HashSet<usize> = (0..ITEMS as usize)
        .filter(|i| !stored.contains(i))
        .collect();
    assert!(
        ran_once == not_stored,
        "the items that run must be those not stored; not stored, not run: {}; run, though stored: {}",
        only_in("pages", &not_stored, &ran_once),
        only_in("pages", &ran_once, &not_stored)
    );
    assert!(rerun.report.is_success(), "{}", rerun.report);
    let counts = rerun.report.node("pages").unwrap().items.unwrap();
    assert_eq!(
        (counts.total, counts.ran, counts.cached),
        (ITEMS as usize, not_stored.len(), stored.len()),
        "the report's item counts: total, ran, cached"
    );
    let want = expected_pages();
    let got = rerun.outputs.try_get(&pages).unwrap();
    assert!(
        *got == want,
        "the output must be every item's page in item order; {} items, the first wrong at {:?}",
        got.len(),
        got.iter().zip(&want).position(|(a, b)| a != b)
    );

    // Once the map completed, its `Vec` and index hold every item: the batches are gone.
    let mut left: Vec<String> = rt
        .block_on(store.load("map-crash"))
        .unwrap()
        .records
        .into_keys()
        .collect();
    left.sort();
    assert_eq!(left, ["list", "pages", "pages#items"]);

    // Once more: the map node itself is cached, its output assembled from loaded and new items.
    let (graph, pages) = map_graph();
    let last = rt
        .block_on(Runner::new().store(store).run_partial(graph))
        .unwrap();
    assert_eq!(last.report.cached(), 2, "{}", last.report);
    assert!(last.outputs.try_get(&pages) == Some(&want));
}

/// Iterations of the loop of `sigkill_mid_loop_resumes_after_the_last_stored_iteration`.
const LOOP_STEPS: u64 = 60;
/// Children killed mid-loop before one runs it to its end.
const LOOP_KILLS: usize = 5;

/// Counts its state up to `steps`, an iteration at a time, each taking 3 ms; prints `ran N`
/// when the iteration on state N starts, so the parent sees where each child resumed.
#[task]
async fn count_to(done: u64, steps: u64) -> Loop<u64, u64> {
    say(&format!("ran {done}"));
    tokio::time::sleep(Duration::from_millis(3)).await;
    if done + 1 >= steps {
        Loop::Done(done + 1)
    } else {
        Loop::Again(done + 1)
    }
}

/// The child: runs the loop in store `TYPEDAG_LOOP_CRASH_STORE`, printing `stored N` once
/// iteration N's state is durable, and `finished N` with the loop's output.
#[test]
#[ignore = "the child process of `sigkill_mid_loop_resumes_after_the_last_stored_iteration`"]
fn loop_crash_child() {
    let Ok(dir) = std::env::var("TYPEDAG_LOOP_CRASH_STORE") else {
        return;
    };
    let runner = Runner::new()
        .store(EmbeddedStore::open(dir).unwrap())
        .on_event(|event, _| {
            if let Event::Iterated { iteration, .. } = event {
                say(&format!("stored {iteration}"));
            }
        });
    let graph = dag! {
        name = "loop-crash";
        n = count_to(0u64, LOOP_STEPS) with max = 100;
    };
    let out = child_runtime().block_on(runner.run(graph)).unwrap();
    println!("finished {}", out.n);
}

/// The numbers of the lines of `lines` that start with `prefix`.
fn numbers(lines: &[String], prefix: &str) -> Vec<u64> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(prefix)?.parse().ok())
        .collect()
}

#[test]
fn sigkill_mid_loop_resumes_after_the_last_stored_iteration() {
    let dir = TempDir::new("loop-crash");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill times seeded with {seed}");
    let mut rng = Rng(seed);
    // The highest iteration a child reported stored, and the highest one any child ran.
    let (mut stored, mut computed) = (0u64, 0u64);
    let mut kills = 0;
    let finished = loop {
        let kill = kills < LOOP_KILLS;
        let mut child = Child::spawn(
            "loop_crash_child",
            &[("TYPEDAG_LOOP_CRASH_STORE", dir.0.as_os_str())],
        );
        if kill {
            child.wait_for(|lines| lines.iter().any(|l| l.starts_with("ran ")));
            std::thread::sleep(Duration::from_millis(rng.below(100)));
        }
        let (status, lines) = child.end(kill);
        let ran = numbers(&lines, "ran ");
        if let Some(&first) = ran.first() {
            assert!(
                first >= stored,
                "a child resumed at iteration {first}, but iteration {stored} was reported stored"
            );
            assert!(
                first <= computed,
                "a child resumed at iteration {first}, which no child had reached ({computed})"
            );
            let consecutive: Vec<u64> = (first..first + ran.len() as u64).collect();
            assert_eq!(ran, consecutive, "a child runs the iterations in order");
            computed = computed.max(first + ran.len() as u64);
        }
        stored = stored.max(numbers(&lines, "stored ").into_iter().max().unwrap_or(0));
        if let Some(n) = numbers(&lines, "finished ").first() {
            // A kill may come after a child that had little left has finished.
            assert!(kill || status.success(), "{status}");
            break *n;
        }
        assert!(kill, "the last child must finish: {status}");
        kills += 1;
        eprintln!("kill {kills}: ran {ran:?}, {stored} stored so far");
    };
    assert_eq!(finished, LOOP_STEPS);

    // A rerun with the same inputs is cached whole: no iteration runs.
    let child = Child::spawn(
        "loop_crash_child",
        &[("TYPEDAG_LOOP_CRASH_STORE", dir.0.as_os_str())],
    );
    let (status, lines) = child.end(false);
    assert!(status.success());
    assert_eq!(numbers(&lines, "ran "), Vec::<u64>::new());
    assert_eq!(numbers(&lines, "finished "), [LOOP_STEPS]);
}

/// The first node of the signal graph: stored before the wait.
#[task]
async fn built(version: u64) -> String {
    format!("release {version}")
}

#[task]
async fn shipped(built: &String, approve: &String) -> String {
    format!("{built}, approved by {approve}")
}

fn signal_graph() -> (Graph, typedag::Kept<String>) {
    let mut graph = Graph::new("signal-crash");
    let b = graph.add::<built>("built", (7u64,)).unwrap();
    let approve = graph.signal::<String>("approve").unwrap();
    graph.configure(&approve).timeout(Duration::from_secs(30));
    let s = graph.add::<shipped>("shipped", (b, approve)).unwrap();
    let s = graph.keep(s);
    (graph, s)
}

/// The child: runs the signal graph in store `TYPEDAG_SIGNAL_CRASH_STORE`, printing
/// `waiting approve` once the signal waits, and `done built` once `built` is durable.
#[test]
#[ignore = "the child process of `a_program_killed_while_a_signal_waits_takes_the_value_sent_meanwhile`"]
fn signal_crash_child() {
    let Ok(dir) = std::env::var("TYPEDAG_SIGNAL_CRASH_STORE") else {
        return;
    };
    let runner = Runner::new()
        .store(EmbeddedStore::open(dir).unwrap())
        .on_event(|event, _| {
            if let Event::Waiting { node, .. } = event {
                say(&format!("waiting {node}"));
            } else {
                print_progress(event);
            }
        });
    child_runtime()
        .block_on(runner.run(signal_graph().0))
        .unwrap();
    println!("finished");
}

#[test]
fn a_program_killed_while_a_signal_waits_takes_the_value_sent_meanwhile() {
    let dir = TempDir::new("signal-crash");
    let mut child = Child::spawn(
        "signal_crash_child",
        &[("TYPEDAG_SIGNAL_CRASH_STORE", dir.0.as_os_str())],
    );
    // Killed once the signal waits and `built` is durable.
    let waiting = child.wait_for(|lines| {
        lines.iter().any(|l| l == "waiting approve") && lines.iter().any(|l| l == "done built")
    });
    let (_, lines) = child.end(true);
    assert!(waiting, "the child never waited for its signal: {lines:?}");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    // While no program runs, the value goes into the store, as `typedag signal` puts it.
    let store = EmbeddedStore::open(&dir.0).expect("the store opens after a kill");
    let (tx, rx) = std::sync::mpsc::channel();
    store.write(
        typedag::store::Write::Deliver {
            graph: "signal-crash".into(),
            delivery: typedag::store::Delivery::new("approve", r#""ada""#),
        },
        Box::new(move |result| {
            let _ = tx.send(result);
        }),
    );
    rx.recv().unwrap().unwrap();

    // The program started again takes it without waiting; what the killed one stored stays.
    let waited = Arc::new(Mutex::new(false));
    let runner = Runner::new().store(store).on_event({
        let waited = waited.clone();
        move |event, _| {
            if matches!(event, Event::Waiting { .. }) {
                *waited.lock().unwrap() = true;
            }
        }
    });
    let (graph, kept) = signal_graph();
    let partial = rt.block_on(runner.run_partial(graph)).unwrap();
    let report = &partial.report;
    assert!(report.is_success(), "{report}");
    assert_eq!(report.node("built").unwrap().outcome, Outcome::Cached);
    assert!(matches!(
        report.node("approve").unwrap().outcome,
        Outcome::Ran { .. }
    ));
    assert!(
        !*waited.lock().unwrap(),
        "the restarted program waited again"
    );
    assert_eq!(
        partial.outputs.try_get(&kept).map(String::as_str),
        Some("release 7, approved by ada")
    );
}
