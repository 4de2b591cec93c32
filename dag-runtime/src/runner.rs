//! The runner: starts each node as soon as its own inputs are ready, within the concurrency
//! limit, highest priority first.
//!
//! There is no central scheduler task. Whoever finishes a node does the bookkeeping under one
//! short lock, then carries on with the best ready node itself, and spawns helpers only when
//! more nodes are ready than are running. A chain therefore runs without a single spawn, and
//! a fan-out spawns about as many tokio tasks as the concurrency limit, not one per node.

use std::collections::BinaryHeap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::sync::oneshot;

use crate::cancel::Cancel;
use crate::error::{Error, GraphError};
use crate::event::{Callback, Event, Events, Totals};
use crate::graph::{Graph, NodeSpec, Outputs, Source};
use crate::policy::{Backoff, Effective, RunnerDefaults};
use crate::report::{NodeReport, Outcome, Partial, Report};
use crate::task::{Failure, Inputs, Shared, Value};

/// How many tasks run at once unless [`Runner::concurrency`] says otherwise.
pub const DEFAULT_CONCURRENCY: usize = 64;

/// Runs graphs. Holds the settings of a run; cheap to create, reusable.
///
/// ```
/// use typedag::prelude::*;
///
/// #[task]
/// async fn hello(name: String) -> String {
///     format!("hello, {name}")
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), typedag::Error> {
/// let who = "world".to_string();
/// let graph = dag! {
///     greeting = hello(who);
/// };
/// let out = Runner::new().concurrency(8).run(graph).await?;
/// assert_eq!(out.greeting, "hello, world");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Runner {
    concurrency: usize,
    defaults: RunnerDefaults,
    fail_fast: bool,
    /// A `TYPEDAG_*` variable that could not be read; reported when the runner runs.
    env_error: Option<crate::error::EnvError>,
    cancel: Option<Cancel>,
    ctrl_c: bool,
    callbacks: Vec<Callback>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("concurrency", &self.concurrency)
            .field("defaults", &self.defaults)
            .field("fail_fast", &self.fail_fast)
            .field("cancel", &self.cancel)
            .field("cancel_on_ctrl_c", &self.ctrl_c)
            .field("callbacks", &self.callbacks.len())
            .finish_non_exhaustive()
    }
}

impl Default for Runner {
    fn default() -> Self {
        Self::new()
    }
}

impl Runner {
    /// A runner with the defaults: at most [`DEFAULT_CONCURRENCY`] tasks at once, no
    /// retries unless a task asks for them, no timeout, keep going after a failure.
    ///
    /// The environment can change these defaults without touching the code; settings made
    /// in code still win:
    ///
    /// | variable | value | sets |
    /// | --- | --- | --- |
    /// | `TYPEDAG_CONCURRENCY` | a whole number ≥ 1 | [`concurrency`](Runner::concurrency) |
    /// | `TYPEDAG_RETRIES` | a whole number | [`retries`](Runner::retries) |
    /// | `TYPEDAG_TIMEOUT` | a duration: `500ms`, `30s`, `2m`, `1h` | [`timeout`](Runner::timeout) |
    /// | `TYPEDAG_FAIL_FAST` | `true` or `false` | [`fail_fast`](Runner::fail_fast) |
    ///
    /// A value that cannot be read makes [`run`](Runner::run) fail with
    /// [`Error::Env`] before any task starts.
    pub fn new() -> Self {
        let mut runner = Self {
            concurrency: DEFAULT_CONCURRENCY,
            defaults: RunnerDefaults::default(),
            fail_fast: false,
            env_error: None,
            cancel: None,
            ctrl_c: false,
            callbacks: Vec::new(),
        };
        runner.read_env(|var| std::env::var(var).ok());
        runner
    }

