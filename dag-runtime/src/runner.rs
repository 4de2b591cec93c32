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

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::path::PathBuf;

mod distributed;

use crate::cache::{Digest, Fingerprint, PartHasher, Reason, code_part};
use crate::cancel::Cancel;
use crate::error::{Error, GraphError, ResourceError};
use crate::event::{Callback, Event, Events, Totals};
use crate::graph::{Graph, NodeSpec, Outputs, Source, TaskMeta};
use crate::ids::IdHasher;
use crate::policy::{Backoff, Effective, RunnerDefaults};
use crate::report::{NodeReport, Outcome, Partial, Report};
use crate::resource::{Resource, Resources};
use crate::store::{
    Ack, EmbeddedStore, Manifest, ManifestNode, MemoryStore, NodeIds, Record, RecordState, Stamp,
    Stamps, Store, StoreError, Write,
};
use crate::task::{Failure, Inputs, Shared, Value};

/// How many tasks run at once unless [`Runner::concurrency`] says otherwise.
pub const DEFAULT_CONCURRENCY: usize = 64;

/// The directory of the embedded store unless [`Runner::store`] or `TYPEDAG_STORE` says
/// otherwise, relative to the working directory.
pub const DEFAULT_STORE: &str = ".typedag";

/// What `TYPEDAG_STORE` names.
#[derive(Clone, Debug)]
enum EnvStore {
    /// The embedded store's directory.
    Dir(PathBuf),
    /// A PostgreSQL database.
    #[cfg_attr(
        not(feature = "postgres"),
        allow(dead_code, reason = "refused when read")
    )]
    Url(String),
}

/// Which store a runner records outputs in.
#[derive(Clone)]
enum StoreChoice {
    /// The embedded store in `TYPEDAG_STORE` or [`DEFAULT_STORE`], opened when a run starts.
    Default,
    Given(Arc<dyn Store>),
    Nothing,
}

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
/// let out = Runner::in_memory().concurrency(8).run(graph).await?;
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
    store: StoreChoice,
    env_store: Option<EnvStore>,
    resources: Resources,
    /// The type of a resource given twice; reported when the runner runs.
    duplicate_resource: Option<&'static str>,
    /// The name of the shared run this runner takes part in, if any.
    shared_run: Option<String>,
    /// How long a claim on a node of a shared run holds without renewal.
    lease: Duration,
}

/// How long a process's claim on a node of a distributed run holds unless renewed; see
/// [`Runner::lease`].
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("concurrency", &self.concurrency)
            .field("defaults", &self.defaults)
            .field("fail_fast", &self.fail_fast)
            .field("cancel", &self.cancel)
            .field("cancel_on_ctrl_c", &self.ctrl_c)
            .field("callbacks", &self.callbacks.len())
            .field("resources", &self.resources.names())
            .field("distributed", &self.shared_run)
            .field(
                "store",
                &match &self.store {
                    StoreChoice::Default => match &self.env_store {
                        Some(EnvStore::Url(url)) => url.clone(),
                        _ => format!("embedded in {}", self.default_dir().display()),
                    },
                    StoreChoice::Given(s) => s.location(),
                    StoreChoice::Nothing => "none".to_owned(),
                },
            )
            .finish_non_exhaustive()
    }
}

impl Default for Runner {
    fn default() -> Self {
        Self::new()
    }
}

