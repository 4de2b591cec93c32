//! Branches: nodes that run only when a condition node says so (`if big`, `if !big`), and a
//! report that takes the alert through an `Option<&T>`, so it runs either way. Each way is
//! run twice against one store: the second run finds everything stored and runs nothing.
//!
//! Run it with:
//!
//! ```text
//! cargo run --example branch
//! ```
//!
//! Expected output:
//!
//! ```text
//! readings [3, 4, 5]: alert None, archived Some("archived 12"), report "total 12, all quiet"
//!   not run: alert (`big` is false), page (it reads `alert`, which did not run)
//!   again: 0 ran, 4 cached, 2 not run
//! readings [40, 50, 60]: alert Some("ALERT: total 150"), archived None, report "total 150, ALERT: total 150"
//!   not run: archived (`big` is true)
//!   again: 0 ran, 5 cached, 1 not run
//! ```

use typedag::Outcome;
use typedag::prelude::*;

#[task]
async fn total(readings: Vec<u32>) -> u32 {
    readings.iter().sum()
}

#[task]
async fn over_limit(total: &u32) -> bool {
    *total > 100
}

#[task]
async fn alert(total: &u32) -> String {
    format!("ALERT: total {total}")
}

#[task]
async fn page(alert: &str) -> String {
    format!("paged: {alert}")
}

#[task]
async fn archive(total: &u32) -> String {
    format!("archived {total}")
}

/// Runs whether or not there was an alert: the `Option` gets `None` when there was not.
#[task]
async fn report(total: &u32, alert: Option<&String>) -> String {
    format!(
        "total {total}, {}",
        alert.map_or("all quiet", String::as_str)
    )
}

#[tokio::main]
async fn main() -> Result<(), typedag::Error> {
    let runner = Runner::new().store(MemoryStore::new());
    for readings in [vec![3u32, 4, 5], vec![40, 50, 60]] {
        let graph = || {
            let readings = readings.clone();
            dag! {
                name = "branch";
                sum      = total(readings);
                big      = over_limit(sum);
                alert    = alert(sum) if big;
                page     = page(alert);
                archived = archive(sum) if !big;
                report   = report(sum, alert);
            }
        };
        let first = runner.run_partial(graph()).await?;
        let out = first.outputs;
        println!(
            "readings {readings:?}: alert {:?}, archived {:?}, report {:?}",
            out.alert.flatten(),
            out.archived.flatten(),
            out.report.unwrap_or_default()
        );
        let not_run: Vec<String> = first
            .report
            .nodes()
            .iter()
            .filter_map(|n| match &n.outcome {
                Outcome::NotRun { condition } => Some(format!("{} ({condition})", n.id)),
                _ => None,
            })
            .collect();
        println!("  not run: {}", not_run.join(", "));

        let again = runner.run_partial(graph()).await?.report;
        println!(
            "  again: {} ran, {} cached, {} not run",
            again.ran(),
            again.cached(),
            again.not_run()
        );
    }
    Ok(())
}