    fn read_env(&mut self, get: impl Fn(&str) -> Option<String>) {
        use crate::error::EnvError;
        let mut bad = |var: &'static str, value: &str, expected: &'static str| {
            self.env_error.get_or_insert(EnvError {
                var,
                value: value.to_owned(),
                expected,
            });
        };
        if let Some(v) = get("TYPEDAG_CONCURRENCY") {
            match v.trim().parse::<usize>() {
                Ok(n) if n >= 1 => self.concurrency = n,
                _ => bad(
                    "TYPEDAG_CONCURRENCY",
                    &v,
                    "a whole number of tasks, 1 or more",
                ),
            }
        }
        if let Some(v) = get("TYPEDAG_RETRIES") {
            match v.trim().parse::<u32>() {
                Ok(n) => self.defaults.retries = n,
                Err(_) => bad("TYPEDAG_RETRIES", &v, "a whole number of retries, like 3"),
            }
        }
        if let Some(v) = get("TYPEDAG_TIMEOUT") {
            match crate::policy::parse_duration(&v) {
                Some(d) => self.defaults.timeout = Some(d),
                None => bad(
                    "TYPEDAG_TIMEOUT",
                    &v,
                    "a duration like 500ms, 30s, 2m or 1h",
                ),
            }
        }
        if let Some(v) = get("TYPEDAG_FAIL_FAST") {
            match v.trim() {
                "true" | "1" => self.fail_fast = true,
                "false" | "0" => self.fail_fast = false,
                _ => bad("TYPEDAG_FAIL_FAST", &v, "true or false"),
            }
        }
    }

    /// Runs at most `n` tasks at once (at least 1).
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Retries for tasks and nodes that do not set their own.
    #[must_use]
    pub fn retries(mut self, retries: u32) -> Self {
        self.defaults.retries = retries;
        self
    }

