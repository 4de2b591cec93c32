//! Wake-ups from other processes: `NOTIFY typedag`, heard on a connection of its own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::StreamExt as _;
use tokio::sync::{Notify, mpsc};
use tokio_postgres::{AsyncMessage, NoTls};

use super::link::Link;

/// Counts notifications from other processes, and wakes whoever waits for the next one.
pub(super) struct Wakes {
    pub count: AtomicU64,
    pub notify: Notify,
    /// Who we are in notifications: our own are not news.
    pub origin: String,
}

/// A name for this store in notifications, so that it can tell its own from others'.
pub(super) fn origin() -> String {
    crate::store::shared::nonce()[..16].to_owned()
}

/// Counts `NOTIFY typedag` on a connection of its own, reconnecting when it drops, until
/// the store is gone.
pub(super) async fn listen(link: Arc<Link>, wakes: Weak<Wakes>) {
    let bump = |wakes: &Weak<Wakes>| -> bool {
        let Some(w) = wakes.upgrade() else {
            return false;
        };
        w.count.fetch_add(1, Ordering::SeqCst);
        w.notify.notify_waiters();
        true
    };
    loop {
        if wakes.strong_count() == 0 {
            return;
        }
        if let Ok((client, mut connection)) = link.config.connect(NoTls).await {
            let (tx, mut rx) = mpsc::unbounded_channel();
            let own = wakes
                .upgrade()
                .map(|w| format!(" {}", w.origin))
                .unwrap_or_default();
            let pump = tokio::spawn(async move {
                let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                while let Some(Ok(message)) = messages.next().await {
                    let AsyncMessage::Notification(note) = message else {
                        continue;
                    };
                    // Our own completions come back to us as readied nodes: not news.
                    if !own.is_empty() && note.payload().ends_with(&own) {
                        continue;
                    }
                    if tx.send(()).is_err() {
                        return;
                    }
                }
            });
            if client.batch_execute("LISTEN typedag").await.is_ok() {
                // Whatever happened while we were not listening: look again.
                if !bump(&wakes) {
                    return;
                }
                while rx.recv().await.is_some() {
                    if !bump(&wakes) {
                        return;
                    }
                }
            }
            pump.abort();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
