//! Distributed runs against a real PostgreSQL: several processes (this test binary run
//! again as children) share one graph's work, each node running once in all; a process
//! killed mid-run leaves its nodes to the others; a stale process's late result is
//! refused; a database restart mid-run loses nothing; two runs that need the same
//! computation at the same time do it once; two tasks of the same name in different
//! modules are never taken for the same computation; nodes under an `if` condition end
//! as in a local run, in every process. Map nodes in distributed runs are in
//! `distributed_map.rs`, signals in `distributed_signal.rs`.

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
use support::report::outcomes;
use typedag::prelude::*;
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
