//! The table of nodes a `dag!` adds in one call: a constant row per node (its id, its task,
//! where each argument comes from), and the few arguments that need code (constants and
//! lists of nodes) evaluated beside it.
//!
//! A `dag!` of a thousand nodes is then a thousand rows of static data and one loop here,
//! compiled once, instead of a thousand builder calls in the user's function.

use std::marker::PhantomData;
use std::sync::Arc;

use super::Graph;
use super::args::Wired;
use super::meta::TaskMeta;
use super::node::{Source, collect_list};
use crate::error::GraphError;
use crate::policy::NodeOptions;
use crate::task::Task;

/// One node of a `dag!`, as constant data: its id, its task, and where each argument comes
/// from: the index of a node declared above, or [`GIVEN`].
#[doc(hidden)]
pub struct Row(pub &'static str, pub TaskRef, pub &'static [usize]);

/// The slot of an argument that takes the next of the given sources: a constant or a list
/// of nodes.
#[doc(hidden)]
pub const GIVEN: usize = usize::MAX;

/// A node of a `dag!` that runs only under a condition: the node, the node whose `bool`
/// output decides, and the value it must have. Listed in node order.
#[doc(hidden)]
pub struct Conditional(pub usize, pub usize, pub bool);

/// A task, as a row names it.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct TaskRef(fn() -> &'static TaskMeta);

impl TaskRef {
    pub const fn of<T: Task>() -> Self {
        TaskRef(TaskMeta::of::<T>)
    }
}

/// A list of nodes given to a parameter, as indices; its element type is inferred from
/// the wiring check that reads it (see [`type_of_list`](super::wiring::type_of_list)).
#[doc(hidden)]
pub struct ListOf<T> {
    nodes: &'static [usize],
    _item: PhantomData<fn() -> T>,
}

impl<T: Clone + Send + Sync + 'static> ListOf<T> {
    pub fn new(nodes: &'static [usize]) -> Self {
        ListOf {
            nodes,
            _item: PhantomData,
        }
    }

    pub fn source(&self) -> Wired {
        Wired(Ok(Source::List(self.nodes.to_vec(), collect_list::<T>)))
    }
}

impl Graph {
    /// Adds a `dag!`'s nodes, keeping every output: the rows in order, each `Given` slot
    /// taking the next of `given`.
    #[doc(hidden)]
    pub fn add_rows(
        &mut self,
        rows: &'static [Row],
        given: Vec<Wired>,
        conditions: &[Conditional],
    ) {
        let mut conditions = conditions.iter().peekable();
        self.nodes.reserve(rows.len());
        self.optional_fields = true;
        let mut given = given.into_iter();
        let mut last: Option<(TaskRef, &'static TaskMeta)> = None;
        for Row(id, task, slots) in rows {
            // Rows of one task usually come in a row: ask the process-wide table only when
            // the task changes.
            let meta = match last {
                Some((last, meta)) if std::ptr::fn_addr_eq(last.0, task.0) => meta,
                _ => {
                    let meta = (task.0)();
                    last = Some((*task, meta));
                    meta
                }
            };
            let mut sources: Vec<Source> = slots
                .iter()
                .map(|&slot| match slot {
                    GIVEN => match given.next() {
                        Some(Wired(Ok(source))) => source,
                        // `dag!` gives one source per `GIVEN` slot, each resolved.
                        _ => unreachable!("typedag: a dag! table without its given inputs"),
                    },
                    j => Source::Node(j),
                })
                .collect();
            let index = self.nodes.len();
            if let Some(c) = conditions.next_if(|c| c.0 == index) {
                sources.push(Source::Condition(c.1, c.2));
            }
            let id: Arc<str> = (*id).into();
            let entry = self.ids.map_mut().entry(id.clone());
            if let std::collections::hash_map::Entry::Vacant(free) = entry {
                free.insert(index);
            } else {
                // Unreachable from `dag!`, which checks names at compile time; report it at run.
                self.error.get_or_insert(GraphError::DuplicateId {
                    graph: self.name.clone(),
                    id: id.to_string(),
                });
            }
            self.push_spec(id, meta, sources, true);
        }
    }

    /// The settings of the node at `index`, which a `dag!` just added.
    #[doc(hidden)]
    pub fn configure_at(&mut self, index: usize) -> &mut NodeOptions {
        &mut self.nodes[index].options
    }
}