impl Runner {
    /// A runner with the defaults: outputs recorded in the embedded store in `./.typedag`
    /// ([`DEFAULT_STORE`]), at most [`DEFAULT_CONCURRENCY`] tasks at once, no retries unless
    /// a task asks for them, no timeout, keep going after a failure.
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
    /// | `TYPEDAG_RUN` | a run name | [`distributed`](Runner::distributed) |
    /// | `TYPEDAG_STORE` | a directory, or `postgres://…` | where the embedded store lives, instead of `./.typedag`; or a [`PostgresStore`](crate::store) (feature `postgres`) |
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
            store: StoreChoice::Default,
            env_store: None,
            shared_run: None,
            lease: DEFAULT_LEASE,
            resources: Resources::default(),
            duplicate_resource: None,
        };
        runner.read_env(|var| std::env::var(var).ok());
        runner
    }

    /// Gives the runner a resource: every task parameter `Res<T>` of this type receives it,
    /// shared. One value per type; a second one of the same type makes runs fail with
    /// [`ResourceError::Duplicate`](crate::ResourceError::Duplicate) (wrap one in a newtype
    /// to tell them apart). Resources are not part of any fingerprint.
    #[must_use]
    pub fn resource<T: Resource>(self, value: T) -> Self {
        self.resource_arc(Arc::new(value))
    }

    /// [`resource`](Runner::resource) for a value already in an `Arc`, or a trait object:
    /// `resource_arc::<dyn Mailer>(Arc::new(FakeMailer))` serves `Res<dyn Mailer>`
    /// parameters, so that tests can swap the implementation.
    #[must_use]
    pub fn resource_arc<T: ?Sized + Resource>(mut self, value: Arc<T>) -> Self {
        if let Err(name) = self.resources.add(value) {
            self.duplicate_resource.get_or_insert(name);
        }
        self
    }

    /// Every resource a node of the graph takes and the runner lacks, before anything runs.
    fn check_resources(&self, nodes: &[NodeSpec]) -> Result<(), Error> {
        if let Some(name) = self.duplicate_resource {
            return Err(ResourceError::Duplicate {
                type_name: name.to_owned(),
            }
            .into());
        }
        let mut missing: Vec<(String, String)> = Vec::new();
        for node in nodes {
            for need in &node.meta.resources {
                let entry = (node.meta.task.to_owned(), need.name.to_owned());
                if !self.resources.has(need) && !missing.contains(&entry) {
                    missing.push(entry);
                }
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ResourceError::Missing { missing }.into())
        }
    }

    /// A runner whose store is a fresh [`MemoryStore`]: its runs share a cache, and nothing
    /// outlives the process. Handy in tests and examples.
    pub fn in_memory() -> Self {
        Self::new().store(MemoryStore::new())
    }

    /// Records outputs in `store` (an [`EmbeddedStore`](crate::EmbeddedStore) in another
    /// directory, a [`MemoryStore`], or a store of your own) instead of `./.typedag`.
    #[must_use]
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = StoreChoice::Given(Arc::new(store));
        self
    }

    /// Records nothing and loads nothing: every node runs on every run.
    #[must_use]
    pub fn without_store(mut self) -> Self {
        self.store = StoreChoice::Nothing;
        self
    }

    fn default_dir(&self) -> PathBuf {
        match &self.env_store {
            Some(EnvStore::Dir(dir)) => dir.clone(),
            _ => PathBuf::from(DEFAULT_STORE),
        }
    }

    async fn open_store(&self) -> Result<Option<Arc<dyn Store>>, Error> {
        Ok(match &self.store {
            #[cfg(feature = "postgres")]
            StoreChoice::Default if matches!(self.env_store, Some(EnvStore::Url(_))) => {
                let Some(EnvStore::Url(url)) = &self.env_store else {
                    unreachable!("matched above")
                };
                Some(Arc::new(crate::store::PostgresStore::connect(url).await?))
            }
            StoreChoice::Default => Some(Arc::new(EmbeddedStore::open(self.default_dir())?)),
            StoreChoice::Given(s) => Some(s.clone()),
            StoreChoice::Nothing => None,
        })
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
            match dag_duration::parse(&v) {
                Ok(d) => self.defaults.timeout = Some(d),
                Err(_) => bad("TYPEDAG_TIMEOUT", &v, dag_duration::EXPECTED),
            }
        }
        if let Some(v) = get("TYPEDAG_STORE") {
            let url = v.starts_with("postgres://") || v.starts_with("postgresql://");
            if v.trim().is_empty() {
                bad(
                    "TYPEDAG_STORE",
                    &v,
                    "a directory for the store, or a postgres:// address",
                );
            } else if url && cfg!(not(feature = "postgres")) {
                bad(
                    "TYPEDAG_STORE",
                    &v,
                    "a directory: this program was built without typedag's `postgres` feature, so it cannot use a PostgreSQL store (add `features = [\"postgres\"]` to its typedag dependency)",
                );
            } else if url {
                self.env_store = Some(EnvStore::Url(v));
            } else {
                self.env_store = Some(EnvStore::Dir(PathBuf::from(v)));
            }
        }
        if let Some(v) = get("TYPEDAG_RUN") {
            if v.trim().is_empty() {
                bad(
                    "TYPEDAG_RUN",
                    &v,
                    "the name of a distributed run, like nightly-2026-11-23",
                );
            } else {
                self.shared_run = Some(v.trim().to_owned());
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

    /// Takes part in the distributed run `name`: every process that runs the same graph
    /// under the same run name against the same shared store ([`PostgresStore`]) splits the
    /// graph's work with the others, each node running once in all. A process claims ready
    /// nodes in priority order, at most [`concurrency`](Runner::concurrency) at a time,
    /// under a lease it renews (see [`lease`](Runner::lease)); if it dies, its nodes are
    /// claimed again once their lease runs out. Every process's run ends when the whole
    /// graph has, and hands back the same outputs and report.
    ///
    /// A run name stands for one execution: a process that joins a run that has ended gets
    /// its outcome without running anything. Use a new name (a date, a build number) to run
    /// again; the store's cache makes that cheap. `TYPEDAG_RUN` sets it without code.
    ///
    /// The run fails with [`Error::NotShared`] if the store is not shared, and with
    /// [`GraphError::NotShareable`] if a node's output has no serde (outputs pass between
    /// processes through the store).
    ///
    /// [`PostgresStore`]: crate::store
    #[must_use]
    pub fn distributed(mut self, name: impl Into<String>) -> Self {
        self.shared_run = Some(name.into());
        self
    }

    /// How long a claim on a node of a distributed run holds without renewal
    /// (30 s by default). A process renews its claims every third of it; a process
    /// that stops renewing (it died, or lost the database) loses its nodes to the others
    /// after this long, and a result it records later is refused.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(100));
        self
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
    /// let runner = Runner::in_memory().on_event(|event, totals| {
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
    /// Nodes whose output the store holds for exactly their inputs and code are not run
    /// but loaded (see [`explain`](Runner::explain)); every node that runs is recorded as it
    /// completes.
    ///
    /// Fails with [`Error::Failed`] if any node failed, or [`Error::Cancelled`], each with a
    /// report of every node; with [`Error::Store`] if the store cannot be opened or stops
    /// taking writes. To keep the outputs of the nodes that did complete, use
    /// [`run_partial`](Runner::run_partial).
    pub async fn run<O, P>(&self, graph: Graph<O, P>) -> Result<O, Error> {
        let Graph {
            name,
            uid,
            nodes,
            ids,
            error,
            finish,
            ..
        } = graph;
        let run = self.execute(nodes, ids, error, &name).await?;
        let mut st = run.lock();
        if let Some(e) = st.store_error.take() {
            return Err(e.into());
        }
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
        drop(run);
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
    /// let partial = Runner::in_memory().run_partial(graph).await?;
    /// assert_eq!(partial.outputs.a, Some(1));
    /// assert_eq!(partial.outputs.b, None);
    /// assert!(!partial.report.is_success());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Fails only when the graph cannot run at all, or the store fails (see [`Error`]).
    pub async fn run_partial<O, P>(&self, graph: Graph<O, P>) -> Result<Partial<P>, Error> {
        let Graph {
            name,
            uid,
            nodes,
            ids,
            error,
            partial,
            ..
        } = graph;
        let run = self.execute(nodes, ids, error, &name).await?;
        let mut st = run.lock();
        if let Some(e) = st.store_error.take() {
            return Err(e.into());
        }
        let report = st.report(&run, name);
        let mut outputs = Outputs {
            graph: uid,
            values: std::mem::take(&mut st.outputs),
        };
        drop(st);
        drop(run);
        Ok(Partial {
            outputs: partial(&mut outputs),
            report,
        })
    }

    /// Says, without running anything, what a run of `graph` would do with each node: load
    /// it from the store, run it (and why), or run it only if an upstream node that runs
    /// produces other bytes than last time.
    ///
    /// ```
    /// use typedag::prelude::*;
    ///
    /// #[task]
    /// async fn load(n: u32) -> u32 { n }
    ///
    /// #[task]
    /// async fn double(x: &u32) -> u32 { x * 2 }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), typedag::Error> {
    /// let runner = Runner::in_memory();
    /// runner.run(dag! { a = load(1); b = double(a); }).await?;
    ///
    /// let plan = runner.explain(&dag! { a = load(2); b = double(a); }).await?;
    /// assert_eq!(plan.node("a"), Some(&NodeState::Runs(Reason::InputChanged)));
    /// assert_eq!(plan.node("b"), Some(&NodeState::Waits { on: "a".into() }));
    /// println!("{plan}");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn explain<O, P>(&self, graph: &Graph<O, P>) -> Result<Explanation, Error> {
        if let Some(e) = &self.env_error {
            return Err(Error::Env(e.clone()));
        }
        if let Some(e) = &graph.error {
            return Err(e.clone().into());
        }
        let store = self.open_store().await?;
        let stamps = match &store {
            Some(s) => {
                s.stamps(&graph.name, Arc::new(graph.ids.clone()))
                    .await?
                    .stamps
            }
            None => Vec::new(),
        };
        let n = graph.nodes.len();
        let mut states: Vec<NodeState> = Vec::with_capacity(n);
        // What each node's output digest will be: known (cached), unknown until it runs
        // (by the id of the node that decides), or none at all.
        let mut digests: Vec<Result<Digest, Option<String>>> = Vec::with_capacity(n);
        let mut scratch = Vec::new();
        for (i, spec) in graph.nodes.iter().enumerate() {
            let parts = store.as_ref().and_then(|_| Parts::of(spec));
            let upstream = upstream_part(
                spec,
                |j| match &digests[j] {
                    Ok(d) => Slot::Digest(d),
                    Err(Some(on)) => Slot::Pending(on),
                    Err(None) => Slot::NoDigest,
                },
                &mut scratch,
            );
            let record = stamps.get(i).and_then(Option::as_ref);
            let (state, digest) = match verdict(parts.as_ref(), record, upstream) {
                Verdict::Cached(d) => (NodeState::Cached, Ok(d)),
                Verdict::Run(reason, _) if spec.meta.codec.is_some() => {
                    (NodeState::Runs(reason), Err(Some(spec.id.to_string())))
                }
                Verdict::Run(reason, _) => (NodeState::Runs(reason), Err(None)),
                Verdict::Waits(on) => (NodeState::Waits { on: on.clone() }, Err(Some(on))),
            };
            states.push(state);
            digests.push(digest);
        }
        Ok(Explanation {
            graph: graph.name.clone(),
            nodes: graph
                .nodes
                .iter()
                .zip(states)
                .map(|(spec, state)| (spec.id.to_string(), spec.meta.task, state))
                .collect(),
        })
    }

    /// Runs the nodes until every one has finished or the run stopped.
    async fn execute(
        &self,
        nodes: Vec<NodeSpec>,
        ids: NodeIds,
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
        self.check_resources(&nodes)?;
        let store = self.open_store().await?;
        let coordinator = match &self.shared_run {
            Some(_) => Some(
                store
                    .as_ref()
                    .and_then(|s| s.coordinator())
                    .ok_or_else(|| Error::NotShared {
                        store: store
                            .as_ref()
                            .map_or_else(|| "no store".to_owned(), |s| s.location()),
                    })?,
            ),
            None => None,
        };
        // Read the store on another worker while the run's tables are built here.
        let loading = store.clone().map(|s| {
            let name = name.to_owned();
            let ids = Arc::new(ids);
            tokio::spawn(async move { s.stamps(&name, ids).await })
        });
        let (mut run, done) = Run::new(nodes, self, name, store)?;
        let stamps = match loading {
            Some(handle) => handle
                .await
                .map_err(|e| Error::Internal(format!("reading the store failed: {e}")))??,
            None => Stamps::default(),
        };
        run.stamps = stamps.stamps;
        let manifest =
            (run.shape.is_some() && run.shape != stamps.manifest).then(|| run.manifest());
        let run = Arc::new(run);
        if let (Some(store), Some(manifest)) = (&run.store, manifest) {
            run.lock().pending += 1;
            store.write(
                Write::Graph {
                    graph: run.graph.clone(),
                    manifest,
                },
                run.ack(None),
            );
        }
        let ctrl_c = self.ctrl_c.then(|| {
            let cancel = run.cancel.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    cancel.cancel();
                }
            })
        });
        let driven = match (&self.shared_run, coordinator) {
            (Some(name), Some(coordinator)) => {
                distributed::drive(&run, coordinator, name, self.lease, done).await
            }
            _ => Self::drive_local(&run, done).await,
        };
        if let Some(listener) = ctrl_c {
            listener.abort();
        }
        driven?;

        let unloaded: Vec<usize> = {
            let st = run.lock();
            if run.events.on() {
                for (node, outcome) in run.nodes.iter().zip(&st.outcomes) {
                    if outcome.is_none() {
                        run.events.emit(&Event::Cancelled {
                            node: &node.id,
                            task: node.meta.task,
                        });
                    }
                }
            }
            (0..run.nodes.len())
                .filter(|&i| run.nodes[i].keep && st.outputs[i].is_none() && st.stored[i])
                .collect()
        };
        for i in unloaded {
            if let Err(message) = run.load_output(i).await {
                return Err(StoreError::Corrupt {
                    path: run
                        .store
                        .as_ref()
                        .map(|s| s.location())
                        .unwrap_or_default()
                        .into(),
                    detail: format!("{message}; run again to compute it afresh"),
                }
                .into());
            }
        }
        Ok(run)
    }

    /// Drives a run in this process alone, until every node has finished or it stopped.
    async fn drive_local(run: &Arc<Run>, done: oneshot::Receiver<()>) -> Result<(), Error> {
        let watcher = run.cancellable.then(|| {
            // Wakes the run when cancelled while nothing is in flight to notice. Holds the
            // run weakly: nothing of a run outlives `run` returning.
            let cancel = run.cancel.clone();
            let weak = Arc::downgrade(run);
            tokio::spawn(async move {
                cancel.cancelled().await;
                let Some(run) = weak.upgrade() else { return };
                let done = {
                    let mut st = run.lock();
                    st.cancelled = true;
                    st.stopping = true;
                    st.take_done()
                };
                drop(run);
                if let Some(tx) = done {
                    let _ = tx.send(());
                }
            })
        });

        // Each driver holds a sender; the channel closes when the last one is gone.
        let (alive, mut drivers) = tokio::sync::mpsc::channel::<()>(1);
        let first = {
            let mut st = run.lock();
            let mut cached = Vec::new();
            let roots: Vec<usize> = (0..run.nodes.len())
                .filter(|&i| st.waiting[i] == 0)
                .collect();
            for i in roots {
                st.become_ready(run, i, &mut cached);
            }
            let mut first = None;
            let mut extra = Vec::new();
            while st.running < run.limit {
                let Some(job) = st.pop_ready(run) else { break };
                st.running += 1;
                if first.is_none() {
                    first = Some(job);
                } else {
                    extra.push(job);
                }
            }
            st.check_done();
            drop(st);
            run.emit_cached(&cached);
            for job in extra {
                tokio::spawn(drive(run.clone(), job, alive.clone()));
            }
            first
        };
        if let Some(job) = first {
            drive(run.clone(), job, alive.clone()).await;
        }
        let finished = done.await;
        // Wait for every driver to let go of the run, so that nothing of it (the store
        // included) outlives this call.
        drop(alive);
        while drivers.recv().await.is_some() {}
        if let Some(watcher) = watcher {
            watcher.abort();
        }
        finished
            .map_err(|_| Error::Internal("the run ended without signalling completion".into()))?;
        Ok(())
    }
}

