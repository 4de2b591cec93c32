//! A store's write queue: what waits in it, and how much of it one transaction takes.

use super::contract::{Ack, Write};

/// A queued write and whom to tell once it is durable.
pub(crate) struct Queued {
    pub write: Write,
    pub ack: Ack,
}

/// Writes committed together at most.
pub(crate) const BATCH: usize = 4096;
