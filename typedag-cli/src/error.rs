//! Why a command could not do what it was asked, each with what to do about it.

use std::fmt;
use std::path::PathBuf;

use dag_runtime::StoreError;

use crate::human;

/// A failed command; `main` prints it as `error: …` and exits with status 1.
#[derive(Debug)]
pub enum Error {
    /// There is no store where we looked; opening one would have created it.
    NoStore {
        /// The directory we looked in.
        dir: PathBuf,
        /// Whether the directory exists (without a store file in it).
        dir_exists: bool,
    },
    /// The store could not be opened or read.
    Store(StoreError),
    /// The store knows no graph of that name.
    UnknownGraph { graph: String, known: Vec<String> },
    /// The graph has neither a node nor a record of that name.
    UnknownNode {
        graph: String,
        node: String,
        known: Vec<String>,
    },
    /// The node is in the graph but has no record to drop.
    NoRecord { graph: String, node: String },
    /// The store's writer went away without saying whether a write was kept.
    Unacknowledged { graph: String },
    /// The async runtime that drives the store could not start.
    Runtime(std::io::Error),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
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

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoStore { dir, dir_exists } => {
                write!(f, "no store at {}", dir.display())?;
                if *dir_exists {
                    f.write_str(": the directory holds no store.redb")?;
                }
                f.write_str(" (run a program first, or pass --store)")
            }
            // The runtime's advice speaks to programs; a person at the prompt waits instead.
            Error::Store(StoreError::Locked { path }) => write!(
                f,
                "the store {} is in use by a running program: it holds the store while it runs; run this again when it has finished (or pass --store to look at another store)",
                path.display()
            ),
            Error::Store(e) => write!(f, "{e}"),
            Error::UnknownGraph { graph, known } if known.is_empty() => {
                write!(f, "no graph `{graph}`: the store holds no graphs")
            }
            Error::UnknownGraph { graph, known } => write!(
                f,
                "no graph `{graph}` in the store; its graphs are {}",
                hint(known)
            ),
            Error::UnknownNode { graph, node, known } if known.is_empty() => write!(
                f,
                "graph `{graph}` has no node `{node}`: it has no nodes and no records"
            ),
            Error::UnknownNode { graph, node, known } => write!(
                f,
                "graph `{graph}` has no node `{node}`; its nodes are {}",
                hint(known)
            ),
            Error::NoRecord { graph, node } => write!(
                f,
                "node `{node}` of graph `{graph}` has no record: nothing to forget (nothing was dropped)"
            ),
            Error::Unacknowledged { graph } => write!(
                f,
                "the store closed before confirming the change to graph `{graph}`; run `typedag status {graph}` to see what it holds"
            ),
            Error::Runtime(e) => write!(f, "cannot start the runtime that reads the store: {e}"),
        }
    }
}

impl std::error::Error for Error {}