/// What a run of a graph would do with each node, from [`Runner::explain`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    graph: String,
    nodes: Vec<(String, &'static str, NodeState)>,
}

/// What a run would do with one node.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeState {
    /// Its output is loaded from the store: it does not run.
    Cached,
    /// It runs, for this reason.
    Runs(Reason),
    /// It is cached unless the upstream node `on`, which runs, produces other bytes than
    /// last time.
    Waits {
        /// The nearest upstream node that decides.
        on: String,
    },
}

impl Explanation {
    /// The graph's name.
    pub fn graph(&self) -> &str {
        &self.graph
    }

    /// Every node's id, task and state, in declaration order.
    pub fn nodes(&self) -> impl Iterator<Item = (&str, &'static str, &NodeState)> {
        self.nodes
            .iter()
            .map(|(id, task, s)| (id.as_str(), *task, s))
    }

    /// One node's state.
    pub fn node(&self, id: &str) -> Option<&NodeState> {
        self.nodes.iter().find(|n| n.0 == id).map(|n| &n.2)
    }

    fn count(&self, f: impl Fn(&NodeState) -> bool) -> usize {
        self.nodes.iter().filter(|n| f(&n.2)).count()
    }
}

impl std::fmt::Display for Explanation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "graph `{}`: {} cached, {} to run, {} depending on upstream changes",
            self.graph,
            self.count(|s| matches!(s, NodeState::Cached)),
            self.count(|s| matches!(s, NodeState::Runs(_))),
            self.count(|s| matches!(s, NodeState::Waits { .. })),
        )?;
        let width = self.nodes.iter().map(|n| n.0.len()).max().unwrap_or(0);
        for (id, task, state) in &self.nodes {
            let what = match state {
                NodeState::Cached => "cached".to_owned(),
                NodeState::Runs(reason) => format!("runs: {reason}"),
                NodeState::Waits { on } => format!("cached unless `{on}` changes its output"),
            };
            write!(f, "\n  {id:<width$}  {task:<12}  {what}")?;
        }
        Ok(())
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn runner_with(vars: &[(&str, &str)]) -> Runner {
        let mut r = Runner {
            concurrency: DEFAULT_CONCURRENCY,
            defaults: RunnerDefaults::default(),
            fail_fast: false,
            env_error: None,
            cancel: None,
            ctrl_c: false,
            callbacks: Vec::new(),
            store: StoreChoice::Nothing,
            env_store: None,
            shared_run: None,
            lease: DEFAULT_LEASE,
            resources: Resources::default(),
            duplicate_resource: None,
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
            ("TYPEDAG_RUN", " "),
            ("TYPEDAG_STORE", ""),
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

    #[test]
    fn typedag_store_names_a_directory_or_a_database() {
        let r = runner_with(&[("TYPEDAG_STORE", "/var/cache/x"), ("TYPEDAG_RUN", "n-1")]);
        assert!(matches!(&r.env_store, Some(EnvStore::Dir(d)) if d == Path::new("/var/cache/x")));
        assert_eq!(r.shared_run.as_deref(), Some("n-1"));
        let r = runner_with(&[("TYPEDAG_STORE", "postgres://ann@db/x")]);
        if cfg!(feature = "postgres") {
            assert!(matches!(&r.env_store, Some(EnvStore::Url(u)) if u == "postgres://ann@db/x"));
            assert!(r.env_error.is_none());
        } else {
            let text = Error::Env(r.env_error.clone().expect("refused")).to_string();
            assert!(
                text.contains("without typedag's `postgres` feature"),
                "{text}"
            );
        }
    }
}

/// The parts of a node's fingerprint known before the run starts.
#[derive(Clone, Copy)]
struct Parts {
    code: Digest,
    output_type: Digest,
    inputs: Digest,
    /// `cache = false`: the node runs every time; its output is digested, not stored.
    always: bool,
}

impl Parts {
    /// `None` for a task whose output has no codec (`cache = false` without serde).
    fn of(spec: &NodeSpec) -> Option<Self> {
        let codec = spec.meta.codec.as_ref()?;
        Some(Self {
            code: code_part(spec.meta.task, spec.meta.fingerprint),
            output_type: (codec.output_type)(),
            inputs: inputs_part(spec),
            always: !spec.meta.task_options.cache,
        })
    }
}

fn inputs_part(spec: &NodeSpec) -> Digest {
    static NONE: std::sync::OnceLock<Digest> = std::sync::OnceLock::new();
    if !spec.sources.iter().any(|s| matches!(s, Source::Const(_))) {
        return *NONE
            .get_or_init(|| PartHasher::new(&mut Vec::new(), b"typedag.inputs.v1\0").finish());
    }
    let mut buf = Vec::new();
    let mut h = PartHasher::new(&mut buf, b"typedag.inputs.v1\0");
    for (param, source) in spec.sources.iter().enumerate() {
        if let Source::Const(c) = source {
            h.add(param, c.digest.as_ref().unwrap_or(&[0; 32]));
        }
    }
    h.finish()
}

/// What is known of one upstream output's digest.
enum Slot<'a> {
    Digest(&'a Digest),
    /// A task with `cache = false`, or a node that did not complete.
    NoDigest,
    /// Not known before the run: the node with this id runs first.
    Pending(&'a str),
}

/// The upstream part of a node's fingerprint, as far as it can be known.
enum Upstream {
    Known(Digest),
    /// An upstream output has no digest: the node must run.
    NotCached,
    /// Known only once this upstream node has run again.
    Pending(String),
}

/// Hashes the digests of `spec`'s upstream outputs in argument order.
fn upstream_part<'a>(
    spec: &NodeSpec,
    slot: impl Fn(usize) -> Slot<'a>,
    buf: &mut Vec<u8>,
) -> Upstream {
    let mut h = PartHasher::new(buf, b"typedag.upstream.v1\0");
    let mut pending = None;
    for (param, j) in spec.upstream() {
        match slot(j) {
            Slot::NoDigest => return Upstream::NotCached,
            Slot::Pending(on) => {
                pending.get_or_insert(on);
            }
            Slot::Digest(d) => h.add(param, d),
        }
    }
    match pending {
        Some(on) => Upstream::Pending(on.to_owned()),
        None => Upstream::Known(h.finish()),
    }
}

#[allow(
    clippy::large_enum_variant,
    reason = "short-lived, never stored in bulk"
)]
enum Verdict {
    Cached(Digest),
    Run(Reason, Option<Fingerprint>),
    /// Cached unless this upstream node's output changes (only before a run).
    Waits(String),
}

