//! Distributed runs against a real PostgreSQL: several processes (this test binary run
//! again as children) share one graph's work, each node running once in all; a process
//! killed mid-run leaves its nodes to the others; a stale process's late result is
//! refused; a database restart mid-run loses nothing; two runs that need the same
//! computation at the same time do it once; two tasks of the same name in different
//! modules are never taken for the same computation; nodes under an `if` condition end
//! as in a local run, in every process; a map node's items are shared by the
//! processes, each item running once, cached by its bytes as in a local run, a failed one
//! stopping the run when it stops at the first failure, the node's duration the wall span
//! of its items, equal items sharing one record; and a signal is waited for by one process, its value taken once, never
//! another graph's.

#[path = "support/same_name.rs"]
mod same_name;
mod support;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use same_name::{backfill, ingest};
use support::postgres::{Cluster, wait_until};
use typedag::prelude::*;
use typedag::store::Store as _;
use typedag::{Graph, Kept, PostgresStore, StoreError};

const NODES: u64 = 500;

/// Says it runs (so the test can count executions in every process), then works a little.
#[task]
async fn step(i: u64, sleep_ms: u64, inputs: Vec<u64>) -> u64 {
    say(&format!("exec n{i}"));
    tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
    inputs
        .iter()
        .fold(i.wrapping_mul(0x9e37_79b9_7f4a_7c15), |acc, x| {
            acc.rotate_left(9) ^ x
        })
}

#[task]
async fn total(parts: Vec<u64>) -> u64 {
    say("exec total");
    parts.iter().fold(0u64, |a, b| a.wrapping_add(*b))
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Node i reads up to three earlier nodes; sleeps of 1 to `max_sleep` ms.
fn shape(max_sleep: u64) -> Vec<(u64, u64, Vec<usize>)> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    (0..NODES)
        .map(|i| {
            let sleep = 1 + next(max_sleep);
            let mut inputs = Vec::new();
            if i >= 10 {
                for _ in 0..3 {
                    let j = usize::try_from(next(i)).unwrap();
                    if !inputs.contains(&j) {
                        inputs.push(j);
                    }
                }
            }
            (i, sleep, inputs)
        })
        .collect()
}

fn build(max_sleep: u64) -> (Graph, Kept<u64>) {
    let mut graph = Graph::new("shared");
    let mut nodes: Vec<typedag::Node<u64>> = Vec::new();
    for (i, sleep, inputs) in shape(max_sleep) {
        let inputs: Vec<_> = inputs.iter().map(|&j| nodes[j]).collect();
        nodes.push(
            graph
                .add::<step>(format!("n{i}"), (i, sleep, inputs))
                .unwrap(),
        );
    }
    let last: Vec<_> = nodes[nodes.len() - 25..].to_vec();
    let sum = graph.add::<total>("total", (last,)).unwrap();
    let kept = graph.keep(sum);
    (graph, kept)
}

/// The graph's result, computed without typedag.
fn expected(max_sleep: u64) -> u64 {
    let mut out: Vec<u64> = Vec::new();
    for (i, _, inputs) in shape(max_sleep) {
        out.push(
            inputs
                .iter()
                .fold(i.wrapping_mul(0x9e37_79b9_7f4a_7c15), |acc, &j| {
                    acc.rotate_left(9) ^ out[j]
                }),
        );
    }
    out[out.len() - 25..]
        .iter()
        .fold(0u64, |a, b| a.wrapping_add(*b))
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// A child process: joins run `TD_RUN` in database `TD_URL` and prints what it does.
#[test]
#[ignore = "a child process of the tests below"]
fn child() {
    let (Ok(url), Ok(run)) = (std::env::var("TD_URL"), std::env::var("TD_RUN")) else {
        return;
    };
    let lease = Duration::from_millis(env_u64("TD_LEASE_MS").unwrap_or(30_000));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = PostgresStore::connect(&url).await.unwrap();
        let runner = Runner::new()
            .store(store)
            .distributed(run)
            .lease(lease)
            .concurrency(4)
            .on_event(|event, _| match event {
                Event::Completed { node, .. } => say(&format!("done {node}")),
                Event::Lost { node, .. } => say(&format!("lost {node}")),
                Event::Cached { node, .. } => say(&format!("cached {node}")),
                _ => {}
            });
        say("joined");
        if std::env::var("TD_GRAPH").as_deref() == Ok("tagged") {
            let graph = dag! {
                name = "tagged";
                x = tagged();
                y = after(x);
            };
            let out = runner.run(graph).await.unwrap();
            say(&format!("result {}", out.y));
        } else {
            let (graph, kept) = build(env_u64("TD_SLEEP").unwrap_or(3));
            let partial = runner.run_partial(graph).await.unwrap();
            assert!(partial.report.is_success(), "{}", partial.report);
            say(&format!("result {}", partial.outputs.get(&kept)));
        }
    });
}

