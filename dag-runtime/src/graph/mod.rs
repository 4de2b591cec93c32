//! Graphs and the typed builder that `dag!` expands to.
//!
//! - [`Graph`] (here): the nodes in declaration order, and the builder's methods.
//! - [`node`]: the typed handle, the erased spec the runner reads, and its inputs' sources.
//! - [`map`]: map nodes (`each`): reading a list's items with their type erased.
//! - [`meta`]: what every node of one task shares, with the task's types erased.
//! - [`args`]: the builder's argument types and their compile-time checks.
//! - [`wiring`]: what `dag!` expansions call to wire one node.
//! - [`table`]: the table of nodes a `dag!` adds in one call.
//! - [`outputs`]: what a run hands back.

pub(crate) mod args;
pub(crate) mod map;
pub(crate) mod meta;
pub(crate) mod node;
pub(crate) mod outputs;
pub(crate) mod table;
pub(crate) mod wiring;

use std::any::TypeId;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use self::args::{Args, Wired};
pub use self::map::{Each, each};
pub(crate) use self::meta::TaskMeta;
pub use self::node::{Kept, Node};
pub(crate) use self::node::{NodeSpec, Source};
pub use self::outputs::{FromOutputs, Outputs};
use self::wiring::Shape;
use crate::error::GraphError;
use crate::ids::NodeIds;
use crate::policy::NodeOptions;
use crate::task::Task;

/// A graph of task nodes, ready for [`Runner::run`](crate::Runner::run).
///
/// `dag!` builds one whose outputs come back as a struct with a field per node. For graphs
/// whose shape is known only at run time, build one by hand: every [`add`](Graph::add)
/// returns a typed [`Node`] handle that later nodes take as input, so a node can only use
/// nodes added before it and the graph is acyclic by construction.
///
/// ```
/// use typedag::prelude::*;
///
/// #[task]
/// async fn square(x: u64) -> u64 { x * x }
///
/// #[task]
/// async fn sum(xs: Vec<u64>) -> u64 { xs.iter().sum() }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut graph = Graph::new("squares");
/// let mut squares = Vec::new();
/// for i in 0..10u64 {
///     squares.push(graph.add::<square>(format!("square-{i}"), (i,))?);
/// }
/// let total = graph.add::<sum>("sum", (squares,))?;
/// let total = graph.keep(total);
///
/// let out = Runner::in_memory().run(graph).await?;
/// assert_eq!(*out.get(&total), 285);
/// # Ok(())
/// # }
/// ```
pub struct Graph<O = Outputs> {
    pub(crate) name: String,
    pub(crate) uid: u64,
    pub(crate) nodes: Vec<NodeSpec>,
    pub(crate) ids: NodeIds,
    /// The task of the last node added, to find the next one's quickly.
    last_task: Option<(TypeId, &'static TaskMeta)>,
    /// A problem found while `dag!` built the graph, reported when it runs.
    pub(crate) error: Option<GraphError>,
    /// Built by `dag!`: the output of a node that may not run is handed back as an `Option`.
    pub(crate) optional_fields: bool,
    /// What a run hands back: the [`Outputs`], or the struct a `dag!` declares.
    outputs: PhantomData<fn() -> O>,
}

/// A graph as a run takes it: its nodes, without the typed hand-back of its outputs.
pub(crate) struct Untyped {
    pub name: String,
    pub uid: u64,
    pub nodes: Vec<NodeSpec>,
    pub ids: NodeIds,
    pub error: Option<GraphError>,
    pub optional_fields: bool,
}

impl<O> Graph<O> {
    /// The nodes, as a run takes them.
    pub(crate) fn untyped(self) -> Untyped {
        Untyped {
            name: self.name,
            uid: self.uid,
            nodes: self.nodes,
            ids: self.ids,
            error: self.error,
            optional_fields: self.optional_fields,
        }
    }
}

static NEXT_GRAPH: AtomicU64 = AtomicU64::new(1);

impl Graph<Outputs> {
    /// An empty graph. `name` scopes its nodes' cache keys: keep it stable from run to run.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            uid: NEXT_GRAPH.fetch_add(1, Ordering::Relaxed),
            nodes: Vec::new(),
            ids: NodeIds::default(),
            last_task: None,
            error: None,
            optional_fields: false,
            outputs: PhantomData,
        }
    }

    /// The graph, handing back the outputs struct of the [`Shape`] that `shape` returns.
    /// `shape` is never called: it holds the wiring checks of a `dag!`, type-checked and
    /// compiled to nothing.
    #[doc(hidden)]
    pub fn typed<S: Shape>(self, shape: impl FnOnce() -> S) -> Graph<S::Outputs> {
        let _ = shape;
        self.typed_as()
    }

    /// The graph, handing back outputs of type `O`.
    #[doc(hidden)]
    pub fn typed_as<O>(self) -> Graph<O> {
        Graph {
            name: self.name,
            uid: self.uid,
            nodes: self.nodes,
            ids: self.ids,
            last_task: self.last_task,
            error: self.error,
            optional_fields: self.optional_fields,
            outputs: PhantomData,
        }
    }
}

