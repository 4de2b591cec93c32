//! The outputs a run hands back, read through the handles of kept nodes.

use std::fmt;

use super::node::{Kept, Node};
use crate::bounds::Output;
use crate::task::Shared;

/// The outputs a run hands back: those of the nodes marked with [`Graph::keep`](super::Graph::keep).
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
    pub fn take<T: Output>(&mut self, kept: &Kept<T>) -> Option<T> {
        self.take_node(&kept.node)
    }

    /// Not inlined: a `dag!`'s outputs struct calls it once per node, and each inlined copy
    /// would be compiled on its own.
    #[doc(hidden)]
    #[inline(never)]
    pub fn take_node<T: Output>(&mut self, node: &Node<T>) -> Option<T> {
        if node.graph != self.graph {
            return None;
        }
        T::from_shared(self.values.get_mut(node.index)?.take()?)
    }

    /// The output of a kept node that the runner checked is there and held by no one else.
    /// Not inlined, like [`take_node`](Outputs::take_node).
    #[doc(hidden)]
    #[inline(never)]
    pub fn take_kept<T: Output>(&mut self, node: &Node<T>) -> T {
        self.take_node(node)
            .expect("typedag: kept outputs are checked before they are handed back")
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
