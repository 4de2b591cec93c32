//! The stores a process has open, by where they are, so that opening one again hands back
//! the same store: one writer per store, and an embedded store's file lock taken once.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

/// Open stores of one kind, by key; a store leaves when its last handle goes.
pub(crate) struct Registry<K, T> {
    open: OnceLock<Mutex<HashMap<K, Weak<T>>>>,
}

impl<K: Eq + Hash, T> Registry<K, T> {
    pub(crate) const fn new() -> Self {
        Self {
            open: OnceLock::new(),
        }
    }

    /// The open stores, for a caller that must look and insert under one lock.
    pub(crate) fn lock(&self) -> MutexGuard<'_, HashMap<K, Weak<T>>> {
        self.open
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The store open under `key`, if one is.
    #[cfg_attr(
        not(feature = "postgres"),
        allow(
            dead_code,
            reason = "the embedded store looks and inserts under one lock"
        )
    )]
    pub(crate) fn get(&self, key: &K) -> Option<Arc<T>> {
        self.lock().get(key).and_then(Weak::upgrade)
    }

    /// Makes `store` the one open under `key`.
    #[cfg_attr(
        not(feature = "postgres"),
        allow(
            dead_code,
            reason = "the embedded store looks and inserts under one lock"
        )
    )]
    pub(crate) fn insert(&self, key: K, store: &Arc<T>) {
        self.lock().insert(key, Arc::downgrade(store));
    }

    /// Forgets `key` once its store has no handle left; called as the store closes. A store
    /// opened again under the same key meanwhile stays.
    pub(crate) fn release(&self, key: &K) {
        let mut open = self.lock();
        if open.get(key).is_some_and(|w| w.strong_count() == 0) {
            open.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_is_found_while_a_handle_lives() {
        static OPEN: Registry<&str, u8> = Registry::new();
        let store = Arc::new(7);
        OPEN.insert("a", &store);
        assert_eq!(OPEN.get(&"a").as_deref(), Some(&7));
        OPEN.release(&"a");
        assert!(OPEN.get(&"a").is_some(), "still open");
        drop(store);
        assert!(OPEN.get(&"a").is_none());
        OPEN.release(&"a");
        assert!(OPEN.lock().is_empty());
    }
}
