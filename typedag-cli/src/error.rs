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
    /// The store's writer went away without saying whether a write was kept.
    #[error(
        "the store closed before confirming the change to graph `{graph}`; run `typedag status {graph}` to see what it holds"
    )]
    Unacknowledged { graph: String },
    /// The async runtime that drives the store could not start.
    #[error("cannot start the runtime that reads the store: {0}")]
    Runtime(std::io::Error),
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