/// What one child printed.
#[derive(Default)]
struct Log {
    lines: Vec<String>,
}

impl Log {
    fn with(&self, prefix: &str) -> Vec<String> {
        self.lines
            .iter()
            .filter_map(|l| l.strip_prefix(prefix))
            .map(str::to_owned)
            .collect()
    }
    fn result(&self) -> Option<u64> {
        self.with("result ").first().and_then(|v| v.parse().ok())
    }
}

struct Proc {
    child: Child,
    log: Arc<Mutex<Log>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Proc {
    fn start(url: &str, run: &str, vars: &[(&str, String)]) -> Self {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", "child", "--ignored", "--nocapture", "--quiet"])
            .env("TD_URL", url)
            .env("TD_RUN", run)
            .env_remove("TYPEDAG_STORE")
            .env_remove("TYPEDAG_RUN")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let log = Arc::new(Mutex::new(Log::default()));
        let reader = {
            let log = log.clone();
            let stdout = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    log.lock().unwrap().lines.push(line);
                }
            })
        };
        Self {
            child,
            log,
            reader: Some(reader),
        }
    }

    fn count(&self, prefix: &str) -> usize {
        self.log.lock().unwrap().with(prefix).len()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the child to exit (successfully unless `killed`) and returns its log.
    fn finish(mut self, killed: bool) -> Log {
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("a child process did not finish in time");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        assert!(killed || status.success(), "a child failed: {status}");
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many times each node ran, over all logs.
fn executions(logs: &[&Log]) -> HashMap<String, usize> {
    let mut count = HashMap::new();
    for log in logs {
        for node in log.with("exec ") {
            *count.entry(node).or_insert(0) += 1;
        }
    }
    count
}

fn all_nodes() -> HashSet<String> {
    let mut all: HashSet<String> = (0..NODES).map(|i| format!("n{i}")).collect();
    all.insert("total".into());
    all
}

#[test]
fn three_processes_share_a_graph_and_each_node_runs_once() {
    let url = Cluster::shared().database("three");
    let procs: Vec<Proc> = (0..3).map(|_| Proc::start(&url, "three", &[])).collect();
    let logs: Vec<Log> = procs.into_iter().map(|p| p.finish(false)).collect();
    let count = executions(&logs.iter().collect::<Vec<_>>());
    let once: HashSet<String> = count.keys().cloned().collect();
    assert_eq!(once, all_nodes(), "every node ran");
    let twice: Vec<_> = count.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "nodes ran more than once: {twice:?}");
    for (i, log) in logs.iter().enumerate() {
        assert_eq!(log.result(), Some(expected(3)), "process {i}'s outputs");
        assert!(
            !log.with("exec ").is_empty(),
            "process {i} ran nothing: the work was not shared"
        );
    }
    // A fourth process joining the ended run gets its outputs and runs nothing.
    let late = Proc::start(&url, "three", &[]).finish(false);
    assert_eq!(late.result(), Some(expected(3)));
    assert!(late.with("exec ").is_empty());
}

#[test]
fn a_killed_process_leaves_its_nodes_to_the_others() {
    let url = Cluster::shared().database("killed");
    let vars = [
        ("TD_LEASE_MS", "1000".to_owned()),
        ("TD_SLEEP", "12".to_owned()),
    ];
    let victim = Proc::start(&url, "killed", &vars);
    let others: Vec<Proc> = (0..2).map(|_| Proc::start(&url, "killed", &vars)).collect();
    wait_until(
        Duration::from_secs(60),
        "the victim to complete some nodes",
        || victim.count("done ") >= 20,
    );
    victim.signal("-KILL");
    let victim = victim.finish(true);
    let logs: Vec<Log> = others.into_iter().map(|p| p.finish(false)).collect();
    for log in &logs {
        assert_eq!(log.result(), Some(expected(12)));
    }
    let mut all: Vec<&Log> = logs.iter().collect();
    all.push(&victim);
    let count = executions(&all);
    assert_eq!(count.keys().cloned().collect::<HashSet<_>>(), all_nodes());
    // Only what the victim had started and not recorded ran again, and what a survivor
    // ran while its lease ran out under load (it reports the node lost: its result was
    // refused, so each node was still recorded once).
    let recorded: HashSet<String> = victim.with("done ").into_iter().collect();
    let started: HashSet<String> = victim.with("exec ").into_iter().collect();
    let lost: HashSet<String> = logs.iter().flat_map(|l| l.with("lost ")).collect();
    for (node, times) in &count {
        if *times > 1 {
            let victims = usize::from(started.contains(node) && !recorded.contains(node));
            assert!(
                *times <= 1 + victims + usize::from(lost.contains(node)),
                "{node} ran {times} times, but neither the victim left it unfinished nor a survivor lost it"
            );
        }
    }
    let redone = count.values().filter(|c| **c > 1).count();
    assert!(
        redone <= 4 + lost.len(),
        "{redone} nodes ran twice; the victim ran at most 4 at once, and {} were lost",
        lost.len()
    );
}

static TAGGED: AtomicUsize = AtomicUsize::new(0);

/// Returns the id of the process that ran it, after a while.
#[task]
async fn tagged() -> u32 {
    TAGGED.fetch_add(1, Ordering::SeqCst);
    say("exec x");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    std::process::id()
}

#[task]
async fn after(x: &u32) -> u32 {
    *x
}

#[test]
fn a_stale_process_cannot_overwrite_what_another_recorded() {
    let url = Cluster::shared().database("stale");
    let vars = [
        ("TD_LEASE_MS", "600".to_owned()),
        ("TD_GRAPH", "tagged".to_owned()),
    ];
    // The stale process starts `x`, then is frozen past its lease.
    let stale = Proc::start(&url, "stale", &vars);
    wait_until(Duration::from_secs(60), "x to start", || {
        stale.count("exec ") == 1
    });
    stale.signal("-STOP");
    std::thread::sleep(Duration::from_millis(1500));
    // Another process takes `x` over and finishes the run.
    let fresh = Proc::start(&url, "stale", &vars);
    let fresh_pid = fresh.child.id();
    let fresh = fresh.finish(false);
    assert_eq!(fresh.with("exec "), ["x"]);
    assert_eq!(fresh.result(), Some(u64::from(fresh_pid)));
    // Thawed, the stale process finishes `x` late: its result is refused, and it reads
    // the run's outputs like everyone else.
    stale.signal("-CONT");
    let stale = stale.finish(false);
    assert_eq!(stale.with("lost "), ["x"], "{:?}", stale.lines);
    assert!(stale.with("done ").iter().all(|n| n != "x"));
    assert_eq!(stale.result(), Some(u64::from(fresh_pid)));
    // A later run of the graph finds the fresh process's output, cached.
    let again = Proc::start(&url, "stale-again", &vars).finish(false);
    assert_eq!(again.result(), Some(u64::from(fresh_pid)));
    assert!(again.with("exec ").is_empty());
}

#[test]
fn a_database_restart_mid_run_loses_nothing() {
    let cluster = Cluster::start();
    let url = cluster.database("restart");
    let vars = [("TD_SLEEP", "8".to_owned())];
    let procs: Vec<Proc> = (0..2)
        .map(|_| Proc::start(&url, "restart", &vars))
        .collect();
    wait_until(Duration::from_secs(60), "some progress", || {
        procs.iter().map(|p| p.count("done ")).sum::<usize>() >= 60
    });
    cluster.restart();
    let done: usize = procs.iter().map(|p| p.count("done ")).sum();
    assert!(done < all_nodes().len(), "the restart came after the end");
    let logs: Vec<Log> = procs.into_iter().map(|p| p.finish(false)).collect();
    for log in &logs {
        assert_eq!(log.result(), Some(expected(8)));
    }
    let count = executions(&logs.iter().collect::<Vec<_>>());
    assert_eq!(count.keys().cloned().collect::<HashSet<_>>(), all_nodes());
    let twice: Vec<_> = count.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "nodes ran more than once: {twice:?}");
}

