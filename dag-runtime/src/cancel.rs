//! Stopping a run from outside: a handle to cancel with, and Ctrl-C.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// Cancels the runs of the runners it is given to: in-flight attempts are dropped, nothing
/// new starts, and the run fails with [`Error::Cancelled`](crate::Error::Cancelled) and a
/// report that marks every unfinished node cancelled. Clone it to cancel from elsewhere.
///
/// ```
/// use typedag::{Cancel, Runner};
///
/// let cancel = Cancel::new();
/// let runner = Runner::in_memory().cancel_with(cancel.clone());
/// // ... later, from any task or thread:
/// cancel.cancel();
/// assert!(cancel.is_cancelled());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Cancel {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    cancelled: AtomicBool,
    notify: Notify,
}

impl Cancel {
    /// A handle that is not cancelled yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels every run using this handle, now and later.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// Whether [`cancel`](Cancel::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Completes once the handle is cancelled.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.inner.notify.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}
