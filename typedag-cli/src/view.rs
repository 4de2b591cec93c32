//! One graph as the store knows it: its saved shape joined with its records, so that every
//! command sees the same nodes in the same order.

use std::time::Duration;

use dag_runtime::store::{Loaded, Manifest, Record, RecordState, Snapshot};

/// A graph's nodes: those of its saved shape in declaration order, then the records of
/// nodes that are not in the shape (left over from an older version of the program), by id.
pub struct GraphView {
    pub name: String,
    /// Whether the store has the graph's shape; without it, nodes come from records only
    /// and their inputs are unknown.
    pub has_shape: bool,
    pub nodes: Vec<NodeView>,
}

/// One node, or one record of a node the graph no longer has.
pub struct NodeView {
    pub id: String,
    /// From the shape if the node is in it, else from its record.
    pub task: Option<String>,
    /// Whether the graph's shape has this node.
    pub in_graph: bool,
    /// Whether the graph's shape says it is a signal, whose value comes from outside.
    pub signal: bool,
    /// For the record of an item of a map node (`pages#…`) or of its index of items
    /// (`pages#items`): that node, which a run reads it for.
    pub item_of: Option<usize>,
    pub held: Held,
    /// The nodes it reads, as indices into [`GraphView::nodes`], each once.
    pub inputs: Vec<usize>,
    /// The nodes that read it, likewise.
    pub dependents: Vec<usize>,
}

/// What the store holds for a node.
pub enum Held {
    Missing,
    Damaged(String),
    Record(Record),
}

/// Totals over a graph's records, for one-line summaries.
#[derive(Default)]
pub struct Counts {
    pub done: usize,
    pub failed: usize,
    pub damaged: usize,
    /// Records of nodes the graph's saved shape no longer has.
    pub unused: usize,
    /// Bytes of stored outputs.
    pub size: u64,
    /// How long ago the newest record finished.
    pub newest: Option<Duration>,
}

impl GraphView {
    pub fn new(name: String, manifest: Option<Manifest>, snapshot: Snapshot) -> Self {
        let mut records = snapshot.records;
        let has_shape = manifest.is_some();
        let shape = manifest.map(|m| m.nodes).unwrap_or_default();
        let mut nodes: Vec<NodeView> = shape
            .iter()
            .map(|n| NodeView {
                id: n.id.clone(),
                task: Some(n.task.clone()),
                in_graph: true,
                signal: n.is_signal(),
                item_of: None,
                held: records.remove(&n.id).map_or(Held::Missing, Held::from),
                inputs: Vec::new(),
                dependents: Vec::new(),
            })
            .collect();
        for (i, n) in shape.iter().enumerate() {
            for input in &n.inputs {
                // An index outside the shape can only come from a damaged shape: skip it.
                let Some(j) = usize::try_from(*input).ok().filter(|&j| j < nodes.len()) else {
                    continue;
                };
                if !nodes[i].inputs.contains(&j) {
                    nodes[i].inputs.push(j);
                    nodes[j].dependents.push(i);
                }
            }
        }
        let mut rest: Vec<(String, Loaded)> = records.into_iter().collect();
        rest.sort_by(|a, b| a.0.cmp(&b.0));
        let shape_len = nodes.len();
        let item_of = |id: &str| {
            let (node, _) = id.rsplit_once('#')?;
            shape.iter().take(shape_len).position(|n| n.id == node)
        };
        nodes.extend(rest.into_iter().map(|(id, loaded)| {
            let held = Held::from(loaded);
            NodeView {
                item_of: item_of(&id),
                id,
                task: held.record().map(|r| r.task.clone()),
                in_graph: false,
                signal: false,
                held,
                inputs: Vec::new(),
                dependents: Vec::new(),
            }
        }));
        Self {
            name,
            has_shape,
            nodes,
        }
    }

    /// The index of node `id`.
    pub fn find(&self, id: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == id)
    }

    /// Every node id, in order: for "did you mean" hints.
    pub fn ids(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.id.clone()).collect()
    }

    /// Whether a run of the graph may read `node`'s record: it is in the saved shape, or
    /// there is no shape to say otherwise.
    pub fn is_used(&self, node: &NodeView) -> bool {
        node.in_graph || node.item_of.is_some() || !self.has_shape
    }

    /// How many nodes the saved shape has.
    pub fn shape_len(&self) -> usize {
        self.nodes.iter().filter(|n| n.in_graph).count()
    }

    /// How many records the store holds for the graph.
    pub fn records(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| !matches!(n.held, Held::Missing))
            .count()
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for n in &self.nodes {
            if !self.is_used(n) {
                c.unused += 1;
            }
            match &n.held {
                Held::Missing => {}
                Held::Damaged(_) => c.damaged += 1,
                Held::Record(r) => {
                    let age = r.age();
                    c.newest = Some(c.newest.map_or(age, |n| n.min(age)));
                    // A map node's item records count in the size, not as nodes.
                    let node = usize::from(n.item_of.is_none());
                    match &r.state {
                        RecordState::Done { size, .. } => {
                            c.done += node;
                            c.size += size;
                        }
                        RecordState::Failed { .. } => c.failed += node,
                    }
                }
            }
        }
        c
    }
}

impl NodeView {
    /// For a record kept beside a node (`item_of`): whether it is one of a map node's item
    /// records (a batch of finished items, a failed item), as opposed to the map's index
    /// (`pages#items`) or a loop's last stored iteration (`pages#loop`).
    pub fn is_item_record(&self) -> bool {
        self.item_of.is_some() && !self.id.ends_with("#items") && !self.id.ends_with("#loop")
    }

    /// For a record kept beside a node: whether it holds a loop's last stored iteration.
    pub fn is_loop_record(&self) -> bool {
        self.item_of.is_some() && self.id.ends_with("#loop")
    }
}

impl From<Loaded> for Held {
    fn from(loaded: Loaded) -> Self {
        match loaded {
            Loaded::Record(r) => Held::Record(r),
            Loaded::Damaged(why) => Held::Damaged(why),
        }
    }
}

impl Held {
    pub fn record(&self) -> Option<&Record> {
        match self {
            Held::Record(r) => Some(r),
            _ => None,
        }
    }

    /// `done`, `failed`, `missing` or `damaged`.
    pub fn state(&self) -> &'static str {
        match self {
            Held::Missing => "missing",
            Held::Damaged(_) => "damaged",
            Held::Record(r) => match r.state {
                RecordState::Done { .. } => "done",
                RecordState::Failed { .. } => "failed",
            },
        }
    }

    /// The stored output's size, if there is one.
    pub fn size(&self) -> Option<u64> {
        match self.record()?.state {
            RecordState::Done { size, .. } => Some(size),
            RecordState::Failed { .. } => None,
        }
    }

    /// What went wrong: the last error of a failed node, or why the record is unreadable.
    pub fn problem(&self) -> Option<&str> {
        match self {
            Held::Damaged(why) => Some(why),
            Held::Record(Record {
                state: RecordState::Failed { error },
                ..
            }) => Some(error),
            _ => None,
        }
    }
}
