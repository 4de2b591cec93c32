//! The runtime of [typedag](https://docs.rs/typedag): the [`Task`] trait that `#[task]`
//! implements, [`Graph`] and its typed builder, and the [`Runner`].
//!
//! Depend on the `typedag` crate rather than on this one: it re-exports everything here
//! together with the `#[task]` and `dag!` macros.

// Leaves: they know nothing of graphs, runners or stores.
mod bounds;
mod cache;
mod cancel;
mod failure;
mod ids;
mod policy;
mod resource;

// The core: tasks, graphs, and what a run reports.
mod error;
mod event;
mod graph;
mod looping;
pub mod progress;
mod report;
mod signal;
mod task;

// Where outputs live, and what runs graphs.
mod runner;
pub mod store;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use cache::{Digest, Fingerprint, Reason};
pub use cancel::Cancel;
pub use error::{EnvError, Error, GraphError, ResourceError};
pub use event::{Event, Totals};
pub use failure::{Failure, FailureKind};
pub use graph::args::{Arg, Args};
pub use graph::{Each, FromOutputs, Graph, Kept, Node, Outputs, each};
pub use looping::Loop;
pub use policy::{Backoff, DEFAULT_MAX_ITERATIONS, NodeOptions, TaskOptions};
pub use report::{Items, Iterations, NodeReport, Outcome, Partial, Report};
pub use resource::{Res, Resource};
pub use runner::{DEFAULT_CONCURRENCY, Explanation, ItemsPlan, NodeState, Runner};
pub use signal::{Signal, SignalValue, Signals};
#[cfg(feature = "postgres")]
pub use store::PostgresStore;
pub use store::{DEFAULT_STORE, EmbeddedStore, MemoryStore, Store, StoreError};
pub use task::{BoxFuture, Codec, Task};
