//! Where finished outputs live between runs: the [`Store`] trait, the in-memory
//! [`MemoryStore`] and the embedded, crash-safe [`EmbeddedStore`] (the default, in
//! `./.typedag`).

// The contract and what passes through it.
mod address;
mod contract;
mod error;
mod manifest;
mod record;
#[doc(hidden)]
pub mod shared;

// How values are kept.
mod envelope;
mod layout;

// What the stores share.
mod queue;
mod registry;

// The stores.
mod embedded;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;

pub(crate) use address::hide_password;
pub use address::{Address, AddressError, DEFAULT_STORE, STORE_VAR};
pub use contract::{Ack, Delivery, Snapshot, Stamps, Store, StoreFuture, Write};
pub use embedded::EmbeddedStore;
pub use error::StoreError;
pub(crate) use manifest::shape_digest;
pub use manifest::{Manifest, ManifestNode};
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
pub use record::{Loaded, Record, RecordState, Stamp};

pub use crate::ids::NodeIds;
