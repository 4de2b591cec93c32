//! Graphs and the typed builder that `dag!` expands to.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasherDefault;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde::Serialize;

use crate::error::GraphError;
use crate::ids::{IdHasher, NodeIds};
use crate::policy::{NodeOptions, TaskOptions};
use crate::task::{BoxFuture, Failure, Inputs, Shared, Task};
use crate::wire::{Args, Wired};

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
pub struct Graph<O = Outputs, P = Outputs> {
    pub(crate) name: String,
    pub(crate) uid: u64,
    pub(crate) nodes: Vec<NodeSpec>,
    pub(crate) ids: NodeIds,
    /// The task of the last node added, to find the next one's quickly.
    last_task: Option<(TypeId, &'static TaskMeta)>,
    /// A problem found while `dag!` built the graph, reported when it runs.
    pub(crate) error: Option<GraphError>,
    pub(crate) finish: Finish<O>,
    pub(crate) partial: Box<dyn FnOnce(&mut Outputs) -> P + Send>,
}

pub(crate) type Finish<O> = Box<dyn FnOnce(&mut Outputs) -> Option<O> + Send>;

/// Everything the runner needs about one node, with the task's types erased.
pub(crate) struct NodeSpec {
    pub id: Arc<str>,
    /// What every node of its task shares.
    pub meta: &'static TaskMeta,
    pub options: NodeOptions,
    pub sources: Vec<Source>,
    pub keep: bool,
}

/// What the runner needs about a task, with its types erased: one per task type and
/// process, shared by all its nodes.
pub(crate) struct TaskMeta {
    pub task: &'static str,
    pub fingerprint: &'static str,
    /// How the output is stored, or `None` for `cache = false`.
    pub codec: Option<ErasedCodec>,
    pub task_options: TaskOptions,
    pub call: fn(Inputs) -> BoxFuture<Result<Shared, Failure>>,
    /// The resources the task takes.
    pub resources: Vec<crate::resource::Need>,
}

impl TaskMeta {
    /// `T`'s, made once per process.
    fn of<T: Task>() -> &'static TaskMeta {
        type Known = HashMap<TypeId, &'static TaskMeta, BuildHasherDefault<IdHasher>>;
        static KNOWN: OnceLock<Mutex<Known>> = OnceLock::new();
        let mut known = KNOWN
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        known.entry(TypeId::of::<T>()).or_insert_with(|| {
            // One per task type: bounded by the program's code.
            Box::leak(Box::new(TaskMeta {
                task: T::NAME,
                fingerprint: T::FINGERPRINT,
                codec: T::codec().map(|_| ErasedCodec {
                    encode: erased_encode::<T>,
                    decode: erased_decode::<T>,
                    output_type: erased_output_type::<T>,
                }),
                task_options: T::options(),
                call: erased_call::<T>,
                resources: T::resources(),
            }))
        })
    }
}

/// A task's [`Codec`](crate::Codec) with its output type erased.
#[derive(Clone, Copy)]
pub(crate) struct ErasedCodec {
    pub encode: fn(&Shared) -> Result<Vec<u8>, String>,
    pub decode: fn(&[u8]) -> Result<Shared, String>,
    pub output_type: fn() -> crate::cache::Digest,
}

fn erased_encode<T: Task>(value: &Shared) -> Result<Vec<u8>, String> {
    let codec = T::codec().ok_or("the task is not cached")?;
    let value = value
        .downcast_ref::<T::Output>()
        .ok_or("typedag: output of another type")?;
    (codec.encode)(value)
}

fn erased_decode<T: Task>(bytes: &[u8]) -> Result<Shared, String> {
    let codec = T::codec().ok_or("the task is not cached")?;
    (codec.decode)(bytes).map(|v| Arc::new(v) as Shared)
}

fn erased_output_type<T: Task>() -> crate::cache::Digest {
    T::codec().map_or([0; 32], |c| (c.output_type)())
}

/// Where one parameter's value comes from.
pub(crate) enum Source {
    Node(usize),
    Const(ConstInput),
    List(Vec<usize>, fn(&[Shared]) -> Box<dyn Any + Send>),
}

pub(crate) struct ConstInput {
    pub value: Shared,
    /// Digest of the value's postcard bytes, or why it could not be serialized.
    pub digest: Result<[u8; 32], String>,
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
            finish: Box::new(|out| Some(std::mem::take(out))),
            partial: Box::new(std::mem::take),
        }
    }

    #[doc(hidden)]
    pub fn with_outputs<O, P>(
        self,
        finish: impl FnOnce(&mut Outputs) -> Option<O> + Send + 'static,
        partial: impl FnOnce(&mut Outputs) -> P + Send + 'static,
    ) -> Graph<O, P> {
        Graph {
            name: self.name,
            uid: self.uid,
            nodes: self.nodes,
            ids: self.ids,
            last_task: self.last_task,
            error: self.error,
            finish: Box::new(finish),
            partial: Box::new(partial),
        }
    }
}

