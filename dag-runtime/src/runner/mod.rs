//! The runner: starts each node as soon as its own inputs are ready, within the concurrency
//! limit, highest priority first, and records every output as it completes.
//!
//! A run's path through this folder:
//!
//! - [`Runner`] (here): the settings, and `run`/`run_partial`, which hand back the outputs;
//! - [`env`]: the `TYPEDAG_*` variables that change the defaults;
//! - [`store_choice`]: which store a run opens;
//! - [`check`]: what is refused before anything runs;
//! - [`plan`]: what a run works out about each node before it starts;
//! - [`state`]: one run's plan and its mutable state under one lock;
//! - [`schedule`]: the ready heap, task limits, the skip cascade, freeing outputs;
//! - [`condition`]: whether a node runs under its conditions, and why not;
//! - [`driver`]: the tasks that carry a run, from the first ready node to the last;
//! - [`inputs`]: a node's inputs, from memory or loaded from the store;
//! - [`attempt`]: one node's attempts, with retries, timeouts and panics caught;
//! - [`map`]: map nodes, a task per item of a list, their items known by [`item_keys`],
//!   made durable by [`item_log`] and read back from the node's last `Vec` by
//!   [`item_index`]; [`iterate`]: loop nodes, a task run on its own next state until it is
//!   done;
//! - [`signal`]: a signal node's wait for its value, which holds no slot;
//! - [`persist`]: the records a run writes (the only part that names store records);
//! - [`distributed`]: a run shared by several processes through the store, a claimed node's
//!   end in [`distributed_end`];
//! - [`distributed_map`]: map nodes in such a run, their items claimed by any process, and
//!   how they ended, in [`distributed_tally`];
//! - [`explain`]: what a run would do, without running anything.

mod attempt;
mod check;
mod condition;
#[cfg(feature = "postgres")]
mod distributed;
#[cfg(feature = "postgres")]
mod distributed_end;
#[cfg(feature = "postgres")]
mod distributed_map;
#[cfg(feature = "postgres")]
mod distributed_signal;
#[cfg(feature = "postgres")]
mod distributed_tally;
mod driver;
mod env;
mod explain;
mod inputs;
mod item_index;
mod item_keys;
mod item_log;
mod iterate;
mod map;
mod persist;
mod plan;
mod schedule;
mod signal;
mod state;
mod store_choice;

use std::sync::Arc;
use std::time::Duration;

