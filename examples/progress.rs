//! Progress: three hundred tasks with short sleeps under a progress bar on stderr. The bar
//! draws only when stderr is a terminal, so logs and CI stay clean; the summary goes to stdout.
//!
//! Run it with:
//!
//! ```text
//! cargo run --example progress
//! ```
//!
//! The bar goes to stderr; stdout gets the summary.
//!
//! Expected output:
//!
//! ```text
//! 300 pages fetched, 100 batches, total size 45150
//! ```

use std::time::Duration;

use typedag::prelude::*;

#[task]
async fn fetch(page: u64) -> u64 {
    // Sleeps of 1 to 10 ms, different per page but the same every run.
    tokio::time::sleep(Duration::from_millis(1 + page * 7 % 10)).await;
    page + 1
}

#[task]
async fn batch(sizes: Vec<u64>) -> u64 {
    tokio::time::sleep(Duration::from_millis(2)).await;
    sizes.iter().sum()
}

#[task]
async fn total(batches: Vec<u64>) -> u64 {
    batches.iter().sum()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut graph = Graph::new("progress");
    let mut batches = Vec::new();
    for b in 0..100u64 {
        let mut pages = Vec::new();
        for p in 0..3 {
            let page = b * 3 + p;
            pages.push(graph.add::<fetch>(format!("fetch-{page}"), (page,))?);
        }
        batches.push(graph.add::<batch>(format!("batch-{b}"), (pages,))?);
    }
    let sum = graph.add::<total>("total", (batches,))?;
    let sum = graph.keep(sum);

    let out = Runner::in_memory()
        .concurrency(32)
        .progress_bar()
        .cancel_on_ctrl_c()
        .run(graph)
        .await?;
    println!(
        "300 pages fetched, 100 batches, total size {}",
        out.get(&sum)
    );
    Ok(())
}
