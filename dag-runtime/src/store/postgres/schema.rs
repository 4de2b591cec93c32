//! typedag's tables in PostgreSQL: each schema version's statements (`schema/v*.sql`),
//! applied in order by the first process that connects.

use std::time::{Duration, Instant};

use super::link::{Conn, Link, PgError};
use super::sql::fill;
use crate::store::StoreError;

/// Each schema version, as the statements that reach it from the one before; a version
/// once released never changes.
const MIGRATIONS: &[&str] = &[
    include_str!("schema/v1.sql"),
    include_str!("schema/v2.sql"),
    include_str!("schema/v3.sql"),
    include_str!("schema/v4.sql"),
    include_str!("schema/v5.sql"),
];

/// How long [`PostgresStore::connect`](super::PostgresStore::connect) tries to reach the
/// server at first, at most.
const FIRST_CONNECT: Duration = Duration::from_secs(10);

/// Serialises schema changes between processes that connect at the same moment.
const MIGRATION_LOCK: i64 = 0x7479_7065_6461_6701;

/// Creates or upgrades typedag's tables, under a lock that makes concurrent first
/// connections take turns.
pub(super) async fn migrate(link: &Link) -> Result<(), StoreError> {
    // A server that cannot be reached at all when the program starts is more likely a
    // wrong address than a restart: say so after a short wait, not the whole window.
    let deadline = Instant::now() + link.retry_for.min(FIRST_CONNECT);
    let migrated = link
        .transact(&mut None, deadline, &(), |c, ()| Box::pin(migrate_once(c)))
        .await?;
    migrated.map_err(|found| StoreError::NewerSchema {
        location: link.location.clone(),
        found,
        known: i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX),
    })
}

/// `Ok(Err(version))` when the database is newer than this typedag.
async fn migrate_once(conn: &Conn) -> Result<Result<(), i32>, PgError> {
    let client = &conn.client;
    client
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS typedag_migrations (
                 version    integer     PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now(),
                 typedag    text        NOT NULL
             )",
        )
        .await?;
    let current: i32 = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM typedag_migrations",
            &[],
        )
        .await?
        .get(0);
    let known = i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX);
    if current > known {
        return Ok(Err(current));
    }
    for (version, sql) in (1..)
        .zip(MIGRATIONS)
        .skip(usize::try_from(current).unwrap_or(0))
    {
        client.batch_execute(&fill(sql)).await?;
        client
            .execute(
                "INSERT INTO typedag_migrations (version, typedag) VALUES ($1, $2)",
                &[&version, &env!("CARGO_PKG_VERSION")],
            )
            .await?;
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_in_the_schema_is_filled_in() {
        for sql in MIGRATIONS {
            let filled = fill(sql);
            let left = filled
                .as_bytes()
                .windows(2)
                .any(|w| w[0] == b'{' && w[1].is_ascii_uppercase());
            assert!(!left, "{filled}");
        }
    }
}
