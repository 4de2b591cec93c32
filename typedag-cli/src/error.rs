//! Why a command could not do what it was asked, each with what to do about it.

use std::path::{Path, PathBuf};

use dag_runtime::{EmbeddedStore, StoreError};

use crate::human;

/// A failed command; `main` prints it as `error: …` and exits with status 1.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// There is no store where we looked; opening one would have created it.
    #[error("{}", no_store(.dir, *.dir_exists))]
    NoStore {
        /// The directory we looked in.
        dir: PathBuf,
        /// Whether the directory exists (without a store file in it).
        dir_exists: bool,
    },
    /// The store could not be opened or read.
    #[error("{}", store(.0))]
    Store(#[from] StoreError),
    /// The store knows no graph of that name.
    #[error("{}", unknown_graph(.graph, .known))]
    UnknownGraph { graph: String, known: Vec<String> },
    /// The graph has neither a node nor a record of that name.
    #[error("{}", unknown_node(.graph, .node, .known))]
    UnknownNode {
        graph: String,
        node: String,
        known: Vec<String>,
    },
    /// The node is in the graph but has no record to drop.
    #[error(
        "node `{node}` of graph `{graph}` has no record: nothing to forget (nothing was dropped)"
    )]
    NoRecord { graph: String, node: String },
    /// The graph has no signal of that name.
    #[error("{}; nothing was stored", unknown_signal(.graph, .signal, .known))]
    UnknownSignal {
        graph: String,
        signal: String,
        known: Vec<String>,
    },
    /// The node is in the graph, but it is a task, not a signal.
    #[error(
        "node `{node}` of graph `{graph}` runs task `{task}`: it is not a signal, so it takes no value from outside the graph; {}; nothing was stored",
        signals(.known)
    )]
    NotASignal {
        graph: String,
        node: String,
        task: String,
        known: Vec<String>,
    },
    /// The store has no saved shape of the graph, so it cannot tell its signals.
    #[error(
        "the store has no saved shape of graph `{graph}`, so it cannot tell which of its nodes are signals: run its program once (a run saves the graph's shape as it starts), then send the value; nothing was stored"
    )]
    NoShape { graph: String },
    /// The value given is not JSON.
    #[error(
        "the value `{value}` is not valid JSON ({detail}): write it as JSON, quoted for the shell, such as '{{\"by\": \"ada\"}}', '\"text\"', '42' or 'true'; nothing was stored"
    )]
    NotJson { value: String, detail: String },
    /// `typedag signal` into an embedded store that a running program holds.
    #[error(
        "the store {} is in use by a running program, so the value cannot go into it now: a running program takes values sent through its own `Runner::signals`; else stop it (a signal's wait survives a restart), run this again, and start the program again to take the value; nothing was stored",
        .path.display()
    )]
    InUseWhileDelivering { path: PathBuf },
    /// The store's writer went away without saying whether a write was kept.
    #[error(
        "the store closed before confirming the change to graph `{graph}`; run `typedag status {graph}` to see what it holds"
    )]
    Unacknowledged { graph: String },
    /// The async runtime that drives the store could not start.
    #[error("cannot start the runtime that reads the store: {0}")]
    Runtime(std::io::Error),
}

impl Error {
    /// This error as `typedag signal` says it: a store in use is no reason to wait for the
    /// program to finish, as it may be waiting for this very value.
    pub fn delivering(self) -> Self {
        match self {
            Error::Store(StoreError::Locked { path }) => Error::InUseWhileDelivering { path },
            e => e,
        }
    }
}

/// At most this many names in a "known names" hint: a huge graph would flood the terminal.
const HINT_NAMES: usize = 20;

fn hint(known: &[String]) -> String {
    let mut names: Vec<String> = known
        .iter()
        .take(HINT_NAMES)
        .map(|n| format!("`{n}`"))
        .collect();
    if known.len() > HINT_NAMES {
        names.push(format!("and {} more", known.len() - HINT_NAMES));
    }
    human::list(&names)
}

fn no_store(dir: &Path, dir_exists: bool) -> String {
    let holds = if dir_exists {
        format!(": the directory holds no {}", EmbeddedStore::FILE_NAME)
    } else {
        String::new()
    };
    format!(
        "no store at {}{holds} (run a program first, or pass --store)",
        dir.display()
    )
}

fn store(e: &StoreError) -> String {
    match e {
        // The runtime's advice speaks to programs; a person at the prompt waits instead.
        StoreError::Locked { path } => format!(
            "the store {} is in use by a running program: it holds the store while it runs; run this again when it has finished (or pass --store to look at another store)",
            path.display()
        ),
        e => e.to_string(),
    }
}

fn unknown_graph(graph: &str, known: &[String]) -> String {
    if known.is_empty() {
        format!("no graph `{graph}`: the store holds no graphs")
    } else {
        format!(
            "no graph `{graph}` in the store; its graphs are {}",
            hint(known)
        )
    }
}

fn unknown_signal(graph: &str, signal: &str, known: &[String]) -> String {
    format!(
        "graph `{graph}` has no signal `{signal}`; {}",
        signals(known)
    )
}

/// What a graph's signals are, for an error about a signal it does not have.
fn signals(known: &[String]) -> String {
    if known.is_empty() {
        "it has no signals (a signal is a node `name = signal::<Type>();` of its `dag!`, or `Graph::signal`)".to_owned()
    } else {
        format!("its signals are {}", hint(known))
    }
}

fn unknown_node(graph: &str, node: &str, known: &[String]) -> String {
    if known.is_empty() {
        format!("graph `{graph}` has no node `{node}`: it has no nodes and no records")
    } else {
        format!(
            "graph `{graph}` has no node `{node}`; its nodes are {}",
            hint(known)
        )
    }
}
