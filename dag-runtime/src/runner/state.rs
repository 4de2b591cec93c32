//! One run: its plan, fixed when it starts, and its mutable state under one short lock.

use std::collections::{BinaryHeap, HashMap};
use std::hash::BuildHasherDefault;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

use super::Runner;
use super::plan::{Dependents, NodePlan, plan_nodes};
use super::schedule::{Limited, Ready};
use crate::cache::{Digest, Fingerprint, Reason, Stamp};
use crate::cancel::Cancel;
use crate::event::{Event, Events};
use crate::graph::NodeSpec;
use crate::ids::IdHasher;
use crate::policy::RunnerDefaults;
use crate::report::{NodeReport, Outcome, Report};
use crate::resource::Resources;
use crate::store::{Store, StoreError};
use crate::task::Shared;

/// One run's immutable plan and its mutable state.
pub(super) struct Run {
    pub(super) nodes: Vec<NodeSpec>,
    /// What was worked out about each node before the run started, by node.
    pub(super) plan: Vec<NodePlan>,
    pub(super) dependents: Dependents,
    /// Settings for nodes that set neither themselves nor in their task.
    pub(super) defaults: RunnerDefaults,
    pub(super) graph: String,
    /// At most this many nodes run at once.
    pub(super) limit: usize,
    pub(super) fail_fast: bool,
    pub(super) cancel: Cancel,
    /// Whether anything can cancel this run; if not, attempts are not raced against it.
    pub(super) cancellable: bool,
    pub(super) events: Events,
    pub(super) store: Option<Arc<dyn Store>>,
    /// What `Res<T>` parameters receive; `None` when the runner has none.
    pub(super) resources: Option<Arc<Resources>>,
    /// What the store held for each node when the run started, by position (empty without
    /// a store).
    pub(super) stamps: Vec<Option<Stamp>>,
    /// The digest of the graph's shape, to save it when the store's copy differs.
    pub(super) shape: Option<Digest>,
    /// Whether some node may not run (a condition): only then can an input be missing for
    /// that reason.
    pub(super) conditional: bool,
    /// The values the program sends to signal nodes.
    pub(super) signals: crate::signal::Signals,
    /// Cancelled once the run has ended (with its [`Completion`]): signal nodes still
    /// waiting give up.
    pub(super) over: Cancel,
    pub(super) state: Mutex<State>,
}

/// What changes as a run goes, all under [`Run::state`]'s one lock; by node where a field is
/// a list.
pub(super) struct State {
    /// Inputs of each node not yet completed.
    pub(super) waiting: Vec<u32>,
    /// Nodes that still have to read each output (one per edge).
    pub(super) readers: Vec<u32>,
    pub(super) outputs: Vec<Option<Shared>>,
    /// Outputs that are in the store and not loaded (cached nodes).
    pub(super) stored: Vec<bool>,
    /// Each finished node's output digest; `None` if it has none (caching off).
    pub(super) digests: Vec<Option<Digest>>,
    /// For nodes that run: why, and the fingerprint to record.
    /// (Empty without a store: every node runs, for no other reason.)
    pub(super) to_run: HashMap<usize, (Reason, Option<Fingerprint>), BuildHasherDefault<IdHasher>>,
    pub(super) outcomes: Vec<Option<Outcome>>,
    /// Nodes whose inputs are all in, best first.
    pub(super) ready: BinaryHeap<Ready>,
    /// One per task that has a `limit`.
    pub(super) limited: Vec<Limited>,
    /// Drivers carrying a node now.
    pub(super) running: usize,
    /// Nodes with no outcome yet.
    pub(super) unfinished: usize,
    /// Store writes not yet acknowledged.
    pub(super) pending: usize,
    /// Writes that must follow a node's record, counted in `pending`, by node: a map node's
    /// cleanup of its items, sent once its `Vec` is.
    pub(super) after: Vec<(usize, crate::store::Write)>,
    /// The map nodes running their items, which take slots that free up for more workers.
    pub(super) growing: Vec<(usize, std::sync::Weak<super::map::Work>)>,
    /// Reused for hashing each node's upstream digests.
    pub(super) scratch: Vec<u8>,
    /// Nodes settled as not run (with why) since the events were last sent.
    pub(super) not_run: Vec<(usize, String)>,
    /// What became of each map node's items, once it has them.
    pub(super) items: HashMap<usize, crate::report::Items, BuildHasherDefault<IdHasher>>,
    /// How far each loop node that ran got.
    pub(super) iterations: HashMap<usize, crate::report::Iterations, BuildHasherDefault<IdHasher>>,
    /// Values delivered into the store for signal nodes and not yet taken, by node.
    pub(super) deliveries: HashMap<usize, crate::store::Delivery, BuildHasherDefault<IdHasher>>,
    pub(super) store_error: Option<StoreError>,
    pub(super) failed: bool,
    pub(super) cancelled: bool,
    pub(super) stopping: bool,
    /// Sent once the run has ended; see [`State::ended`].
    pub(super) completion: Completion,
}