/// Compares what a node would compute from with what the store recorded.
fn verdict(parts: Option<&Parts>, record: Option<&Stamp>, upstream: Upstream) -> Verdict {
    let Some(parts) = parts else {
        return Verdict::Run(Reason::CachingOff, None);
    };
    let (digest, pending, not_cached) = match upstream {
        Upstream::Known(d) => (d, None, false),
        Upstream::NotCached => ([0; 32], None, true),
        Upstream::Pending(on) => ([0; 32], Some(on), false),
    };
    let fp = Fingerprint {
        code: parts.code,
        output_type: parts.output_type,
        inputs: parts.inputs,
        upstream: digest,
    };
    if parts.always {
        return Verdict::Run(Reason::CachingOff, Some(fp));
    }
    if not_cached {
        return Verdict::Run(Reason::UpstreamNotCached, Some(fp));
    }
    let (stored, output) = match record {
        None => return Verdict::Run(Reason::NeverRan, Some(fp)),
        Some(Stamp::Damaged) => return Verdict::Run(Reason::RecordDamaged, Some(fp)),
        Some(Stamp::Done {
            fingerprint,
            digest,
        }) => (fingerprint, Some(digest)),
        Some(Stamp::Failed { fingerprint }) => (fingerprint, None),
    };
    let own = Fingerprint {
        upstream: stored.upstream,
        ..fp
    };
    if let Some(reason) = own.change_from(stored) {
        return Verdict::Run(reason, Some(fp));
    }
    let Some(output) = output else {
        return Verdict::Run(Reason::FailedBefore, Some(fp));
    };
    if let Some(on) = pending {
        return Verdict::Waits(on);
    }
    if fp.upstream != stored.upstream {
        return Verdict::Run(Reason::UpstreamChanged, Some(fp));
    }
    Verdict::Cached(*output)
}