impl<O> Graph<O> {
    /// Adds a node with id `id` that runs task `T` on `inputs`, one per parameter, as a
    /// tuple: a [`Node`] (its output flows in), a list of nodes (for a `Vec<_>`
    /// parameter), or a plain value (a constant input).
    ///
    /// Fails if a node with this id already exists.
    pub fn add<T: Task>(
        &mut self,
        id: impl Into<String>,
        inputs: impl Args<T::Params>,
    ) -> Result<Node<T::Output>, GraphError> {
        let sources = inputs.sources(self.uid);
        self.push::<T>(id.into(), sources, false)
            .map(|index| Node::new(index, self.uid))
    }

    /// Adds a map node: task `T` runs once per item of the list given with [`each`] (exactly
    /// one input is), the other inputs reaching every item unchanged. Its output is the
    /// `Vec` of the results, in item order.
    ///
    /// Each item is a child of the node with its own attempts, retries, timeout and events,
    /// cached by the item's bytes, not its position: a rerun after items were inserted,
    /// removed or reordered runs only the ones the last list did not have. A failed item fails the
    /// node once the others have finished and are stored; the next run runs only the items
    /// that failed.
    ///
    /// ```
    /// use typedag::prelude::*;
    ///
    /// #[task]
    /// async fn list() -> Vec<u64> { vec![1, 2, 3] }
    ///
    /// #[task]
    /// async fn square(x: &u64) -> u64 { x * x }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), typedag::Error> {
    /// let mut graph = Graph::new("squares");
    /// let xs = graph.add::<list>("xs", ())?;
    /// let squares = graph.map::<square>("squares", (each(xs),))?;
    /// let squares = graph.keep(squares);
    /// let out = Runner::in_memory().run(graph).await?;
    /// assert_eq!(out.get(&squares), &[1, 4, 9]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn map<T: Task>(
        &mut self,
        id: impl Into<String>,
        inputs: impl Args<T::Params>,
    ) -> Result<Node<Vec<T::Output>>, GraphError> {
        let sources = inputs.sources(self.uid);
        self.push::<T>(id.into(), sources, true)
            .map(|index| Node::new(index, self.uid))
    }

    /// Adds a node like [`add`](Graph::add) that runs only if `condition`'s output is
    /// `holds`: `true` for `dag!`'s `if c`, `false` for `if !c`. When it does not hold, the
    /// node is reported as not run, which is not a failure, and it has no output: read it
    /// with [`Outputs::try_get`]. A node that takes its output runs only if it ran, unless
    /// the parameter is an `Option<&T>` or `Option<T>`, which then receives `None`.
    pub fn add_if<T: Task>(
        &mut self,
        id: impl Into<String>,
        inputs: impl Args<T::Params>,
        condition: &Node<bool>,
        holds: bool,
    ) -> Result<Node<T::Output>, GraphError> {
        let mut sources = inputs.sources(self.uid);
        let decides = Source::node(condition.graph, condition.index, self.uid)
            .map(|_| Source::Condition(condition.index, holds));
        sources.push(Wired(decides));
        self.push::<T>(id.into(), sources, false)
            .map(|index| Node::new(index, self.uid))
    }

    /// Adds a signal node: its value, a `T`, comes from outside the graph, delivered under
    /// the node's id by the program ([`Runner::signals`](crate::Runner::signals)) or into
    /// the store while no program runs (`typedag signal GRAPH ID VALUE`, as JSON). The node
    /// waits for it, for at most the node's timeout (`graph.configure(&node).timeout(…)`;
    /// by default as long as the run lasts), then stores it like any output: later runs do
    /// not wait again, and a new value delivered later runs again what depends on it. A
    /// value of the wrong type or shape, or no value in time, fails the node.
    ///
    /// ```
    /// use std::time::Duration;
    /// use typedag::prelude::*;
    ///
    /// #[task]
    /// async fn double(x: &u64) -> u64 { x * 2 }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), typedag::Error> {
    /// let mut graph = Graph::new("doubling");
    /// let x = graph.signal::<u64>("x")?;
    /// graph.configure(&x).timeout(Duration::from_secs(60));
    /// let doubled = graph.add::<double>("doubled", (x,))?;
    /// let doubled = graph.keep(doubled);
    /// let runner = Runner::in_memory();
    /// runner.signals().send("x", 21u64);
    /// assert_eq!(*runner.run(graph).await?.get(&doubled), 42);
    /// # Ok(())
    /// # }
    /// ```
    pub fn signal<T: crate::signal::SignalValue>(
        &mut self,
        id: impl Into<String>,
    ) -> Result<Node<T>, GraphError> {
        self.push::<crate::signal::Signal<T>>(id.into(), Vec::new(), false)
            .map(|index| Node::new(index, self.uid))
    }

    /// Adds a node of task `T`, a map node when `map`: its index.
    fn push<T: Task>(
        &mut self,
        id: String,
        sources: Vec<Wired>,
        map: bool,
    ) -> Result<usize, GraphError> {
        let mapped = sources
            .iter()
            .filter(|w| matches!(w.0, Ok(Source::Each(..))))
            .count();
        if mapped != usize::from(map) {
            return Err(GraphError::Each {
                graph: self.name.clone(),
                node: id,
                found: mapped,
                map,
            });
        }
        let id: Arc<str> = id.into();
        let index = self.nodes.len();
        match self.ids.map_mut().entry(id.clone()) {
            std::collections::hash_map::Entry::Occupied(_) => {
                return Err(GraphError::DuplicateId {
                    graph: self.name.clone(),
                    id: id.to_string(),
                });
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(index);
            }
        }
        let mut resolved = Vec::with_capacity(sources.len());
        for (param, source) in sources.into_iter().enumerate() {
            match source.0 {
                Ok(s) => resolved.push(s),
                Err(_) => {
                    self.ids.map_mut().remove(&id);
                    return Err(GraphError::ForeignNode {
                        graph: self.name.clone(),
                        node: id.to_string(),
                        param,
                    });
                }
            }
        }
        Ok(self.insert::<T>(id, resolved))
    }

    fn insert<T: Task>(&mut self, id: Arc<str>, sources: Vec<Source>) -> usize {
        let index = self.nodes.len();
        // Nodes of one task usually come in a row: ask the process-wide table only when the
        // task changes.
        let meta = match self.last_task {
            Some((t, meta)) if t == TypeId::of::<T>() => meta,
            _ => {
                let meta = TaskMeta::of::<T>();
                self.last_task = Some((TypeId::of::<T>(), meta));
                meta
            }
        };
        self.push_spec(id, meta, sources, false);
        index
    }

    /// Appends a node, working out from its sources and the nodes above whether it may not
    /// run and whether it is a map node.
    pub(crate) fn push_spec(
        &mut self,
        id: Arc<str>,
        meta: &'static TaskMeta,
        sources: Vec<Source>,
        keep: bool,
    ) {
        let maybe = NodeSpec::may_not_run(&sources, meta.optional, |j| self.nodes[j].maybe);
        let map = sources.iter().any(|s| matches!(s, Source::Each(..)));
        self.nodes.push(NodeSpec {
            id,
            meta,
            options: NodeOptions::default(),
            sources,
            keep,
            maybe,
            map,
        });
    }

    /// Per-node settings that override the task's: priority, retries, backoff, timeout.
    ///
    /// # Panics
    /// If `node` belongs to another graph.
    pub fn configure<T>(&mut self, node: &Node<T>) -> &mut NodeOptions {
        let i = self.own(node.index, node.graph);
        &mut self.nodes[i].options
    }

    /// Keeps this node's output after the run, to read from the [`Outputs`]. Outputs that
    /// are not kept are freed as soon as every node that reads them has finished.
    ///
    /// # Panics
    /// If `node` belongs to another graph.
    pub fn keep<T>(&mut self, node: Node<T>) -> Kept<T> {
        let i = self.own(node.index, node.graph);
        self.nodes[i].keep = true;
        Kept { node }
    }

    /// The graph's name, which scopes its cache keys.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many nodes the graph has.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node ids in declaration order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.nodes.iter().map(|n| &*n.id)
    }

    fn own(&self, index: usize, graph: u64) -> usize {
        assert!(
            graph == self.uid,
            "typedag: a node handle of another graph was used with graph `{}`",
            self.name
        );
        index
    }
}

impl<O> fmt::Debug for Graph<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Graph")
            .field("name", &self.name)
            .field("nodes", &self.ids().collect::<Vec<_>>())
            .finish()
    }
}