impl Run {
    /// A run of `specs` with `runner`'s settings, and the receiver of its completion.
    pub(super) fn new(
        specs: Vec<NodeSpec>,
        runner: &Runner,
        graph: &str,
        store: Option<Arc<dyn Store>>,
    ) -> (Self, oneshot::Receiver<()>) {
        let n = specs.len();
        let mut waiting = vec![0u32; n];
        let mut readers = vec![0u32; n];
        for (i, spec) in specs.iter().enumerate() {
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
        let (plan, limited) = plan_nodes(&specs, store.is_some());
        let specs_conditional = specs.iter().any(|s| s.maybe);
        let over = Cancel::new();
        let (completion, ended) = Completion::new(over.clone());
        let state = State {
            waiting,
            readers,
            outputs: vec![None; n],
            stored: vec![false; n],
            digests: vec![None; n],
            to_run: HashMap::default(),
            outcomes: vec![None; n],
            ready: BinaryHeap::new(),
            limited,
            running: 0,
            unfinished: n,
            pending: 0,
            after: Vec::new(),
            growing: Vec::new(),
            scratch: Vec::with_capacity(256),
            not_run: Vec::new(),
            items: HashMap::default(),
            iterations: HashMap::default(),
            deliveries: HashMap::default(),
            store_error: None,
            failed: false,
            cancelled: false,
            stopping: false,
            completion,
        };
        let run = Self {
            nodes: specs,
            plan,
            dependents,
            defaults: runner.defaults.clone(),
            graph: graph.to_owned(),
            limit: runner.concurrency,
            fail_fast: runner.fail_fast,
            cancel: runner.cancel.clone().unwrap_or_default(),
            cancellable: runner.cancel.is_some() || runner.ctrl_c,
            events: Events::new(runner.callbacks.clone(), n),
            store,
            resources: (!runner.resources.is_empty()).then(|| Arc::new(runner.resources.clone())),
            stamps: Vec::new(),
            shape,
            conditional: specs_conditional,
            signals: runner.signals.clone(),
            over,
            state: Mutex::new(state),
        };
        (run, ended)
    }

    /// What the store held for node `i` when the run started.
    pub(super) fn stamp(&self, i: usize) -> Option<&Stamp> {
        self.stamps.get(i).and_then(Option::as_ref)
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; if something did, the state is still whole.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends the events of nodes settled as not run.
    pub(super) fn emit_not_run(&self, not_run: &[(usize, String)]) {
        for (i, condition) in not_run {
            self.events.emit(&Event::NotRun {
                node: &self.nodes[*i].id,
                task: self.nodes[*i].meta.task,
                condition,
            });
        }
    }

    pub(super) fn emit_cached(&self, cached: &[usize]) {
        if self.events.on() {
            for &i in cached {
                self.events.emit(&Event::Cached {
                    node: &self.nodes[i].id,
                    task: self.nodes[i].meta.task,
                });
            }
        }
    }
}

impl State {
    /// For a `dag!` graph: the output of each kept node that may not run, as the `Option`
    /// its field is: `Some` of what it produced, or `None` if it did not run.
    pub(super) fn wrap_optional_outputs(&mut self, run: &Run) {
        for (i, node) in run.nodes.iter().enumerate() {
            if !(node.keep && node.maybe) {
                continue;
            }
            let value = self.outputs[i].take();
            let (some, none) = match node.map {
                true => (node.meta.some_list, node.meta.none_list),
                false => (node.meta.some, node.meta.none),
            };
            self.outputs[i] = match (&self.outcomes[i], value) {
                (Some(Outcome::NotRun { .. }), _) => Some(none()),
                (_, Some(v)) => some(v),
                (_, None) => None,
            };
        }
    }

    pub(super) fn report(&mut self, run: &Run, graph: String) -> Report {
        let nodes = run
            .nodes
            .iter()
            .zip(self.outcomes.iter_mut())
            .enumerate()
            .map(|(i, (node, outcome))| NodeReport {
                id: node.id.to_string(),
                task: node.meta.task,
                outcome: outcome.take().unwrap_or(Outcome::Cancelled),
                items: if self.items.is_empty() {
                    None
                } else {
                    self.items.get(&i).copied()
                },
                iterations: self.iterations.get(&i).copied(),
            })
            .collect();
        Report { graph, nodes }
    }
}

/// The signal that a run has ended, sent once: taken from the state under the lock, sent
/// after the lock (and the sender's hold on the run) is let go, so that whoever waits for
/// the run finds nothing of it still held. Empty once taken, or when the run goes on.
/// Sending it also cancels [`Run::over`], which wakes the signal nodes still waiting (one
/// may be the driver that whoever waits for the run is awaiting).
pub(super) struct Completion(Option<(oneshot::Sender<()>, Cancel)>);

impl Completion {
    fn new(over: Cancel) -> (Self, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        (Self(Some((tx, over))), rx)
    }

    /// The signal, leaving this one empty.
    pub(super) fn take(&mut self) -> Self {
        Self(self.0.take())
    }

    /// Nothing to send: the run goes on.
    pub(super) fn none() -> Self {
        Self(None)
    }

    /// Wakes whoever waits for the run, if this holds the signal. A waiter that has gone is
    /// no one to wake.
    #[inline]
    pub(super) fn send(self) {
        if let Some((tx, over)) = self.0 {
            Self::wake(tx, over);
        }
    }

    /// The run has ended: signal nodes still waiting give up, and whoever waits for the
    /// run wakes.
    #[inline(never)]
    fn wake(tx: oneshot::Sender<()>, over: Cancel) {
        over.cancel();
        let _ = tx.send(());
    }
}