static EXPENSIVE: AtomicUsize = AtomicUsize::new(0);

#[task]
async fn expensive(n: u64) -> u64 {
    EXPENSIVE.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    n * n
}

#[task]
async fn plus(x: &u64, k: u64) -> u64 {
    x + k
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_needing_the_same_computation_do_it_once() {
    let url = Cluster::shared().database("same");
    let store = PostgresStore::connect(&url).await.unwrap();
    let left = Runner::new().store(store.clone()).distributed("left");
    let right = Runner::new().store(store).distributed("right");
    let (a, b) = tokio::join!(
        left.run_partial(dag! { name = "left"; e = expensive(12); r = plus(e, 1); }),
        right.run_partial(dag! { name = "right"; e = expensive(12); r = plus(e, 2); }),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(EXPENSIVE.load(Ordering::SeqCst), 1, "computed once");
    assert_eq!((a.outputs.r, b.outputs.r), (Some(145), Some(146)));
    let outcomes = [
        &a.report.node("e").unwrap().outcome,
        &b.report.node("e").unwrap().outcome,
    ];
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Cached))
            .count(),
        1,
        "one ran, the other reused its output: {outcomes:?}"
    );
}

#[tokio::test]
async fn two_graphs_with_same_named_tasks_never_get_each_others_output() {
    let url = Cluster::shared().database("same-name");
    let store = PostgresStore::connect(&url).await.unwrap();
    let one = Runner::new()
        .store(store.clone())
        .distributed("ingest")
        .run_partial(dag! { name = "ingest"; v = ingest::load(); })
        .await
        .unwrap();
    let two = Runner::new()
        .store(store)
        .distributed("backfill")
        .run_partial(dag! { name = "backfill"; v = backfill::load(); })
        .await
        .unwrap();
    assert_eq!(one.outputs.v, Some(1), "{}", one.report);
    assert_eq!(two.outputs.v, Some(2), "{}", two.report);
    assert!(
        matches!(two.report.node("v").unwrap().outcome, Outcome::Ran { .. }),
        "`backfill::load` took the record of `ingest::load`: {}",
        two.report
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_named_tasks_in_one_distributed_graph_each_compute_their_own() {
    let url = Cluster::shared().database("same-name-one-graph");
    let store = PostgresStore::connect(&url).await.unwrap();
    let graph = || dag! { name = "twins"; a = ingest::load(); b = backfill::load(); };
    // Two workers of one run, in one process for brevity.
    let one = Runner::new().store(store.clone()).distributed("twins");
    let two = Runner::new().store(store).distributed("twins");
    let (x, y) = tokio::join!(one.run_partial(graph()), two.run_partial(graph()));
    for partial in [x.unwrap(), y.unwrap()] {
        assert_eq!(
            (partial.outputs.a, partial.outputs.b),
            (Some(1), Some(2)),
            "{}",
            partial.report
        );
        for node in ["a", "b"] {
            assert!(
                matches!(
                    partial.report.node(node).unwrap().outcome,
                    Outcome::Ran { .. }
                ),
                "{node} took the other `load`'s output: {}",
                partial.report
            );
        }
    }
}

#[tokio::test]
async fn a_run_name_belongs_to_one_graph() {
    let url = Cluster::shared().database("mismatch");
    let store = PostgresStore::connect(&url).await.unwrap();
    let runner = Runner::new().store(store).distributed("nightly");
    runner
        .run(dag! { name = "g"; e = plus(1, 1); })
        .await
        .unwrap();
    let err = runner
        .run(dag! { name = "g"; e = plus(1, 1); f = plus(e, 1); })
        .await
        .unwrap_err();
    assert!(
        matches!(err, typedag::Error::Store(StoreError::RunMismatch { .. })),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("run `nightly`"), "{text}");
    assert!(text.contains("another run name"), "{text}");
}

#[tokio::test]
async fn a_distributed_run_needs_a_shared_store() {
    let err = Runner::in_memory()
        .distributed("x")
        .run(dag! { e = plus(1, 1); })
        .await
        .unwrap_err();
    assert!(matches!(err, typedag::Error::NotShared { .. }), "{err:?}");
    assert!(err.to_string().contains("PostgresStore"), "{err}");
}

/// Not serde: it cannot pass between processes.
#[derive(Clone, Debug)]
struct Local;

#[task(cache = false)]
async fn local() -> Local {
    Local
}

#[tokio::test]
async fn a_distributed_run_needs_outputs_that_cross_processes() {
    let url = Cluster::shared().database("local");
    let store = PostgresStore::connect(&url).await.unwrap();
    let err = Runner::new()
        .store(store)
        .distributed("x")
        .run(dag! { l = local(); })
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("node `l`"), "{text}");
    assert!(
        text.contains("derive `Serialize` and `Deserialize`"),
        "{text}"
    );
}

#[task]
async fn fragile(fail: bool) -> Result<u64, String> {
    if fail {
        Err("the disk is full".into())
    } else {
        Ok(1)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_skips_its_dependents_in_every_process_and_runs_again_next_time() {
    let url = Cluster::shared().database("failure");
    let store = PostgresStore::connect(&url).await.unwrap();
    let graph = |fail: bool| {
        dag! {
            name = "fragile";
            a = fragile(fail);
            b = plus(a, 1);
            c = plus(b, 1);
            d = plus(7, 1);
        }
    };
    // Two workers of one run, in one process for brevity.
    let one = Runner::new().store(store.clone()).distributed("first");
    let two = Runner::new().store(store.clone()).distributed("first");
    let (x, y) = tokio::join!(one.run_partial(graph(true)), two.run_partial(graph(true)));
    for partial in [x.unwrap(), y.unwrap()] {
        let report = &partial.report;
        assert!(
            matches!(report.node("a").unwrap().outcome, Outcome::Failed { .. }),
            "{report}"
        );
        assert_eq!(
            report
                .node("a")
                .unwrap()
                .outcome
                .error()
                .map(typedag::Failure::message),
            Some("the disk is full")
        );
        for skipped in ["b", "c"] {
            assert_eq!(
                report.node(skipped).unwrap().outcome,
                Outcome::Skipped {
                    because: "a".into()
                },
                "{report}"
            );
        }
        assert_eq!(partial.outputs.d, Some(8));
        assert_eq!(partial.outputs.c, None);
    }
    // `run` says which node failed.
    let err = Runner::new()
        .store(store.clone())
        .distributed("first")
        .run(graph(true))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("the disk is full"), "{err}");
    // The next run (a new name) runs the failed node again; `d` is cached.
    let next = Runner::new()
        .store(store)
        .distributed("second")
        .run_partial(graph(false))
        .await
        .unwrap();
    assert_eq!(next.outputs.c, Some(3));
    assert_eq!(next.report.node("d").unwrap().outcome, Outcome::Cached);
    assert!(matches!(
        next.report.node("a").unwrap().outcome,
        Outcome::Ran { .. }
    ));
}

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

/// Whether `picky` fails on 2013.
static PICKY_BREAKS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

#[task]
async fn picky(x: &u64) -> Result<u64, String> {
    ITEM_RUNS.lock().unwrap().push(*x);
    tokio::time::sleep(Duration::from_millis(20)).await;
    if *x == 2013 && PICKY_BREAKS.load(Ordering::SeqCst) {
        return Err(format!("cannot take {x}"));
    }
    Ok(x + 1)
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

static FUSSY_BREAKS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Fails on 3013 until `FUSSY_BREAKS` is turned off.
#[task]
async fn fussy(x: &u64) -> Result<u64, String> {
    ITEM_RUNS.lock().unwrap().push(*x);
    if *x == 3013 && FUSSY_BREAKS.load(Ordering::SeqCst) {
        return Err(format!("cannot take {x}"));
    }
    Ok(x + 1)
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
    let store = PostgresStore::connect(&url).await.unwrap();
    let local = Runner::new()
        .store(store)
        .run_partial(graph())
        .await
        .unwrap();
    assert!(local.report.is_success(), "{}", local.report);
    assert_eq!(items_ran_since(&before, &list), [3013]);
    let items = local.report.node("ys").unwrap().items.unwrap();
    assert_eq!((items.total, items.ran, items.cached), (4, 1, 3));
    let plus_one: Vec<u64> = list.iter().map(|x| x + 1).collect();
    assert_eq!(local.outputs.ys.as_deref(), Some(plus_one.as_slice()));
}

static WARY_BREAKS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Fails on 6013 until `WARY_BREAKS` is turned off.
#[task]
async fn wary(x: &u64) -> Result<u64, String> {
    ITEM_RUNS.lock().unwrap().push(*x);
    if *x == 6013 && WARY_BREAKS.load(Ordering::SeqCst) {
        return Err(format!("cannot take {x}"));
    }
    Ok(x + 1)
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
    let store = PostgresStore::connect(&url).await.unwrap();
    let local = Runner::new()
        .store(store)
        .run_partial(graph())
        .await
        .unwrap();
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

/// Whether `brittle` fails on 4000.
static BRITTLE_BREAKS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Fails at once on 4000 until `BRITTLE_BREAKS` is turned off; takes 100 ms on the others.
#[task]
async fn brittle(x: &u64) -> Result<u64, String> {
    ITEM_RUNS.lock().unwrap().push(*x);
    if *x == 4000 && BRITTLE_BREAKS.load(Ordering::SeqCst) {
        return Err(format!("cannot take {x}"));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(x + 1)
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

#[task]
async fn notify(x: &u64) -> String {
    format!("alert {x}")
}

#[task]
async fn archive(x: &u64) -> String {
    format!("archived {x}")
}

#[task]
async fn shout(s: &str) -> String {
    s.to_uppercase()
}

#[task]
async fn summary(x: &u64, alert: Option<&String>) -> String {
    format!("{x}: {}", alert.map_or("quiet", String::as_str))
}

/// Big when `n * 10 > 100`: then `alert` and `loud` run and `calm` does not; otherwise the
/// other way round. `digest` runs either way, reading `alert` through an `Option`.
macro_rules! branch {
    ($n:expr) => {
        dag! {
            name = "branch";
            s      = measure($n);
            big    = is_big(s);
            alert  = notify(s) if big;
            calm   = archive(s) if !big;
            loud   = shout(alert);
            digest = summary(s, alert);
        }
    };
}

/// Runs `branch!(n)` as run `run` with two workers (in one process for brevity), each
/// logging into `log` what it ran, found cached, or decided not to run. Both reports must
/// agree; the first worker's outcome is returned with the log.
macro_rules! branch_by_two {
    ($store:expr, $run:expr, $n:expr) => {{
        let log = Arc::new(Mutex::new(Vec::<String>::new()));
        let worker = || {
            let log = log.clone();
            Runner::new()
                .store($store.clone())
                .distributed($run)
                .on_event(move |event, _| {
                    let line = match event {
                        Event::Completed { node, .. } => format!("ran {node}"),
                        Event::Cached { node, .. } => format!("cached {node}"),
                        Event::NotRun {
                            node, condition, ..
                        } => format!("not run {node}: {condition}"),
                        _ => return,
                    };
                    log.lock().unwrap().push(line);
                })
        };
        let (one, two) = (worker(), worker());
        let (x, y) = tokio::join!(one.run_partial(branch!($n)), two.run_partial(branch!($n)));
        let (x, y) = (x.unwrap(), y.unwrap());
        assert_eq!(outcomes(&x.report), outcomes(&y.report), "{}", x.report);
        assert_eq!(
            (
                &x.outputs.alert,
                &x.outputs.calm,
                &x.outputs.loud,
                &x.outputs.digest
            ),
            (
                &y.outputs.alert,
                &y.outputs.calm,
                &y.outputs.loud,
                &y.outputs.digest
            ),
        );
        let mut log = std::mem::take(&mut *log.lock().unwrap());
        log.sort();
        (x, log)
    }};
}

/// Each node's outcome, without the durations (which differ by worker and by run).
fn outcomes(report: &typedag::Report) -> Vec<(String, String)> {
    report
        .nodes()
        .iter()
        .map(|n| {
            let outcome = match &n.outcome {
                Outcome::Ran { .. } => "ran".to_owned(),
                other => format!("{other:?}"),
            };
            (n.id.clone(), outcome)
        })
        .collect()
}

fn lines(all: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = all.iter().map(|&l| l.to_owned()).collect();
    all.sort();
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_condition_decides_once_and_every_worker_ends_as_a_local_run_would() {
    let url = Cluster::shared().database("branch");
    let store = PostgresStore::connect(&url).await.unwrap();

    // 50 * 10 is big: `calm` does not run, and says why.
    let (big, log) = branch_by_two!(store, "big", 50);
    let report = &big.report;
    assert!(report.is_success(), "{report}");
    assert_eq!((report.ran(), report.not_run()), (5, 1), "{report}");
    assert_eq!(
        report.node("calm").unwrap().outcome,
        Outcome::NotRun {
            condition: "`big` is true".into()
        }
    );
    let out = big.outputs;
    assert_eq!(out.alert, Some(Some("alert 500".to_owned())));
    assert_eq!(
        out.calm,
        Some(None),
        "it finished without running: no value"
    );
    assert_eq!(out.loud, Some(Some("ALERT 500".to_owned())));
    assert_eq!(out.digest.as_deref(), Some("500: alert 500"));
    // Each node ran once in all, and the one worker that decided `calm` said so.
    assert_eq!(
        log,
        lines(&[
            "ran s",
            "ran big",
            "ran alert",
            "ran loud",
            "ran digest",
            "not run calm: `big` is true",
        ])
    );

    // 5 * 10 is not: `alert` does not run, nor `loud`, which reads it through `&T`;
    // `digest` reads it through `Option<&T>` and runs with `None`.
    let (small, log) = branch_by_two!(store, "small", 5);
    let report = &small.report;
    assert!(report.is_success(), "{report}");
    assert_eq!((report.ran(), report.not_run()), (4, 2), "{report}");
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
    let out = small.outputs;
    assert_eq!((out.alert, out.loud), (Some(None), Some(None)));
    assert_eq!(out.calm, Some(Some("archived 50".to_owned())));
    assert_eq!(out.digest.as_deref(), Some("50: quiet"));
    assert_eq!(
        log,
        lines(&[
            "ran s",
            "ran big",
            "ran calm",
            "ran digest",
            "not run alert: `big` is false",
            "not run loud: it reads `alert`, which did not run",
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distributed_rerun_with_the_same_condition_runs_nothing_and_a_flipped_one_only_what_it_enables()
 {
    let url = Cluster::shared().database("branch-rerun");
    let store = PostgresStore::connect(&url).await.unwrap();
    branch_by_two!(store, "first", 5);

    let (again, log) = branch_by_two!(store, "again", 5);
    assert_eq!(again.report.ran(), 0, "same condition: nothing runs");
    assert_eq!(again.report.not_run(), 2, "{}", again.report);
    assert!(log.iter().all(|l| !l.starts_with("ran ")), "{log:?}");
    assert_eq!(again.outputs.calm, Some(Some("archived 50".to_owned())));
    assert_eq!(again.outputs.digest.as_deref(), Some("50: quiet"));

    // 20 * 10 = 200 is big: everything but `calm` runs, as it would locally.
    let (flipped, _) = branch_by_two!(store, "flipped", 20);
    let ran: Vec<&str> = flipped
        .report
        .nodes()
        .iter()
        .filter(|n| matches!(n.outcome, Outcome::Ran { .. }))
        .map(|n| n.id.as_str())
        .collect();
    assert_eq!(ran, ["s", "big", "alert", "loud", "digest"]);
    assert_eq!(flipped.outputs.calm, Some(None));

    // The condition is cached, and read from its digest: nothing runs, in a distributed
    // run or a local one on the same store.
    let (cached, _) = branch_by_two!(store, "cached", 20);
    assert_eq!(cached.report.ran(), 0, "{}", cached.report);
    assert_eq!(cached.outputs.loud, Some(Some("ALERT 200".to_owned())));
    let local = Runner::new()
        .store(store)
        .run_partial(branch!(20))
        .await
        .unwrap();
    assert_eq!(local.report.ran(), 0, "{}", local.report);
    assert_eq!(outcomes(&local.report), outcomes(&cached.report));
}

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