impl<O, P> Graph<O, P> {
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
        self.push::<T>(id.into(), sources)
    }

    #[doc(hidden)]
    pub fn push<T: Task>(
        &mut self,
        id: String,
        sources: Vec<Wired>,
    ) -> Result<Node<T::Output>, GraphError> {
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

    #[doc(hidden)]
    pub fn push_node<T: Task>(&mut self, id: &str, sources: Vec<Wired>) -> Node<T::Output> {
        match self.push::<T>(id.to_owned(), sources) {
            Ok(node) => node,
            Err(e) => {
                // Unreachable from `dag!`, which checks names at compile time; report it at run.
                self.error.get_or_insert(e);
                let id: Arc<str> = id.into();
                self.ids
                    .map_mut()
                    .entry(id.clone())
                    .or_insert(self.nodes.len());
                self.insert::<T>(id, Vec::new())
            }
        }
    }

    fn insert<T: Task>(&mut self, id: Arc<str>, sources: Vec<Source>) -> Node<T::Output> {
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
        self.nodes.push(NodeSpec {
            id,
            meta,
            options: NodeOptions::default(),
            sources,
            keep: false,
        });
        Node::new(index, self.uid)
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

impl<O, P> fmt::Debug for Graph<O, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Graph")
            .field("name", &self.name)
            .field("nodes", &self.ids().collect::<Vec<_>>())
            .finish()
    }
}

fn erased_call<T: Task>(inputs: Inputs) -> BoxFuture<Result<Shared, Failure>> {
    let fut = T::call(inputs);
    Box::pin(async move { fut.await.map(|v| Arc::new(v) as Shared) })
}

/// A typed handle to a node of a [`Graph`]: pass it as another node's input.
pub struct Node<T> {
    pub(crate) index: usize,
    pub(crate) graph: u64,
    _output: PhantomData<fn() -> T>,
}

impl<T> Node<T> {
    pub(crate) fn new(index: usize, graph: u64) -> Self {
        Self {
            index,
            graph,
            _output: PhantomData,
        }
    }
}

impl<T> Clone for Node<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Node<T> {}

impl<T> fmt::Debug for Node<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Node({})", self.index)
    }
}

/// A node whose output the run hands back: read it from the [`Outputs`].
pub struct Kept<T> {
    node: Node<T>,
}

impl<T> Clone for Kept<T> {
    fn clone(&self) -> Self {
        Self { node: self.node }
    }
}

impl<T> fmt::Debug for Kept<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kept({})", self.node.index)
    }
}

/// The outputs a run hands back: those of the nodes marked with [`Graph::keep`].
#[derive(Default)]
pub struct Outputs {
    pub(crate) graph: u64,
    pub(crate) values: Vec<Option<Shared>>,
}

impl Outputs {
    /// The output of a kept node, if it completed: after
    /// [`Runner::run_partial`](crate::Runner::run_partial) some nodes may not have.
    pub fn try_get<T: 'static>(&self, kept: &Kept<T>) -> Option<&T> {
        self.node_value(&kept.node)
    }

    /// The output of a kept node.
    ///
    /// # Panics
    /// If `kept` belongs to another graph, or its output was already taken.
    pub fn get<T: 'static>(&self, kept: &Kept<T>) -> &T {
        self.node_value(&kept.node)
            .expect("typedag: this output belongs to another graph or was taken")
    }

    /// Takes the output of a kept node out, or `None` if it was taken already.
    pub fn take<T: Send + Sync + 'static>(&mut self, kept: &Kept<T>) -> Option<T> {
        self.take_node(&kept.node)
    }

    #[doc(hidden)]
    pub fn take_node<T: Send + Sync + 'static>(&mut self, node: &Node<T>) -> Option<T> {
        if node.graph != self.graph {
            return None;
        }
        let shared = self.values.get_mut(node.index)?.take()?;
        let typed = shared.downcast::<T>().ok()?;
        Arc::try_unwrap(typed).ok()
    }

    fn node_value<T: 'static>(&self, node: &Node<T>) -> Option<&T> {
        if node.graph != self.graph {
            return None;
        }
        self.values.get(node.index)?.as_ref()?.downcast_ref::<T>()
    }
}

impl fmt::Debug for Outputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kept = self.values.iter().filter(|v| v.is_some()).count();
        write!(f, "Outputs({kept} kept)")
    }
}

impl Source {
    pub(crate) fn node(node_graph: u64, index: usize, graph: u64) -> Result<Self, usize> {
        if node_graph == graph {
            Ok(Source::Node(index))
        } else {
            Err(index)
        }
    }

    pub(crate) fn constant<T: Serialize + Send + Sync + 'static>(value: T) -> Self {
        let digest = postcard::to_allocvec(&value)
            .map(|bytes| *blake3::hash(&bytes).as_bytes())
            .map_err(|e| e.to_string());
        Source::Const(ConstInput {
            value: Arc::new(value),
            digest,
        })
    }

    pub(crate) fn list<T: Clone + Send + 'static>(
        nodes: &[Node<T>],
        graph: u64,
    ) -> Result<Self, usize> {
        if let Some(foreign) = nodes.iter().find(|n| n.graph != graph) {
            return Err(foreign.index);
        }
        Ok(Source::List(
            nodes.iter().map(|n| n.index).collect(),
            collect_list::<T>,
        ))
    }
}

pub(crate) fn collect_list<T: Clone + Send + 'static>(values: &[Shared]) -> Box<dyn Any + Send> {
    let list: Vec<T> = values
        .iter()
        .map(|v| {
            v.downcast_ref::<T>()
                .expect("typedag: list type checked at compile time")
                .clone()
        })
        .collect();
    Box::new(list)
}