    /// Backoff for tasks and nodes that do not set their own.
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.defaults.backoff = backoff;
        self
    }

    /// Per-attempt time limit for tasks and nodes that do not set their own.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.defaults.timeout = Some(timeout);
        self
    }

    /// `true`: the first node that fails for good stops the run; nodes in flight finish,
    /// nothing new starts. `false` (the default): only the failed node's dependents are
    /// skipped and independent branches run to the end.
    #[must_use]
    pub fn fail_fast(mut self, on: bool) -> Self {
        self.fail_fast = on;
        self
    }

    /// Calls `callback` on every change in a node's state, with the run's totals right after
    /// it. Callbacks run on the runner's tasks: keep them quick, and send anything slow to a
    /// channel.
    ///
    /// ```
    /// use typedag::{Event, Runner};
    ///
    /// let runner = Runner::new().on_event(|event, totals| {
    ///     if let Event::Completed { node, duration, .. } = event {
    ///         eprintln!("[{}/{}] {node} took {duration:?}", totals.finished(), totals.total);
    ///     }
    /// });
    /// ```
    #[must_use]
    pub fn on_event(
        mut self,
        callback: impl Fn(&Event<'_>, &Totals) + Send + Sync + 'static,
    ) -> Self {
        self.callbacks.push(Arc::new(callback));
        self
    }

    /// Draws a progress bar on stderr while the graph runs, if stderr is a terminal; stays
    /// quiet otherwise. See [`progress::bar`](crate::progress::bar).
    #[must_use]
    pub fn progress_bar(self) -> Self {
        self.on_event(crate::progress::bar())
    }

    /// Stops runs when `cancel` is cancelled: attempts in flight are dropped (their outputs
    /// are never recorded), nothing new starts, and the run fails with
    /// [`Error::Cancelled`].
    #[must_use]
    pub fn cancel_with(mut self, cancel: Cancel) -> Self {
        self.cancel = Some(cancel);
        self
    }

    /// Cancels a run when the process gets Ctrl-C (SIGINT), as [`cancel_with`] does. A
    /// second Ctrl-C is left to the default handler.
    ///
    /// [`cancel_with`]: Runner::cancel_with
    #[must_use]
    pub fn cancel_on_ctrl_c(mut self) -> Self {
        self.ctrl_c = true;
        self
    }

    /// Runs `graph` to the end and hands back its outputs: the struct `dag!` declared, or
    /// the [`Outputs`] of a built graph.
    ///
    /// Fails with [`Error::Failed`] if any node failed, or [`Error::Cancelled`], each with a
    /// report of every node. To keep the outputs of the nodes that did complete, use
    /// [`run_partial`](Runner::run_partial).
    pub async fn run<O, P>(&self, graph: Graph<O, P>) -> Result<O, Error> {
        let Graph {
            name,
            uid,
            nodes,
            error,
            finish,
            ..
        } = graph;
        let run = self.execute(nodes, error, &name).await?;
        let mut st = run.lock();
        if st.cancelled {
            return Err(Error::Cancelled(Box::new(st.report(&run, name))));
        }
        if st.failed {
            return Err(Error::Failed(Box::new(st.report(&run, name))));
        }
        let mut outputs = Outputs {
            graph: uid,
            values: std::mem::take(&mut st.outputs),
        };
        drop(st);
        finish(&mut outputs).ok_or_else(|| {
            Error::Internal("a kept output was still shared when the run ended".into())
        })
    }

    /// Runs `graph` to the end, failed nodes or not, and hands back the outputs of the nodes
    /// that completed with the report of every node. For a `dag!` graph the outputs are a
    /// struct with an `Option` field per node.
    ///
    /// ```
    /// use typedag::prelude::*;
    ///
    /// #[task]
    /// async fn one() -> u32 { 1 }
    ///
    /// #[task]
    /// async fn broken() -> Result<u32, String> { Err("no".into()) }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), typedag::Error> {
    /// let graph = dag! {
    ///     a = one();
    ///     b = broken();
    /// };
    /// let partial = Runner::new().run_partial(graph).await?;
    /// assert_eq!(partial.outputs.a, Some(1));
    /// assert_eq!(partial.outputs.b, None);
    /// assert!(!partial.report.is_success());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Fails only when the graph cannot run at all (see [`Error`]).
    pub async fn run_partial<O, P>(&self, graph: Graph<O, P>) -> Result<Partial<P>, Error> {
        let Graph {
            name,
            uid,
            nodes,
            error,
            partial,
            ..
        } = graph;
        let run = self.execute(nodes, error, &name).await?;
        let mut st = run.lock();
        let report = st.report(&run, name);
        let mut outputs = Outputs {
            graph: uid,
            values: std::mem::take(&mut st.outputs),
        };
        drop(st);
        Ok(Partial {
            outputs: partial(&mut outputs),
            report,
        })
    }

    /// Runs the nodes until every one has finished or the run stopped.
    async fn execute(
        &self,
        nodes: Vec<NodeSpec>,
        error: Option<GraphError>,
        name: &str,
    ) -> Result<Arc<Run>, Error> {
        if let Some(e) = &self.env_error {
            return Err(Error::Env(e.clone()));
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::NoRuntime);
        }
        if let Some(e) = error {
            return Err(e.into());
        }
        let (run, done) = Run::new(nodes, self, name)?;
        let run = Arc::new(run);
        let ctrl_c = self.ctrl_c.then(|| {
            let cancel = run.cancel.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    cancel.cancel();
                }
            })
        });
        let watcher = run.cancellable.then(|| {
            // Wakes the run when cancelled while nothing is in flight to notice.
            let run = run.clone();
            tokio::spawn(async move {
                run.cancel.cancelled().await;
                let mut st = run.lock();
                st.cancelled = true;
                st.stopping = true;
                st.check_done();
            })
        });

        let first = {
            let mut st = run.lock();
            let mut first = None;
            let mut extra = Vec::new();
            while st.running < run.limit {
                let Some(job) = st.pop_ready(&run) else { break };
                st.running += 1;
                if first.is_none() {
                    first = Some(job);
                } else {
                    extra.push(job);
                }
            }
            st.check_done();
            drop(st);
            for job in extra {
                tokio::spawn(drive(run.clone(), job));
            }
            first
        };
        if let Some(job) = first {
            drive(run.clone(), job).await;
        }
        let finished = done.await;
        if let Some(watcher) = watcher {
            watcher.abort();
        }
        if let Some(listener) = ctrl_c {
            listener.abort();
        }
        finished
            .map_err(|_| Error::Internal("the run ended without signalling completion".into()))?;

        let st = run.lock();
        if run.events.on() {
            for (node, outcome) in run.nodes.iter().zip(&st.outcomes) {
                if outcome.is_none() {
                    run.events.emit(&Event::Cancelled {
                        node: &node.spec.id,
                        task: node.spec.task,
                    });
                }
            }
        }
        drop(st);
        Ok(run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runner_with(vars: &[(&str, &str)]) -> Runner {
        let mut r = Runner {
            concurrency: DEFAULT_CONCURRENCY,
            defaults: RunnerDefaults::default(),
            fail_fast: false,
            env_error: None,
            cancel: None,
            ctrl_c: false,
            callbacks: Vec::new(),
        };
        r.read_env(|var| {
            vars.iter()
                .find(|(k, _)| *k == var)
                .map(|(_, v)| (*v).to_owned())
        });
        r
    }

    #[test]
    fn environment_sets_defaults() {
        let r = runner_with(&[
            ("TYPEDAG_CONCURRENCY", "7"),
            ("TYPEDAG_RETRIES", "2"),
            ("TYPEDAG_TIMEOUT", "1.5s"),
            ("TYPEDAG_FAIL_FAST", "true"),
        ]);
        assert_eq!(r.concurrency, 7);
        assert_eq!(r.defaults.retries, 2);
        assert_eq!(r.defaults.timeout, Some(Duration::from_millis(1500)));
        assert!(r.fail_fast);
        assert!(r.env_error.is_none());
        assert_eq!(
            r.concurrency(3).concurrency,
            3,
            "code wins over the environment"
        );
    }

    #[test]
    fn a_bad_value_is_a_clear_error() {
        for (var, value) in [
            ("TYPEDAG_CONCURRENCY", "0"),
            ("TYPEDAG_CONCURRENCY", "many"),
            ("TYPEDAG_RETRIES", "-1"),
            ("TYPEDAG_TIMEOUT", "30"),
            ("TYPEDAG_FAIL_FAST", "yes"),
        ] {
            let r = runner_with(&[(var, value)]);
            let e = Error::Env(r.env_error.clone().expect("a bad value is caught"));
            let text = e.to_string();
            assert!(
                text.contains(var) && text.contains(&format!("{value:?}")),
                "{text}"
            );
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let err = rt.block_on(r.run(Graph::new("env"))).unwrap_err();
            assert!(matches!(err, Error::Env(_)), "{err}");
        }
    }
}

