//! What can go wrong, in words that say what to do.

use crate::report::Report;

/// Why a run did not hand back its outputs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Some nodes failed; the report says which, why, and what was skipped because of them.
    #[error("{0}")]
    Failed(Box<Report>),

    /// The run was cancelled; the report marks what finished and what did not.
    #[error("run cancelled: {0}")]
    Cancelled(Box<Report>),

    /// The graph cannot run as built.
    #[error(transparent)]
    Graph(#[from] GraphError),

    /// `Runner::run` was awaited outside a tokio runtime.
    #[error(
        "no tokio runtime: `Runner::run` spawns its tasks on tokio; await it inside a runtime, for example from a `#[tokio::main]` function"
    )]
    NoRuntime,

    /// A `TYPEDAG_*` environment variable has a value that cannot be read.
    #[error(transparent)]
    Env(EnvError),

    /// The runner lacks a resource a task takes, or was given two of one type.
    #[error(transparent)]
    Resource(#[from] ResourceError),

    /// The store could not be opened, read or written.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),

    /// [`Runner::distributed`](crate::Runner::distributed) with a store that processes
    /// cannot share.
    #[error(
        "a distributed run needs a store that its processes share, and {store} is not one: use a `PostgresStore` (feature `postgres`), with `Runner::store` or TYPEDAG_STORE=postgres://…"
    )]
    NotShared {
        /// The store the runner has.
        store: String,
    },

    /// A bug in typedag: the message says where.
    #[error("internal error in typedag: {0}; please report it")]
    Internal(String),
}

impl Error {
    /// The run's report, when the run got as far as running nodes.
    pub fn report(&self) -> Option<&Report> {
        match self {
            Error::Failed(r) | Error::Cancelled(r) => Some(r),
            _ => None,
        }
    }
}

/// A graph that cannot be built or run as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// Two nodes with one id.
    #[error(
        "graph `{graph}` already has a node with id `{id}`: node ids must be unique within a graph; give this node another id"
    )]
    DuplicateId {
        /// The graph's name.
        graph: String,
        /// The repeated id.
        id: String,
    },

    /// A node handle of one graph given as input to a node of another.
    #[error(
        "input {param} of node `{node}` is a node of another graph: a node can only take inputs from nodes of the graph `{graph}` it is added to"
    )]
    ForeignNode {
        /// The graph's name.
        graph: String,
        /// The node being added.
        node: String,
        /// The input's position, from 0.
        param: usize,
    },

    /// In a distributed run, a node whose output cannot pass between processes.
    #[error(
        "node `{node}` of graph `{graph}` (task `{task}`) returns a type without serde: in a distributed run every output passes between processes through the store; derive `Serialize` and `Deserialize` for it"
    )]
    NotShareable {
        /// The graph's name.
        graph: String,
        /// The node.
        node: String,
        /// Its task.
        task: &'static str,
    },

    /// A builder node with the wrong number of [`each`](crate::each) inputs: `Graph::map`
    /// takes exactly one, `Graph::add` and `Graph::add_if` none.
    #[error(
        "node `{node}` of graph `{graph}` has {found} `each` inputs: {}",
        if *map { "`Graph::map` takes exactly one, the list whose items the task runs on" } else { "a node with an `each` input is added with `Graph::map`, which runs the task once per item" }
    )]
    Each {
        /// The graph's name.
        graph: String,
        /// The node being added.
        node: String,
        /// How many `each` inputs it has.
        found: usize,
        /// Whether it was added with `Graph::map`.
        map: bool,
    },

    /// A constant input whose `Serialize` impl failed.
    #[error(
        "constant input {param} of node `{node}` in graph `{graph}` could not be serialized for its fingerprint: {message}"
    )]
    Constant {
        /// The graph's name.
        graph: String,
        /// The node.
        node: String,
        /// The input's position, from 0.
        param: usize,
        /// What serde said.
        message: String,
    },

    /// A node of a loop task the run cannot take as written, or a `max` on a node whose task
    /// is not a loop.
    #[error("node `{node}` of graph `{graph}` (task `{task}`): {why}")]
    Loop {
        /// The graph's name.
        graph: String,
        /// The node.
        node: String,
        /// Its task.
        task: &'static str,
        /// What is wrong, and what to do.
        why: &'static str,
    },
}

/// A `TYPEDAG_*` environment variable that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {var}={value:?} is not valid: expected {expected}; fix or unset it")]
pub struct EnvError {
    /// The variable.
    pub var: &'static str,
    /// Its value.
    pub value: String,
    /// What it should look like.
    pub expected: &'static str,
}

/// A problem with the runner's resources, found before any task starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceError {
    /// Tasks of the graph take resources the runner was not given.
    #[error("{}", missing_text(.missing))]
    Missing {
        /// Each task and the resource type it lacks.
        missing: Vec<(String, String)>,
    },

    /// `Runner::resource` was given two values of one type.
    #[error(
        "the runner was given two resources of type `{type_name}`: a task asks for a resource by its type, so there can be one of each; wrap one in a newtype (`struct Backup(Pool);`) to tell them apart"
    )]
    Duplicate {
        /// The type.
        type_name: String,
    },
}

fn missing_text(missing: &[(String, String)]) -> String {
    let mut text = String::from(
        "the runner lacks resources that tasks of this graph take; add them with `Runner::resource(value)` before running:",
    );
    for (task, ty) in missing {
        text.push_str(&format!("\n  task `{task}` takes `Res<{ty}>`"));
    }
    text
}
