#![deny(warnings)]

use typedag::prelude::*;

#[derive(Debug)]
pub struct Offline;

impl std::fmt::Display for Offline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("offline")
    }
}

fn transient(e: &Offline) -> bool {
    let _ = e;
    true
}

/// Fetches a page.
#[task(
    retries = 3,
    backoff = exponential("100ms", cap = "10s", jitter),
    timeout = "1.5s",
    priority = -2,
    limit = 4,
    version = "2",
    cache = true,
    retry_if = transient
)]
pub async fn fetch(url: String) -> Result<String, Offline> {
    Ok(url)
}

/// Not serializable, fine for a task that is never cached.
pub struct Connection {
    pub id: u32,
}

#[task(cache = false)]
async fn volatile() -> Connection {
    Connection { id: 1 }
}

/// A loop bounded on the task, whose state needs no serde: nothing is stored.
#[task(cache = false, max = 5)]
async fn poll(conn: &Connection) -> Loop<Connection, u32> {
    Loop::Done(conn.id)
}

fn main() {
    assert_eq!(<poll as Task>::options().max_iterations, Some(5));
    let options = <fetch as Task>::options();
    assert_eq!(options.retries, Some(3));
    assert_eq!(options.priority, Some(-2));
    assert_eq!(options.limit, Some(4));
    assert_eq!(<fetch as Task>::FINGERPRINT, "version:2");
    let _ = volatile;
}
