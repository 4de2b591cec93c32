//! Retries: a flaky task retried with exponential backoff, and `retry_if` giving up at once on
//! an error that no retry can fix.
//!
//! Run it with:
//!
//! ```text
//! cargo run --example retries
//! ```
//!
//! Expected output:
//!
//! ```text
//! page: attempt 1 failed (connection reset), next in 10ms
//! page: attempt 2 failed (connection reset), next in 20ms
//! page: completed after 3 attempts
//! count: failed after 1 attempt: permanent: malformed page
//! summary: skipped `saved` because `count` failed
//! ```

use std::sync::atomic::{AtomicU32, Ordering};

use typedag::Outcome;
use typedag::prelude::*;

static FETCHES: AtomicU32 = AtomicU32::new(0);

/// Fails twice with a transient error, then succeeds.
#[task(retries = 3, backoff = exponential("10ms", cap = "1s"))]
async fn fetch(url: String) -> Result<String, String> {
    if FETCHES.fetch_add(1, Ordering::SeqCst) < 2 {
        return Err("connection reset".into());
    }
    Ok(format!("<html>{url}</html>"))
}

fn is_transient(error: &ParseError) -> bool {
    !error.0.starts_with("permanent")
}

#[derive(Debug)]
struct ParseError(String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A broken page will not parse however often we try: `retry_if` stops the retries.
#[task(retries = 5, backoff = fixed("10ms"), retry_if = is_transient)]
async fn parse(html: &str) -> Result<usize, ParseError> {
    let _ = html;
    Err(ParseError("permanent: malformed page".into()))
}

#[task]
async fn store(count: &usize) -> usize {
    *count
}

#[tokio::main]
async fn main() {
    let graph = dag! {
        page = fetch("https://example.org");
        count = parse(page);
        saved = store(count);
    };
    let runner = Runner::in_memory()
        .cancel_on_ctrl_c()
        .on_event(|event, _| match event {
            Event::Retrying {
                node,
                attempt,
                delay,
                error,
                ..
            } => {
                println!("{node}: attempt {attempt} failed ({error}), next in {delay:?}");
            }
            Event::Completed { node, attempts, .. } => {
                println!("{node}: completed after {attempts} attempts")
            }
            Event::Failed {
                node,
                attempts,
                error,
                ..
            } => {
                let s = if *attempts == 1 { "" } else { "s" };
                println!("{node}: failed after {attempts} attempt{s}: {error}");
            }
            _ => {}
        });
    let error = runner.run(graph).await.expect_err("parse fails for good");
    let report = error.report().expect("a failed run has a report");
    for node in report.nodes() {
        if let Outcome::Skipped { because } = &node.outcome {
            println!("summary: skipped `{}` because `{because}` failed", node.id);
        }
    }
}