impl NodeSpec {
    /// Each upstream node read, with the parameter that reads it, in argument order.
    fn upstream(&self) -> Upstreams<'_> {
        Upstreams {
            sources: &self.sources,
            param: 0,
            within: 0,
        }
    }
}

/// The iterator of [`NodeSpec::upstream`]; allocates nothing.
struct Upstreams<'a> {
    sources: &'a [Source],
    param: usize,
    within: usize,
}

impl Iterator for Upstreams<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        loop {
            let source = self.sources.get(self.param)?;
            let param = self.param;
            match source {
                Source::Node(j) => {
                    self.param += 1;
                    return Some((param, *j));
                }
                Source::List(list, _) => {
                    if let Some(j) = list.get(self.within) {
                        self.within += 1;
                        return Some((param, *j));
                    }
                    self.param += 1;
                    self.within = 0;
                }
                Source::Const(_) => self.param += 1,
            }
        }
    }
}

/// One run's immutable plan and its mutable state.
struct Run {
    nodes: Vec<NodeSpec>,
    /// By node, like `nodes`.
    rt: Vec<RtNode>,
    dependents: Dependents,
    /// Settings for nodes that set neither themselves nor in their task.
    defaults: RunnerDefaults,
    graph: String,
    limit: usize,
    fail_fast: bool,
    cancel: Cancel,
    /// Whether anything can cancel this run; if not, attempts are not raced against it.
    cancellable: bool,
    events: Events,
    store: Option<Arc<dyn Store>>,
    /// What `Res<T>` parameters receive; `None` when the runner has none.
    resources: Option<Arc<Resources>>,
    /// What the store held for each node when the run started, by position (empty without
    /// a store).
    stamps: Vec<Option<Stamp>>,
    /// The digest of the graph's shape, to save it when the store's copy differs.
    shape: Option<Digest>,
    state: Mutex<State>,
}

/// What a run works out about each node before it starts.
struct RtNode {
    /// Higher runs first among ready nodes.
    priority: i32,
    /// The node's task's slot in `State::limited`, if the task has a `limit`.
    limit_group: Option<usize>,
    /// The fingerprint parts known up front; `None` without a store or caching.
    parts: Option<Parts>,
}

/// Each node's dependents, once per edge that reads it, in one list.
struct Dependents {
    /// Where each node's start in `list`; one more entry than nodes.
    start: Vec<usize>,
    list: Vec<usize>,
}

impl Dependents {
    /// `readers[j]` is how many edges read node `j`.
    fn new(specs: &[NodeSpec], readers: &[u32]) -> Self {
        let mut start = Vec::with_capacity(readers.len() + 1);
        let mut total = 0;
        start.push(0);
        for &r in readers {
            total += r as usize;
            start.push(total);
        }
        let mut next = start.clone();
        let mut list = vec![0; total];
        for (i, spec) in specs.iter().enumerate() {
            for (_, j) in spec.upstream() {
                list[next[j]] = i;
                next[j] += 1;
            }
        }
        Self { start, list }
    }

