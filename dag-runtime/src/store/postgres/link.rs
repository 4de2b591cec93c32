//! Reaching the server: connections that reconnect, prepared statements kept per
//! connection, and which errors are worth a retry.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls, Statement};

use crate::store::StoreError;
#[cfg(test)]
use crate::store::address::hide_password;

pub(super) type PgError = tokio_postgres::Error;

/// A connection and the statements prepared on it.
pub(super) struct Conn {
    pub client: Client,
    statements: Mutex<HashMap<&'static str, Statement>>,
}

impl Conn {
    /// `sql` prepared on this connection, once.
    pub async fn prepare(&self, sql: &'static str) -> Result<Statement, PgError> {
        if let Some(s) = self.lock().get(sql) {
            return Ok(s.clone());
        }
        let statement = self.client.prepare(sql).await?;
        self.lock().insert(sql, statement.clone());
        Ok(statement)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, Statement>> {
        self.statements.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Runs `body` in a transaction: committed if it succeeds, rolled back if not.
    pub async fn transaction<T, F>(&self, body: F) -> Result<T, PgError>
    where
        F: Future<Output = Result<T, PgError>>,
    {
        self.client.batch_execute("BEGIN").await?;
        match body.await {
            Ok(v) => {
                self.client.batch_execute("COMMIT").await?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.client.batch_execute("ROLLBACK").await;
                Err(e)
            }
        }
    }
}

/// What every operation needs to reach the server: its address and how long to insist.
pub(super) struct Link {
    pub config: Config,
    /// The address without the password, for messages.
    pub location: String,
    pub retry_for: Duration,
    /// The connections that reads (and a shared run's claims) share, in turn.
    readers: Vec<tokio::sync::Mutex<Option<Arc<Conn>>>>,
    next: AtomicUsize,
}

/// Connections for reads and claims: enough for the server to work on several at once.
const READERS: usize = 3;

impl Link {
    pub fn new(config: Config, retry_for: Duration) -> Self {
        Self {
            location: location(&config),
            config,
            retry_for,
            readers: (0..READERS)
                .map(|_| tokio::sync::Mutex::new(None))
                .collect(),
            next: AtomicUsize::new(0),
        }
    }

    pub fn unreachable(&self, e: &PgError) -> StoreError {
        StoreError::Unreachable {
            location: self.location.clone(),
            message: describe(e),
        }
    }

    pub fn refused(&self, e: &PgError) -> StoreError {
        StoreError::Refused {
            location: self.location.clone(),
            message: describe(e),
        }
    }

    /// The error to report for `e` once retrying is over.
    pub fn error(&self, e: &PgError) -> StoreError {
        if transient(e) {
            self.unreachable(e)
        } else {
            self.refused(e)
        }
    }

    /// A new connection, retried until `deadline` while the server cannot be reached.
    pub async fn connect(&self, deadline: Instant) -> Result<Conn, StoreError> {
        let mut attempt = 0;
        loop {
            match self.config.connect(NoTls).await {
                Ok((client, connection)) => {
                    tokio::spawn(async move {
                        // Ends when the connection does; the next use finds it closed.
                        let _ = connection.await;
                    });
                    return Ok(Conn {
                        client,
                        statements: Mutex::new(HashMap::new()),
                    });
                }
                Err(e) if transient(&e) && Instant::now() < deadline => {
                    if attempt % 8 == 0 {
                        tracing::warn!(
                            store = %self.location,
                            error = %describe(&e),
                            "cannot reach the store; trying again"
                        );
                    }
                    tokio::time::sleep(pause(attempt)).await;
                    attempt += 1;
                }
                // Wrong password, no such database: waiting will not help.
                Err(e) => return Err(self.error(&e)),
            }
        }
    }

    async fn reader(&self, deadline: Instant) -> Result<Arc<Conn>, StoreError> {
        let at = self.next.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        let mut slot = self.readers[at].lock().await;
        if let Some(conn) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(conn.clone());
        }
        let conn = self.connect(deadline).await?;
        // What these connections write (a shared run's claims and leases) need not wait for
        // the disk: a claim lost in a server crash only means the node is claimed again,
        // and a completion, committed durably on another connection, flushes it anyway.
        if let Err(e) = conn
            .client
            .batch_execute("SET synchronous_commit = off")
            .await
        {
            return Err(self.error(&e));
        }
        let conn = Arc::new(conn);
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Runs `f` on the shared connection, again on a new one while the server cannot be
    /// reached, for up to `retry_for`.
    pub async fn read<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: Fn(Arc<Conn>) -> Fut,
        Fut: Future<Output = Result<T, PgError>>,
    {
        let deadline = Instant::now() + self.retry_for;
        let mut attempt = 0;
        loop {
            let conn = self.reader(deadline).await?;
            match f(conn).await {
                Ok(v) => return Ok(v),
                Err(e) if transient(&e) && Instant::now() < deadline => {
                    tokio::time::sleep(pause(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(self.error(&e)),
            }
        }
    }
}

/// A transaction's body: what it does with the connection and the data it writes.
pub(super) type Body<D, T> =
    for<'c> fn(&'c Conn, &'c D) -> Pin<Box<dyn Future<Output = Result<T, PgError>> + Send + 'c>>;

impl Link {
    /// Runs `body` in a transaction on `conn` (connected anew when missing or closed), and
    /// again on a new connection while the server cannot be reached or the transaction
    /// conflicts with another, until `deadline`.
    pub async fn transact<D: Sync + ?Sized, T>(
        &self,
        conn: &mut Option<Conn>,
        deadline: Instant,
        data: &D,
        body: Body<D, T>,
    ) -> Result<T, StoreError> {
        let mut attempt = 0;
        loop {
            let c = match conn.as_ref().filter(|c| !c.is_closed()) {
                Some(c) => c,
                None => conn.insert(self.connect(deadline).await?),
            };
            match c.transaction(body(c, data)).await {
                Ok(v) => return Ok(v),
                Err(e) if transient(&e) && Instant::now() < deadline => {
                    *conn = None;
                    tokio::time::sleep(pause(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(self.error(&e)),
            }
        }
    }
}

/// `postgres://user@host:port/db`, whatever form the address was given in, without the
/// password.
pub(super) fn location(config: &Config) -> String {
    let host = config.get_hosts().first().map_or_else(
        || "localhost".to_owned(),
        |h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        },
    );
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("");
    let at = if user.is_empty() { "" } else { "@" };
    let db = config.get_dbname().unwrap_or(user);
    format!("postgres://{user}{at}{host}:{port}/{db}")
}

/// Whether an error is the connection's (or a conflict between transactions), not the
/// statement's: trying again, on a new connection if need be, may succeed.
pub(super) fn transient(e: &PgError) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            code.code().starts_with("08")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                    SqlState::T_R_SERIALIZATION_FAILURE,
                    SqlState::T_R_DEADLOCK_DETECTED,
                ]
                .contains(code)
        }
        // No answer from the server at all: an I/O error, a refused connection.
        None => std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()),
    }
}

/// Backoff between attempts: 50 ms doubling to 800 ms.
pub(super) fn pause(attempt: u32) -> Duration {
    Duration::from_millis(50u64 << attempt.min(4))
}

/// The server's message with its detail and hint, or the client's.
fn describe(e: &PgError) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut text = db.message().to_owned();
            if let Some(detail) = db.detail() {
                text = format!("{text} ({detail})");
            }
            if let Some(hint) = db.hint() {
                text = format!("{text}; {hint}");
            }
            text
        }
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_shown_without_their_password() {
        assert_eq!(
            hide_password("postgres://ann:secret@db:5433/x"),
            "postgres://ann:***@db:5433/x"
        );
        assert_eq!(hide_password("postgres://ann@db/x"), "postgres://ann@db/x");
        let config: Config = "postgres://ann:secret@db:5433/x".parse().unwrap();
        assert_eq!(location(&config), "postgres://ann@db:5433/x");
        let config: Config = "host=db user=ann password=secret".parse().unwrap();
        assert_eq!(location(&config), "postgres://ann@db:5432/ann");
    }
}