/// One run's immutable plan and its mutable state.
struct Run {
    nodes: Vec<RtNode>,
    limit: usize,
    fail_fast: bool,
    cancel: Cancel,
    /// Whether anything can cancel this run; if not, attempts are not raced against it.
    cancellable: bool,
    events: Events,
    state: Mutex<State>,
}

struct RtNode {
    spec: NodeSpec,
    policy: Effective,
    dependents: Vec<usize>,
    /// The node's task's slot in `State::limited`, if the task has a `limit`.
    limit_group: Option<usize>,
}

/// Nodes of one task with a `limit`: how many run, and which ready ones wait for a slot.
struct Limited {
    limit: usize,
    running: usize,
    parked: Vec<Ready>,
}

struct State {
    /// Inputs of each node not yet completed.
    waiting: Vec<u32>,
    /// Nodes that still have to read each output (one per edge).
    readers: Vec<u32>,
    outputs: Vec<Option<Shared>>,
    outcomes: Vec<Option<Outcome>>,
    ready: BinaryHeap<Ready>,
    limited: Vec<Limited>,
    running: usize,
    unfinished: usize,
    failed: bool,
    cancelled: bool,
    stopping: bool,
    done: Option<oneshot::Sender<()>>,
}

#[derive(PartialEq, Eq)]
struct Ready {
    priority: i32,
    index: usize,
}