    fn of(&self, i: usize) -> &[usize] {
        &self.list[self.start[i]..self.start[i + 1]]
    }
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
    /// Outputs that are in the store and not loaded (cached nodes).
    stored: Vec<bool>,
    /// Each finished node's output digest; `None` if it has none (caching off).
    digests: Vec<Option<Digest>>,
    /// For nodes that run: why, and the fingerprint to record.
    /// (Empty without a store: every node runs, for no other reason.)
    plans: HashMap<usize, (Reason, Option<Fingerprint>), BuildHasherDefault<IdHasher>>,
    outcomes: Vec<Option<Outcome>>,
    ready: BinaryHeap<Ready>,
    limited: Vec<Limited>,
    running: usize,
    unfinished: usize,
    /// Store writes not yet acknowledged.
    pending: usize,
    /// Reused for hashing each node's upstream digests.
    scratch: Vec<u8>,
    store_error: Option<StoreError>,
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

/// A node about to run, with its inputs in hand (or the stored ones still to load).
struct Job {
    index: usize,
    inputs: Option<Vec<Prepared>>,
    reason: Reason,
    fingerprint: Option<Fingerprint>,
}

enum Prepared {
    Shared(Shared),
    List(Vec<Shared>, fn(&[Shared]) -> Box<dyn std::any::Any + Send>),
}

struct Done {
    value: Shared,
    attempts: u32,
    duration: Duration,
    digest: Option<Digest>,
}

impl Run {
    #[allow(clippy::type_complexity)]
    fn new(
        specs: Vec<NodeSpec>,
        runner: &Runner,
        graph: &str,
        store: Option<Arc<dyn Store>>,
    ) -> Result<(Self, oneshot::Receiver<()>), Error> {
        let n = specs.len();
        let mut waiting = vec![0u32; n];
        let mut readers = vec![0u32; n];
        for (i, spec) in specs.iter().enumerate() {
            for (param, source) in spec.sources.iter().enumerate() {
                if let Source::Const(c) = source
                    && let Err(message) = &c.digest
                {
                    return Err(GraphError::Constant {
                        graph: graph.to_owned(),
                        node: spec.id.to_string(),
                        param,
                        message: message.clone(),
                    }
                    .into());
                }
            }
            for (_, j) in spec.upstream() {
                waiting[i] += 1;
                readers[j] += 1;
            }
        }
        let dependents = Dependents::new(&specs, &readers);
        let shape = store.as_ref().map(|_| {
            crate::store::shape_digest(
                specs
                    .iter()
                    .map(|spec| (&*spec.id, spec.meta.task, spec.upstream().map(|(_, j)| j))),
            )
        });
        let mut limited: Vec<Limited> = Vec::new();
        let mut groups: HashMap<&'static str, usize> = HashMap::new();
        // The code and output-type parts are the same for every node of a task.
        let mut task_parts: HashMap<*const TaskMeta, Option<Parts>> = HashMap::new();
        let rt: Vec<RtNode> = specs
            .iter()
            .map(|spec| {
                let priority = Effective::priority(&spec.options, &spec.meta.task_options);
                let limit_group = spec.meta.task_options.limit.map(|limit| {
                    *groups.entry(spec.meta.task).or_insert_with(|| {
                        limited.push(Limited {
                            limit,
                            running: 0,
                            parked: Vec::new(),
                        });
                        limited.len() - 1
                    })
                });
                let parts = store.as_ref().and_then(|_| {
                    let task = *task_parts
                        .entry(std::ptr::from_ref(spec.meta))
                        .or_insert_with(|| Parts::of(spec));
                    task.map(|p| Parts {
                        inputs: inputs_part(spec),
                        ..p
                    })
                });
                RtNode {
                    priority,
                    limit_group,
                    parts,
                }
            })
            .collect();
        let (tx, rx) = oneshot::channel();
        let state = State {
            waiting,
            readers,
            outputs: vec![None; n],
            stored: vec![false; n],
            digests: vec![None; n],
            plans: HashMap::default(),
            outcomes: vec![None; n],
            ready: BinaryHeap::new(),
            limited,
            running: 0,
            unfinished: n,
            pending: 0,
            scratch: Vec::with_capacity(256),
            store_error: None,
            failed: false,
            cancelled: false,
            stopping: false,
            done: Some(tx),
        };
        Ok((
            Self {
                nodes: specs,
                rt,
                dependents,
                defaults: runner.defaults.clone(),
                graph: graph.to_owned(),
                limit: runner.concurrency,
                fail_fast: runner.fail_fast,
                cancel: runner.cancel.clone().unwrap_or_default(),
                cancellable: runner.cancel.is_some() || runner.ctrl_c,
                events: Events::new(runner.callbacks.clone(), n),
                store,
                resources: (!runner.resources.is_empty())
                    .then(|| Arc::new(runner.resources.clone())),
                stamps: Vec::new(),
                shape,
                state: Mutex::new(state),
            },
            rx,
        ))
    }

    /// The graph's shape, for the store.
    fn manifest(&self) -> Manifest {
        Manifest {
            nodes: self
                .nodes
                .iter()
                .map(|node| ManifestNode {
                    id: node.id.to_string(),
                    task: node.meta.task.to_owned(),
                    inputs: node
                        .upstream()
                        .map(|(_, j)| u32::try_from(j).unwrap_or(u32::MAX))
                        .collect(),
                })
                .collect(),
        }
    }

    /// What the store held for node `i` when the run started.
    fn stamp(&self, i: usize) -> Option<&Stamp> {
        self.stamps.get(i).and_then(Option::as_ref)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; if something did, the state is still whole.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn emit_cached(&self, cached: &[usize]) {
        if self.events.on() {
            for &i in cached {
                self.events.emit(&Event::Cached {
                    node: &self.nodes[i].id,
                    task: self.nodes[i].meta.task,
                });
            }
        }
    }

    /// What the store calls once a write is durable: the node's `Completed` event, and the
    /// run may end once nothing is left unacknowledged.
    fn ack(self: &Arc<Self>, completed: Option<(usize, Duration, u32)>) -> Ack {
        let run = self.clone();
        Box::new(move |result| {
            if result.is_ok()
                && let Some((i, duration, attempts)) = completed
            {
                run.events.emit(&Event::Completed {
                    node: &run.nodes[i].id,
                    task: run.nodes[i].meta.task,
                    duration,
                    attempts,
                });
            }
            let done = {
                let mut st = run.lock();
                st.pending -= 1;
                if let Err(e) = result {
                    st.store_error.get_or_insert(e);
                    st.stopping = true;
                }
                st.take_done()
            };
            // Let go of the run before waking whoever waits for it: the last reference to
            // the store must not be dropped on the store's own writer thread.
            drop(run);
            if let Some(tx) = done {
                let _ = tx.send(());
            }
        })
    }

    /// Loads a cached node's output from the store into memory. On failure its record is
    /// dropped, so that the next run computes it afresh.
    async fn load_output(self: &Arc<Self>, j: usize) -> Result<Shared, String> {
        let node = &self.nodes[j];
        let digest = {
            let st = self.lock();
            if let Some(v) = &st.outputs[j] {
                return Ok(v.clone());
            }
            st.digests[j]
        };
        let (Some(store), Some(codec), Some(digest)) = (&self.store, &node.meta.codec, digest)
        else {
            return Err(format!("the output of node `{}` is not at hand", node.id));
        };
        let loaded = match store.output(&self.graph, &node.id, &digest).await {
            Ok(Some(bytes)) => {
                (codec.decode)(&bytes).map_err(|e| format!("cannot be decoded: {e}"))
            }
            Ok(None) => Err("is missing or does not match its digest".to_owned()),
            Err(e) => Err(e.to_string()),
        };
        match loaded {
            Ok(value) => {
                let mut st = self.lock();
                st.stored[j] = false;
                Ok(st.outputs[j].get_or_insert(value).clone())
            }
            Err(why) => {
                self.lock().pending += 1;
                store.write(
                    Write::Forget {
                        graph: self.graph.clone(),
                        nodes: Some(vec![node.id.to_string()]),
                    },
                    self.ack(None),
                );
                Err(format!(
                    "the stored output of node `{}` {why}; its record is dropped",
                    node.id
                ))
            }
        }
    }
}

impl State {
    /// A node whose inputs have all completed: loaded from the store if its record still
    /// answers for it (and then its dependents in turn), queued to run otherwise.
    fn become_ready(&mut self, run: &Run, start: usize, cached: &mut Vec<usize>) {
        if run.store.is_none() {
            self.ready.push(Ready {
                priority: run.rt[start].priority,
                index: start,
            });
            return;
        }
        // Allocates only when a cached node readies others.
        let mut stack = Vec::new();
        let mut next = Some(start);
        while let Some(i) = next.take().or_else(|| stack.pop()) {
            let node = &run.nodes[i];
            let verdict = if run.store.is_none() {
                Verdict::Run(Reason::NoStore, None)
            } else {
                let digests = &self.digests;
                let upstream = upstream_part(
                    node,
                    |j| match &digests[j] {
                        Some(d) => Slot::Digest(d),
                        None => Slot::NoDigest,
                    },
                    &mut self.scratch,
                );
                verdict(run.rt[i].parts.as_ref(), run.stamp(i), upstream)
            };
            match verdict {
                Verdict::Cached(digest) => {
                    self.outcomes[i] = Some(Outcome::Cached);
                    self.digests[i] = Some(digest);
                    self.stored[i] = true;
                    self.unfinished -= 1;
                    self.release_inputs(run, i);
                    cached.push(i);
                    for &d in run.dependents.of(i) {
                        self.waiting[d] -= 1;
                        if self.waiting[d] == 0 && self.outcomes[d].is_none() {
                            stack.push(d);
                        }
                    }
                }
                Verdict::Run(reason, fp) => {
                    self.plans.insert(i, (reason, fp));
                    self.ready.push(Ready {
                        priority: run.rt[i].priority,
                        index: i,
                    });
                }
                Verdict::Waits(_) => unreachable!("every upstream digest is known during a run"),
            }
        }
    }

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
            match run.rt[next.index].limit_group {
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
        let (reason, fingerprint) = self.plans.remove(&index).unwrap_or((Reason::NoStore, None));
        Some(Job {
            index,
            inputs: self.prepare(run, index),
            reason,
            fingerprint,
        })
    }