pub use self::explain::{Explanation, ItemsPlan, NodeState};
use self::store_choice::StoreChoice;
use crate::cancel::Cancel;
use crate::error::Error;
use crate::event::{Callback, Event, Totals};
use crate::graph::{FromOutputs, Graph, Outputs, Untyped};
use crate::policy::{Backoff, RunnerDefaults};
use crate::report::{Partial, Report};
use crate::resource::{Resource, Resources};
use crate::signal::Signals;
use crate::store::{Address, MemoryStore, Store};

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
    /// Where [`StoreChoice::Default`] is: `TYPEDAG_STORE`, else `./.typedag`.
    default_store: Address,
    resources: Resources,
    /// The type of a resource given twice; reported when the runner runs.
    duplicate_resource: Option<&'static str>,
    /// The name of the shared run this runner takes part in, if any.
    shared_run: Option<String>,
    /// How long a claim on a node of a shared run holds without renewal.
    lease: Duration,
    /// Values the program sends to signal nodes; shared by the runner's clones.
    signals: Signals,
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
            .field("store", &self.store_location())
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
    /// ([`DEFAULT_STORE`](crate::store::DEFAULT_STORE)), at most [`DEFAULT_CONCURRENCY`] tasks at once, no retries unless
    /// a task asks for them, no timeout, keep going after a failure.
    ///
    /// The environment can change these defaults without touching the code; settings made
    /// in code still win:
    ///
    /// | variable | value | sets |
    /// | --- | --- | --- |
    /// | `TYPEDAG_CONCURRENCY` | a whole number ≥ 1 | [`concurrency`](Runner::concurrency) |
    /// | `TYPEDAG_RETRIES` | a whole number | [`retries`](Runner::retries) |
    /// | `TYPEDAG_TIMEOUT` | a duration: `500ms`, `30s`, `2m`, `1h`, `7d` | [`timeout`](Runner::timeout) |
    /// | `TYPEDAG_FAIL_FAST` | `true` or `false` | [`fail_fast`](Runner::fail_fast) |
    /// | `TYPEDAG_RUN` | a run name | [`distributed`](Runner::distributed) |
    /// | `TYPEDAG_STORE` | a directory, or `postgres://…` | where the embedded store lives, instead of `./.typedag`; or a [`PostgresStore`](crate::store) (feature `postgres`) |
    ///
    /// A value that cannot be read makes [`run`](Runner::run) fail with
    /// [`Error::Env`] before any task starts.
    pub fn new() -> Self {
        let mut runner = Self::with_defaults();
        runner.read_env(|var| std::env::var(var).ok());
        runner
    }

    /// The defaults, before the environment is read.
    fn with_defaults() -> Self {
        Self {
            concurrency: DEFAULT_CONCURRENCY,
            defaults: RunnerDefaults::default(),
            fail_fast: false,
            env_error: None,
            cancel: None,
            ctrl_c: false,
            callbacks: Vec::new(),
            store: StoreChoice::Default,
            default_store: Address::default(),
            shared_run: None,
            lease: DEFAULT_LEASE,
            resources: Resources::default(),
            duplicate_resource: None,
            signals: Signals::default(),
        }
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
    /// [`GraphError::NotShareable`](crate::GraphError::NotShareable) if a node's output has
    /// no serde (outputs pass between processes through the store). Nodes under a condition
    /// (`if`) end as in a local run: the process that claims one decides it, and every
    /// process reports the same. A map node (`each`) is expanded by the process that claims
    /// it; its items are then claimed by any process, under a lease like nodes, each
    /// running once, cached by its bytes as in a local run (a local run and a distributed
    /// one on the same store find each other's items once the map node's `Vec` is stored).
    /// Whoever claims the map node once its last item has ended records its `Vec`, or its
    /// failure naming the failed items, and every process reports the same item counts.
    /// A signal node is claimed like a node by one process, which waits for its value (a
    /// delivery in the store, from any process: a value sent through the
    /// [`signals`](Self::signals) of a process of the run is passed on to the store) under
    /// its lease, without holding room for other claims; each value is taken once, by one
    /// process, and the node completes as any other.
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

    /// The handle that delivers values to the signal nodes of this runner's runs (and its
    /// clones'): `signals.send("approve", value)` goes to the node `approve` of the run that
    /// waits for it, or of the next run that reaches it. See [`Signals`].
    pub fn signals(&self) -> Signals {
        self.signals.clone()
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
    pub async fn run<O: FromOutputs>(&self, graph: Graph<O>) -> Result<O, Error> {
        let ended = self.run_to_end(graph.untyped(), false).await?;
        let (mut outputs, complete) = match ended {
            Ended {
                report: Some(report),
                cancelled,
                ..
            } => {
                let report = Box::new(report);
                return Err(if cancelled {
                    Error::Cancelled(report)
                } else {
                    Error::Failed(report)
                });
            }
            Ended {
                outputs, complete, ..
            } => (outputs, complete),
        };
        if !complete {
            return Err(Error::Internal(
                "a kept output was missing or still shared when the run ended".into(),
            ));
        }
        Ok(O::take(&mut outputs))
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
    pub async fn run_partial<O: FromOutputs>(
        &self,
        graph: Graph<O>,
    ) -> Result<Partial<O::Partial>, Error> {
        let Ended {
            mut outputs,
            report,
            ..
        } = self.run_to_end(graph.untyped(), true).await?;
        Ok(Partial {
            outputs: O::take_partial(&mut outputs),
            report: report.ok_or_else(|| Error::Internal("a run ended without a report".into()))?,
        })
    }

    /// Runs a graph's nodes to the end and takes what the run leaves: the kept outputs, and
    /// the report of every node when `always_report` or when some node did not complete.
    ///
    /// Not generic, and boxed: the run's state machines are compiled once, here, instead of
    /// again in every crate that awaits [`run`](Runner::run) with its own output types.
    fn run_to_end(&self, graph: Untyped, always_report: bool) -> Pending<'_, Ended> {
        Box::pin(async move {
            let (name, uid) = (graph.name.clone(), graph.uid);
            let optional_fields = graph.optional_fields;
            let run = self.execute(graph).await?;
            let mut state = run.lock();
            if let Some(e) = state.store_error.take() {
                return Err(e.into());
            }
            if optional_fields {
                state.wrap_optional_outputs(&run);
            }
            let cancelled = state.cancelled;
            let complete = run
                .nodes
                .iter()
                .zip(&state.outputs)
                .zip(&state.outcomes)
                .all(|((node, value), outcome)| {
                    !node.keep
                        || matches!(outcome, Some(crate::report::Outcome::NotRun { .. }))
                        || value
                            .as_ref()
                            .is_some_and(|v| std::sync::Arc::strong_count(v) == 1)
                });
            let report =
                (always_report || cancelled || state.failed).then(|| state.report(&run, name));
            let outputs = Outputs {
                graph: uid,
                values: std::mem::take(&mut state.outputs),
            };
            Ok(Ended {
                outputs,
                report,
                cancelled,
                complete,
            })
        })
    }
}

/// A runner's work in flight, boxed so that generic callers do not compile its body again.
type Pending<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, Error>> + Send + 'a>>;

/// What a run that reached its end leaves behind.
struct Ended {
    outputs: Outputs,
    /// Every node's outcome, when asked for or when some node did not complete.
    report: Option<Report>,
    /// The run was cancelled, rather than some node failing.
    cancelled: bool,
    /// Every kept output is there and held by no one else, ready to be handed back.
    complete: bool,
}