impl Ord for Ready {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Max-heap: higher priority first, then earlier declaration first.
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.index.cmp(&self.index))
    }
}
impl PartialOrd for Ready {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A node about to run, with its inputs in hand.
struct Job {
    index: usize,
    inputs: Vec<Prepared>,
}

enum Prepared {
    Shared(Shared),
    List(Vec<Shared>, fn(&[Shared]) -> Box<dyn std::any::Any + Send>),
}

struct Done {
    value: Shared,
    attempts: u32,
    duration: Duration,
}

impl Run {
    fn new(
        specs: Vec<NodeSpec>,
        runner: &Runner,
        graph: &str,
    ) -> Result<(Self, oneshot::Receiver<()>), Error> {
        let n = specs.len();
        let mut dependents = vec![Vec::new(); n];
        let mut waiting = vec![0u32; n];
        let mut readers = vec![0u32; n];
        for (i, spec) in specs.iter().enumerate() {
            for (param, source) in spec.sources.iter().enumerate() {
                match source {
                    Source::Node(j) => {
                        dependents[*j].push(i);
                        waiting[i] += 1;
                        readers[*j] += 1;
                    }
                    Source::List(list, _) => {
                        for j in list {
                            dependents[*j].push(i);
                            waiting[i] += 1;
                            readers[*j] += 1;
                        }
                    }
                    Source::Const(c) => {
                        if let Err(message) = &c.digest {
                            return Err(GraphError::Constant {
                                graph: graph.to_owned(),
                                node: spec.id.to_string(),
                                param,
                                message: message.clone(),
                            }
                            .into());
                        }
                    }
                }
            }
        }
        let mut ready = BinaryHeap::new();
        let mut limited: Vec<Limited> = Vec::new();
        let mut groups: std::collections::HashMap<&'static str, usize> =
            std::collections::HashMap::new();
        let nodes: Vec<RtNode> = specs
            .into_iter()
            .zip(dependents)
            .map(|(spec, dependents)| {
                let policy = Effective::merge(&spec.options, &spec.task_options, &runner.defaults);
                let limit_group = spec.task_options.limit.map(|limit| {
                    *groups.entry(spec.task).or_insert_with(|| {
                        limited.push(Limited {
                            limit,
                            running: 0,
                            parked: Vec::new(),
                        });
                        limited.len() - 1
                    })
                });
                RtNode {
                    spec,
                    policy,
                    dependents,
                    limit_group,
                }
            })
            .collect();
        for (i, node) in nodes.iter().enumerate() {
            if waiting[i] == 0 {
                ready.push(Ready {
                    priority: node.policy.priority,
                    index: i,
                });
            }
        }
        let (tx, rx) = oneshot::channel();
        let state = State {
            waiting,
            readers,
            outputs: vec![None; n],
            outcomes: vec![None; n],
            ready,
            limited,
            running: 0,
            unfinished: n,
            failed: false,
            cancelled: false,
            stopping: false,
            done: Some(tx),
        };
        Ok((
            Self {
                nodes,
                limit: runner.concurrency,
                fail_fast: runner.fail_fast,
                cancel: runner.cancel.clone().unwrap_or_default(),
                cancellable: runner.cancel.is_some() || runner.ctrl_c,
                events: Events::new(runner.callbacks.clone(), n),
                state: Mutex::new(state),
            },
            rx,
        ))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; if something did, the state is still whole.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn pop_ready(&mut self, run: &Run) -> Option<Job> {
        if run.cancel.is_cancelled() {
            self.cancelled = true;
            self.stopping = true;
        }
        if self.stopping {
            return None;
        }
        let index = loop {
            let next = self.ready.pop()?;
            match run.nodes[next.index].limit_group {
                Some(g) if self.limited[g].running >= self.limited[g].limit => {
                    self.limited[g].parked.push(next)
                }
                Some(g) => {
                    self.limited[g].running += 1;
                    break next.index;
                }
                None => break next.index,
            }
        };
        let inputs = run.nodes[index]
            .spec
            .sources
            .iter()
            .map(|source| match source {
                Source::Node(j) => Prepared::Shared(self.output(*j)),
                Source::Const(c) => Prepared::Shared(c.value.clone()),
                Source::List(list, collect) => {
                    Prepared::List(list.iter().map(|j| self.output(*j)).collect(), *collect)
                }
            })
            .collect();
        Some(Job { index, inputs })
    }

    fn output(&self, j: usize) -> Shared {
        self.outputs[j]
            .clone()
            .expect("typedag: an input's output is held until all its readers finish")
    }

    /// Records a node's end. Returns the nodes skipped because of it, for their events.
    fn finish(
        &mut self,
        run: &Run,
        index: usize,
        result: Option<Result<Done, Vec<Failure>>>,
    ) -> Vec<usize> {
        let Some(result) = result else {
            // Cancelled in flight: nothing is recorded, the report says cancelled.
            self.cancelled = true;
            self.stopping = true;
            self.release_inputs(run, index);
            return Vec::new();
        };
        self.unfinished -= 1;
        if let Some(g) = run.nodes[index].limit_group {
            let group = &mut self.limited[g];
            group.running -= 1;
            self.ready.extend(group.parked.drain(..));
        }
        self.release_inputs(run, index);
        let node = &run.nodes[index];
        match result {
            Ok(done) => {
                if self.readers[index] > 0 || node.spec.keep {
                    self.outputs[index] = Some(done.value);
                }
                self.outcomes[index] = Some(Outcome::Ran {
                    attempts: done.attempts,
                    duration: done.duration,
                });
                for &d in &node.dependents {
                    self.waiting[d] -= 1;
                    if self.waiting[d] == 0 && self.outcomes[d].is_none() {
                        self.ready.push(Ready {
                            priority: run.nodes[d].policy.priority,
                            index: d,
                        });
                    }
                }
                Vec::new()
            }
            Err(attempts) => {
                self.failed = true;
                self.outcomes[index] = Some(Outcome::Failed { attempts });
                if run.fail_fast {
                    self.stopping = true;
                }
                self.skip_dependents(run, index)
            }
        }
    }

    /// Marks every transitive dependent of a failed node as skipped because of it.
    fn skip_dependents(&mut self, run: &Run, failed: usize) -> Vec<usize> {
        let because = run.nodes[failed].spec.id.to_string();
        let mut skipped = Vec::new();
        let mut stack: Vec<usize> = run.nodes[failed].dependents.clone();
        while let Some(d) = stack.pop() {
            if self.outcomes[d].is_some() {
                continue;
            }
            self.outcomes[d] = Some(Outcome::Skipped {
                because: because.clone(),
            });
            self.unfinished -= 1;
            self.release_inputs(run, d);
            skipped.push(d);
            stack.extend_from_slice(&run.nodes[d].dependents);
        }
        skipped
    }

    /// A finished node no longer reads its inputs: free outputs nobody else needs.
    fn release_inputs(&mut self, run: &Run, index: usize) {
        let node = &run.nodes[index];
        for source in &node.spec.sources {
            match source {
                Source::Node(j) => self.release(run, *j),
                Source::List(list, _) => {
                    for &j in list {
                        self.release(run, j);
                    }
                }
                Source::Const(_) => {}
            }
        }
    }

    fn release(&mut self, run: &Run, j: usize) {
        self.readers[j] -= 1;
        if self.readers[j] == 0 && !run.nodes[j].spec.keep {
            self.outputs[j] = None;
        }
    }

    fn check_done(&mut self) {
        let stopped = self.stopping && self.running == 0;
        if self.unfinished == 0 || stopped {
            if let Some(tx) = self.done.take() {
                let _ = tx.send(());
            }
        }
    }

    fn report(&mut self, run: &Run, graph: String) -> Report {
        let nodes = run
            .nodes
            .iter()
            .zip(self.outcomes.iter_mut())
            .map(|(node, outcome)| NodeReport {
                id: node.spec.id.to_string(),
                task: node.spec.task,
                outcome: outcome.take().unwrap_or(Outcome::Cancelled),
            })
            .collect();
        Report { graph, nodes }
    }
}

/// Runs `job`, then keeps running whatever is ready next until nothing is.
/// Boxed because it spawns itself: the future's type must be named to be `Send`.
fn drive(run: Arc<Run>, job: Job) -> crate::task::BoxFuture<()> {
    Box::pin(drive_loop(run, job))
}

async fn drive_loop(run: Arc<Run>, mut job: Job) {
    loop {
        let result = if !run.cancellable {
            Some(attempt(&run.nodes[job.index], job.inputs, &run.events).await)
        } else if run.cancel.is_cancelled() {
            None
        } else {
            let attempt = std::pin::pin!(attempt(&run.nodes[job.index], job.inputs, &run.events));
            let cancelled = std::pin::pin!(run.cancel.cancelled());
            match futures::future::select(attempt, cancelled).await {
                futures::future::Either::Left((result, _)) => Some(result),
                futures::future::Either::Right(_) => None,
            }
        };
        let node = &run.nodes[job.index];
        let (id, task) = (&*node.spec.id, node.spec.task);
        match &result {
            Some(Ok(done)) => run.events.emit(&Event::Completed {
                node: id,
                task,
                duration: done.duration,
                attempts: done.attempts,
            }),
            Some(Err(failures)) => {
                if let Some(error) = failures.last() {
                    run.events.emit(&Event::Failed {
                        node: id,
                        task,
                        error,
                        attempts: u32::try_from(failures.len()).unwrap_or(u32::MAX),
                    });
                }
            }
            None => run.events.stopped_running(),
        }
        let (next, extra, skipped) = {
            let mut st = run.lock();
            let skipped = st.finish(&run, job.index, result);
            let next = st.pop_ready(&run);
            if next.is_none() {
                st.running -= 1;
            }
            let mut extra = Vec::new();
            while st.running < run.limit {
                let Some(more) = st.pop_ready(&run) else {
                    break;
                };
                st.running += 1;
                extra.push(more);
            }
            st.check_done();
            (next, extra, skipped)
        };
        for s in skipped {
            run.events.emit(&Event::Skipped {
                node: &run.nodes[s].spec.id,
                task: run.nodes[s].spec.task,
                because: id,
            });
        }
        for more in extra {
            tokio::spawn(drive(run.clone(), more));
        }
        match next {
            Some(n) => {
                job = n;
                // A long chain of tasks that never wait must still let tokio run others.
                tokio::task::consume_budget().await;
            }
            None => return,
        }
    }
}

/// Runs one node's attempts until one succeeds or the policy gives up.
async fn attempt(
    node: &RtNode,
    prepared: Vec<Prepared>,
    events: &Events,
) -> Result<Done, Vec<Failure>> {
    let start = Instant::now();
    let policy = &node.policy;
    let mut failures = Vec::new();
    let (id, task) = (&*node.spec.id, node.spec.task);
    loop {
        let number = u32::try_from(failures.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        events.emit(&Event::Started {
            node: id,
            task,
            attempt: number,
        });
        let inputs = Inputs::new(
            prepared
                .iter()
                .map(|p| match p {
                    Prepared::Shared(v) => Value::Shared(v.clone()),
                    Prepared::List(values, collect) => Value::Owned(Some(collect(values))),
                })
                .collect(),
        );
        let outcome = match std::panic::catch_unwind(AssertUnwindSafe(|| (node.spec.call)(inputs)))
        {
            Err(panic) => Err(Failure::panic(&*panic)),
            Ok(fut) => {
                let fut = tracing::Instrument::instrument(
                    fut,
                    crate::event::attempt_span(id, task, number),
                );
                let guarded = AssertUnwindSafe(fut).catch_unwind();
                let caught = match policy.timeout {
                    Some(limit) => match tokio::time::timeout(limit, guarded).await {
                        Ok(caught) => caught,
                        Err(_) => Ok(Err(Failure::timeout(limit))),
                    },
                    None => guarded.await,
                };
                caught.unwrap_or_else(|panic| Err(Failure::panic(&*panic)))
            }
        };
        match outcome {
            Ok(value) => {
                return Ok(Done {
                    value,
                    attempts: u32::try_from(failures.len())
                        .unwrap_or(u32::MAX)
                        .saturating_add(1),
                    duration: start.elapsed(),
                });
            }
            Err(failure) => {
                let retryable = failure.is_retryable();
                failures.push(failure);
                let failed = u32::try_from(failures.len()).unwrap_or(u32::MAX);
                if !retryable || failed > policy.retries {
                    return Err(failures);
                }
                let delay = policy.backoff.delay_with_jitter(failed);
                if let Some(error) = failures.last() {
                    events.emit(&Event::Retrying {
                        node: id,
                        task,
                        attempt: failed,
                        delay,
                        error,
                    });
                }
                tokio::time::sleep(delay).await;
            }
        }
    }
}