    /// The node's inputs, or `None` if some are in the store and must be loaded first.
    fn prepare(&self, run: &Run, index: usize) -> Option<Vec<Prepared>> {
        let spec = &run.nodes[index];
        assemble(spec, spec.upstream().map(|(_, j)| self.outputs[j].clone()))
    }

    /// Records a node's end. Returns the nodes skipped and the nodes cached because of it.
    fn finish(
        &mut self,
        run: &Run,
        index: usize,
        result: Option<Result<Done, Vec<Failure>>>,
        reason: Reason,
    ) -> (Vec<usize>, Vec<usize>) {
        let Some(result) = result else {
            // Cancelled in flight: nothing is recorded, the report says cancelled.
            self.cancelled = true;
            self.stopping = true;
            self.release_inputs(run, index);
            return (Vec::new(), Vec::new());
        };
        self.unfinished -= 1;
        if let Some(g) = run.rt[index].limit_group {
            let group = &mut self.limited[g];
            group.running -= 1;
            self.ready.extend(group.parked.drain(..));
        }
        self.release_inputs(run, index);
        let node = &run.nodes[index];
        match result {
            Ok(done) => {
                if self.readers[index] > 0 || node.keep {
                    self.outputs[index] = Some(done.value);
                }
                self.digests[index] = done.digest;
                self.outcomes[index] = Some(Outcome::Ran {
                    attempts: done.attempts,
                    duration: done.duration,
                    reason,
                });
                let mut cached = Vec::new();
                for &d in run.dependents.of(index) {
                    self.waiting[d] -= 1;
                    if self.waiting[d] == 0 && self.outcomes[d].is_none() {
                        self.become_ready(run, d, &mut cached);
                    }
                }
                (Vec::new(), cached)
            }
            Err(attempts) => {
                self.failed = true;
                self.outcomes[index] = Some(Outcome::Failed { attempts });
                if run.fail_fast {
                    self.stopping = true;
                }
                (self.skip_dependents(run, index), Vec::new())
            }
        }
    }

    /// Marks every transitive dependent of a failed node as skipped because of it.
    fn skip_dependents(&mut self, run: &Run, failed: usize) -> Vec<usize> {
        let because = run.nodes[failed].id.to_string();
        let mut skipped = Vec::new();
        let mut stack: Vec<usize> = run.dependents.of(failed).to_vec();
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
            stack.extend_from_slice(run.dependents.of(d));
        }
        skipped
    }

    /// A finished node no longer reads its inputs: free outputs nobody else needs.
    fn release_inputs(&mut self, run: &Run, index: usize) {
        for (_, j) in run.nodes[index].upstream() {
            self.readers[j] -= 1;
            if self.readers[j] == 0 && !run.nodes[j].keep {
                self.outputs[j] = None;
            }
        }
    }

    /// The completion signal, once every node has finished (or the run stopped and nothing
    /// is in flight) and every store write is acknowledged.
    fn take_done(&mut self) -> Option<oneshot::Sender<()>> {
        let stopped = self.stopping && self.running == 0;
        if (self.unfinished == 0 || stopped) && self.pending == 0 {
            self.done.take()
        } else {
            None
        }
    }

    fn check_done(&mut self) {
        if let Some(tx) = self.take_done() {
            let _ = tx.send(());
        }
    }

