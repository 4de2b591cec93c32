//! The runs a shared database holds, as `typedag status` and `typedag gc` read them, and
//! forgetting those that have ended.

use super::link::{Conn, PgError};
use super::sql::{sql, still_going};
use super::sweep;
use crate::store::shared::RunSummary;

/// Every run, oldest first, with its nodes counted by state.
pub(super) async fn list(conn: &Conn) -> Result<Vec<RunSummary>, PgError> {
    let rows = conn
        .client
        .query(
            sql!(concat!(
                "SELECT r.run, r.graph, r.stopping,
                        (extract(epoch FROM r.started_at) * 1000)::bigint,
                        count(n.idx) FILTER (WHERE n.parent IS NULL),
                        count(*) FILTER (WHERE n.state = {Done} AND n.parent IS NULL),
                        count(*) FILTER (WHERE n.state = {Failed} AND n.parent IS NULL),
                        count(*) FILTER (WHERE n.state = {Skipped} AND n.parent IS NULL),
                        count(*) FILTER (WHERE n.state = {Claimed}),
                        array_agg(DISTINCT n.owner) FILTER (WHERE n.state = {Claimed}),
                        NOT ",
                still_going!(),
                "
                 FROM typedag_runs r LEFT JOIN typedag_nodes n ON n.run = r.run
                 GROUP BY r.run ORDER BY min(r.started_at), r.run"
            )),
            &[],
        )
        .await?;
    let count =
        |row: &tokio_postgres::Row, i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
    Ok(rows
        .iter()
        .map(|row| RunSummary {
            run: row.get(0),
            graph: row.get(1),
            stopping: row.get(2),
            started_ms: count(row, 3),
            nodes: count(row, 4),
            done: count(row, 5),
            failed: count(row, 6),
            skipped: count(row, 7),
            claimed: count(row, 8),
            workers: row
                .get::<_, Option<Vec<Option<String>>>>(9)
                .unwrap_or_default()
                .into_iter()
                .flatten()
                .collect(),
            ended: row.get(10),
        })
        .collect())
}

/// Drops those of `runs` that have ended (their nodes' rows with them), and the outputs no
/// record uses any more.
pub(super) async fn forget(conn: &Conn, runs: &[String]) -> Result<(), PgError> {
    conn.transaction(async {
        conn.client
            .execute(
                sql!(concat!(
                    "DELETE FROM typedag_runs r WHERE run = ANY($1) AND NOT ",
                    still_going!()
                )),
                &[&runs],
            )
            .await?;
        sweep(conn).await
    })
    .await
}
