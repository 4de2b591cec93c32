//! A node: the typed handle the builder hands out, and the erased spec the runner reads,
//! with where each of its inputs comes from.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::Serialize;

use super::meta::TaskMeta;
use crate::policy::NodeOptions;
use crate::task::Shared;

/// A typed handle to a node of a [`Graph`](super::Graph): pass it as another node's input.
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

/// A node whose output the run hands back: read it from the [`Outputs`](super::Outputs).
pub struct Kept<T> {
    pub(crate) node: Node<T>,
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

/// Everything the runner needs about one node, with the task's types erased.
pub(crate) struct NodeSpec {
    pub id: Arc<str>,
    /// What every node of its task shares.
    pub meta: &'static TaskMeta,
    pub options: NodeOptions,
    pub sources: Vec<Source>,
    pub keep: bool,
    /// Whether the node may not run for want of a condition (its own, or that of a node it
    /// reads through a parameter that is not an `Option`): its output is then an `Option`.
    pub maybe: bool,
    /// Whether it is a map node: one of its sources is [`Source::Each`].
    pub map: bool,
}

/// Stored bytes to an output.
pub(crate) type Decode = fn(&[u8]) -> Result<Shared, String>;

/// Where one parameter's value comes from.
pub(crate) enum Source {
    Node(usize),
    Const(ConstInput),
    List(Vec<usize>, fn(&[Shared]) -> Box<dyn Any + Send>),
    /// The node runs only if this node's `bool` output is the given value. After the
    /// parameters: the task never sees it.
    Condition(usize, bool),
    /// A map node's parameter: one item at a time of this node's `Vec` output.
    Each(usize, super::map::ItemFns),
}

pub(crate) struct ConstInput {
    pub value: Shared,
    /// Digest of the value's postcard bytes, or why it could not be serialized.
    pub digest: Result<[u8; 32], String>,
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

impl NodeSpec {
    /// Whether a node with these sources, of a task whose parameters are `optional` or not,
    /// may not run for want of a condition, given which nodes above may not (`maybe`).
    pub(crate) fn may_not_run(
        sources: &[Source],
        optional: &[bool],
        maybe: impl Fn(usize) -> bool,
    ) -> bool {
        sources
            .iter()
            .enumerate()
            .any(|(param, source)| match source {
                Source::Condition(..) => true,
                Source::Node(j) => !optional.get(param).copied().unwrap_or(false) && maybe(*j),
                Source::Each(j, _) => maybe(*j),
                Source::List(list, _) => list.iter().any(|&j| maybe(j)),
                Source::Const(_) => false,
            })
    }

    /// How the node's stored output decodes: a map node's is the `Vec` of its task's outputs.
    /// `None` for a task without a codec.
    pub(crate) fn decoder(&self) -> Option<Decode> {
        let codec = self.meta.codec.as_ref()?;
        Some(if self.map {
            codec.decode_list
        } else {
            codec.decode
        })
    }

    /// A map node's mapped parameter: its position, the node whose `Vec` it maps over, and
    /// how to read its items.
    pub(crate) fn each(&self) -> Option<(usize, usize, super::map::ItemFns)> {
        self.sources
            .iter()
            .enumerate()
            .find_map(|(param, s)| match s {
                Source::Each(j, items) => Some((param, *j, *items)),
                _ => None,
            })
    }

    /// Each upstream node read, with the parameter that reads it, in argument order.
    pub(crate) fn upstream(&self) -> Upstreams<'_> {
        Upstreams {
            sources: &self.sources,
            param: 0,
            within: 0,
        }
    }
}

/// The iterator of [`NodeSpec::upstream`]; allocates nothing.
pub(crate) struct Upstreams<'a> {
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
                Source::Node(j) | Source::Condition(j, _) | Source::Each(j, _) => {
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