    fn report(&mut self, run: &Run, graph: String) -> Report {
        let nodes = run
            .nodes
            .iter()
            .zip(self.outcomes.iter_mut())
            .map(|(node, outcome)| NodeReport {
                id: node.id.to_string(),
                task: node.meta.task,
                outcome: outcome.take().unwrap_or(Outcome::Cancelled),
            })
            .collect();
        Report { graph, nodes }
    }
}

/// Runs `job`, then keeps running whatever is ready next until nothing is.
/// Boxed because it spawns itself: the future's type must be named to be `Send`.
fn drive(run: Arc<Run>, job: Job, alive: Alive) -> crate::task::BoxFuture<()> {
    Box::pin(drive_loop(run, job, alive))
}

/// Held by each driver until it has let go of the run.
type Alive = tokio::sync::mpsc::Sender<()>;

/// Loads the stored outputs a job needs, then its inputs.
async fn load_inputs(run: &Arc<Run>, index: usize) -> Result<Vec<Prepared>, Failure> {
    let upstream: Vec<usize> = run.nodes[index].upstream().map(|(_, j)| j).collect();
    let mut held = Vec::with_capacity(upstream.len());
    for j in upstream {
        // Held until the inputs are prepared, so a concurrent release cannot free it.
        held.push(run.load_output(j).await.map_err(Failure::fatal)?);
    }
    // Built from what is held, not from the shared table: readers that finished meanwhile
    // may have freed an output there.
    assemble(&run.nodes[index], held.into_iter().map(Some))
        .ok_or_else(|| Failure::fatal("typedag: an input went missing while loading".into()))
}

/// A node's inputs, from its upstream outputs given in [`NodeSpec::upstream`] order; `None` if
/// one is missing.
fn assemble(
    spec: &NodeSpec,
    mut upstream: impl Iterator<Item = Option<Shared>>,
) -> Option<Vec<Prepared>> {
    spec.sources
        .iter()
        .map(|source| match source {
            Source::Node(_) => upstream.next().flatten().map(Prepared::Shared),
            Source::Const(c) => Some(Prepared::Shared(c.value.clone())),
            Source::List(list, collect) => list
                .iter()
                .map(|_| upstream.next().flatten())
                .collect::<Option<Vec<_>>>()
                .map(|values| Prepared::List(values, *collect)),
        })
        .collect()
}

async fn drive_loop(run: Arc<Run>, mut job: Job, alive: Alive) {
    loop {
        let index = job.index;
        let inputs = match job.inputs.take() {
            Some(inputs) => Ok(inputs),
            None => load_inputs(&run, index).await,
        };
        let result = match inputs {
            Err(failure) => Some(Err(vec![failure])),
            Ok(inputs) => {
                if !run.cancellable {
                    Some(attempt(&run, index, inputs, job.reason).await)
                } else if run.cancel.is_cancelled() {
                    None
                } else {
                    let attempt = std::pin::pin!(attempt(&run, index, inputs, job.reason));
                    let cancelled = std::pin::pin!(run.cancel.cancelled());
                    match futures::future::select(attempt, cancelled).await {
                        futures::future::Either::Left((result, _)) => Some(result),
                        futures::future::Either::Right(_) => None,
                    }
                }
            }
        };
        let node = &run.nodes[index];
        let (id, task) = (&*node.id, node.meta.task);
        let (result, write) = record(&run, node, job.fingerprint.take(), job.reason, result);
        match &result {
            Some(Ok(done)) if write.is_none() => run.events.emit(&Event::Completed {
                node: id,
                task,
                duration: done.duration,
                attempts: done.attempts,
            }),
            Some(Ok(_)) => {}
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
        let completed = match &result {
            Some(Ok(done)) => Some((index, done.duration, done.attempts)),
            _ => None,
        };
        let (next, extra, skipped, cached, done) = {
            let mut st = run.lock();
            if write.is_some() {
                st.pending += 1;
            }
            let (skipped, cached) = st.finish(&run, index, result, job.reason);
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
            (next, extra, skipped, cached, st.take_done())
        };
        if let (Some(write), Some(store)) = (write, &run.store) {
            store.write(write, run.ack(completed));
        }
        for s in skipped {
            run.events.emit(&Event::Skipped {
                node: &run.nodes[s].id,
                task: run.nodes[s].meta.task,
                because: id,
            });
        }
        run.emit_cached(&cached);
        for more in extra {
            tokio::spawn(drive(run.clone(), more, alive.clone()));
        }
        // The run ends once this is sent: every event is out by then, and a driver that
        // stops lets go of the run first, so nothing of it outlives `run` returning.
        match next {
            Some(n) => {
                if let Some(tx) = done {
                    let _ = tx.send(());
                }
                job = n;
                // A long chain of tasks that never wait must still let tokio run others.
                tokio::task::consume_budget().await;
            }
            None => {
                drop(run);
                if let Some(tx) = done {
                    let _ = tx.send(());
                }
                drop(alive);
                return;
            }
        }
    }
}

/// Encodes a completed node's output for the store and builds the write that records it,
/// or the failure. An output that cannot be encoded fails the node: it could not be cached.
fn record(
    run: &Run,
    node: &NodeSpec,
    fingerprint: Option<Fingerprint>,
    reason: Reason,
    result: Option<Result<Done, Vec<Failure>>>,
) -> (Option<Result<Done, Vec<Failure>>>, Option<Write>) {
    let (Some(fingerprint), Some(codec)) = (fingerprint, &node.meta.codec) else {
        return (result, None);
    };
    if !node.meta.task_options.cache {
        // Runs every time: its digest lets dependents be cached; nothing is stored.
        let result = result.map(|r| {
            r.map(|mut done| {
                done.digest = (codec.encode)(&done.value)
                    .ok()
                    .map(|bytes| *blake3::hash(&bytes).as_bytes());
                done
            })
        });
        return (result, None);
    }
    let record =
        |state, duration, attempts| node.record(fingerprint, reason, state, duration, attempts);
    let save = |record: Record, output: Option<Vec<u8>>| Write::Save {
        graph: run.graph.clone(),
        node: node.id.to_string(),
        record,
        output,
    };
    match result {
        Some(Ok(mut done)) => match (codec.encode)(&done.value) {
            Ok(bytes) => {
                let digest = *blake3::hash(&bytes).as_bytes();
                done.digest = Some(digest);
                let size = bytes.len() as u64;
                let r = record(
                    RecordState::Done { digest, size },
                    done.duration,
                    done.attempts,
                );
                (Some(Ok(done)), Some(save(r, Some(bytes))))
            }
            Err(e) => {
                let failure = Failure::fatal(format!(
                    "its output could not be serialized for the store: {e}; fix its `Serialize` impl, or mark the task `#[task(cache = false)]`"
                ));
                let r = record(
                    RecordState::Failed {
                        error: failure.message().to_owned(),
                    },
                    done.duration,
                    done.attempts,
                );
                (Some(Err(vec![failure])), Some(save(r, None)))
            }
        },
        Some(Err(failures)) => {
            let error = failures
                .last()
                .map(|f| f.message().to_owned())
                .unwrap_or_default();
            let attempts = u32::try_from(failures.len()).unwrap_or(u32::MAX);
            let r = record(RecordState::Failed { error }, Duration::ZERO, attempts);
            (Some(Err(failures)), Some(save(r, None)))
        }
        None => (None, None),
    }
}

impl NodeSpec {
    /// The record of this node's end, finished now.
    fn record(
        &self,
        fingerprint: Fingerprint,
        reason: Reason,
        state: RecordState,
        duration: Duration,
        attempts: u32,
    ) -> Record {
        Record {
            task: self.meta.task.to_owned(),
            fingerprint,
            state,
            finished_ms: Record::now_ms(),
            duration_us: u64::try_from(duration.as_micros()).unwrap_or(u64::MAX),
            attempts,
            reason,
        }
    }
}

/// Runs one node's attempts until one succeeds or the policy gives up.
async fn attempt(
    run: &Run,
    index: usize,
    prepared: Vec<Prepared>,
    reason: Reason,
) -> Result<Done, Vec<Failure>> {
    let events = &run.events;
    let start = Instant::now();
    let node = &run.nodes[index];
    let policy = &Effective::merge(&node.options, &node.meta.task_options, &run.defaults);
    let mut failures = Vec::new();
    let (id, task) = (&*node.id, node.meta.task);
    loop {
        let number = u32::try_from(failures.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        events.emit(&Event::Started {
            node: id,
            task,
            attempt: number,
            reason,
        });
        let inputs = Inputs::new(
            prepared
                .iter()
                .map(|p| match p {
                    Prepared::Shared(v) => Value::Shared(v.clone()),
                    Prepared::List(values, collect) => Value::Owned(Some(collect(values))),
                })
                .collect(),
            run.resources.clone(),
        );
        let outcome = match std::panic::catch_unwind(AssertUnwindSafe(|| (node.meta.call)(inputs)))
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
                    digest: None,
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
