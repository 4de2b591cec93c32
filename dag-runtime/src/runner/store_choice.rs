//! Which store a runner records outputs in: one given in code, none, or the default that
//! `TYPEDAG_STORE` can move.

use std::path::PathBuf;
use std::sync::Arc;

use super::{DEFAULT_STORE, Runner};
use crate::error::Error;
use crate::store::{EmbeddedStore, Store};

/// What `TYPEDAG_STORE` names.
#[derive(Clone, Debug)]
pub(super) enum EnvStore {
    /// The embedded store's directory.
    Dir(PathBuf),
    /// A PostgreSQL database.
    #[cfg_attr(
        not(feature = "postgres"),
        allow(dead_code, reason = "refused when read")
    )]
    Url(String),
}

/// Which store a runner records outputs in.
#[derive(Clone)]
pub(super) enum StoreChoice {
    /// The embedded store in `TYPEDAG_STORE` or [`DEFAULT_STORE`], opened when a run starts.
    Default,
    Given(Arc<dyn Store>),
    Nothing,
}

impl Runner {
    pub(super) fn default_dir(&self) -> PathBuf {
        match &self.env_store {
            Some(EnvStore::Dir(dir)) => dir.clone(),
            _ => PathBuf::from(DEFAULT_STORE),
        }
    }

    pub(super) async fn open_store(&self) -> Result<Option<Arc<dyn Store>>, Error> {
        Ok(match &self.store {
            #[cfg(feature = "postgres")]
            StoreChoice::Default if matches!(self.env_store, Some(EnvStore::Url(_))) => {
                let Some(EnvStore::Url(url)) = &self.env_store else {
                    unreachable!("matched above")
                };
                Some(Arc::new(crate::store::PostgresStore::connect(url).await?))
            }
            StoreChoice::Default => Some(Arc::new(EmbeddedStore::open(self.default_dir())?)),
            StoreChoice::Given(s) => Some(s.clone()),
            StoreChoice::Nothing => None,
        })
    }
}
