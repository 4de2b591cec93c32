//! [`StoreError`]: why a store cannot be used, and what to do about it.

use std::path::PathBuf;

/// Why a store cannot be used, with what to do about it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another process has the store open.
    #[error(
        "the store {path} is in use by another process (is another run of this program going?); wait for it to finish, or give this run its own store with `Runner::store` or TYPEDAG_STORE=<dir>"
    )]
    Locked {
        /// The store.
        path: PathBuf,
    },

    /// The file is not a typedag store.
    #[error(
        "{path} is not a typedag store ({detail}); move it away, or point TYPEDAG_STORE at another directory"
    )]
    NotAStore {
        /// The file.
        path: PathBuf,
        /// What was found.
        detail: String,
    },

    /// The store was written by an incompatible version of typedag.
    #[error(
        "the store {path} has format {found}, and this typedag reads format {expected}; use the typedag version that wrote it, or move it away to start afresh (every node then runs again)"
    )]
    Version {
        /// The store.
        path: PathBuf,
        /// Its format.
        found: String,
        /// Ours.
        expected: String,
    },

    /// The store is damaged beyond what it can repair on its own.
    #[error(
        "the store {path} is damaged ({detail}); move it away to start afresh (every node then runs again)"
    )]
    Corrupt {
        /// The store.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },

    /// The file system refused.
    #[error("cannot {action} {path}: {message}; {advice}")]
    Io {
        /// What was tried.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// The system's words.
        message: String,
        /// What to do.
        advice: &'static str,
    },

    /// A write failed earlier; the store stopped writing so as not to trust a retried sync.
    #[error(
        "the store {path} stopped taking writes after an earlier write failed ({cause}); nothing more is recorded in this process: fix the cause (disk full?) and run again"
    )]
    ReadOnly {
        /// The store.
        path: PathBuf,
        /// The first failure.
        cause: String,
    },

    /// The database server could not be reached, or went away and did not come back in
    /// time.
    #[error(
        "cannot reach the store {location}: {message}; check that the server is running and the address is right (TYPEDAG_STORE or the program's store)"
    )]
    Unreachable {
        /// The server and database.
        location: String,
        /// Why.
        message: String,
    },

    /// A shared run of this name exists with another graph.
    #[error(
        "the run `{run}` in {location} is not this graph's: {detail}; every process of a run must run the same graph: give this one another run name"
    )]
    RunMismatch {
        /// The store.
        location: String,
        /// The run's name.
        run: String,
        /// How they differ.
        detail: String,
    },

    /// The database server refused: no such database, a bad password, no permission.
    #[error(
        "the store {location} refused: {message}; check the user, password and database name in the address, and that the user may create tables in it"
    )]
    Refused {
        /// The server and database.
        location: String,
        /// The server's words.
        message: String,
    },

    /// A newer typedag has upgraded the database's tables.
    #[error(
        "the store {location} has typedag schema version {found}, and this typedag knows versions up to {known}: a newer typedag upgraded it; run this program with that newer typedag (every process sharing a store must)"
    )]
    NewerSchema {
        /// The server and database.
        location: String,
        /// The database's version.
        found: i32,
        /// The newest this typedag knows.
        known: i32,
    },

    /// A store that is not on the local disk failed.
    #[error("store {location}: {message}")]
    Other {
        /// Where.
        location: String,
        /// What.
        message: String,
    },
}
