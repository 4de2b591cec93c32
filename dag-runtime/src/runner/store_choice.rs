//! Which store a runner records outputs in: one given in code, none, or the default that
//! `TYPEDAG_STORE` can move.

use std::sync::Arc;

use super::Runner;
use crate::error::Error;
use crate::store::{Address, Store};

/// Which store a runner records outputs in.
#[derive(Clone)]
pub(super) enum StoreChoice {
    /// The store `TYPEDAG_STORE` names, else the embedded store in
    /// [`DEFAULT_STORE`](crate::store::DEFAULT_STORE); opened when a run starts.
    Default,
    Given(Arc<dyn Store>),
    Nothing,
}

impl Runner {
    /// The store a run records in, opened now; `None` without one.
    pub(super) async fn open_store(&self) -> Result<Option<Arc<dyn Store>>, Error> {
        Ok(match &self.store {
            StoreChoice::Default => Some(self.default_store.open().await?),
            StoreChoice::Given(s) => Some(s.clone()),
            StoreChoice::Nothing => None,
        })
    }

    /// Where runs record, for messages.
    pub(super) fn store_location(&self) -> String {
        match &self.store {
            StoreChoice::Default => match &self.default_store {
                Address::Dir(dir) => format!("embedded in {}", dir.display()),
                Address::Postgres(url) => url.clone(),
            },
            StoreChoice::Given(s) => s.location(),
            StoreChoice::Nothing => "none".to_owned(),
        }
    }
}
