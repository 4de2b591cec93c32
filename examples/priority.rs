//! Priority: among ready nodes, higher `priority` runs first; equal priorities run in the order
//! they are declared. A node's `with priority = ...` beats its task's option.
//!
//! Run it with:
//!
//! ```text
//! cargo run --example priority
//! ```
//!
//! Expected output:
//!
//! ```text
//! start alert (priority 100, set on the node)
//! start invoice (priority 10, from the task)
//! start report_a (priority 0)
//! start report_b (priority 0)
//! start cleanup (priority -5)
//! ```

use typedag::prelude::*;

#[task]
async fn report(name: &'static str) -> usize {
    name.len()
}

#[task(priority = 10)]
async fn invoice(customer: u32) -> u32 {
    customer
}

#[task(priority = -5)]
async fn cleanup() {}

#[tokio::main]
async fn main() -> Result<(), typedag::Error> {
    let graph = dag! {
        report_a = report("a");
        cleanup = cleanup();
        report_b = report("b");
        invoice = invoice(42);
        alert = report("alert") with priority = 100;
    };
    // One task at a time, so the start order is exactly the priority order.
    Runner::in_memory()
        .concurrency(1)
        .cancel_on_ctrl_c()
        .on_event(|event, _| {
            if let Event::Started { node, .. } = event {
                let why = match *node {
                    "alert" => " (priority 100, set on the node)",
                    "invoice" => " (priority 10, from the task)",
                    "cleanup" => " (priority -5)",
                    _ => " (priority 0)",
                };
                println!("start {node}{why}");
            }
        })
        .run(graph)
        .await?;
    Ok(())
}
