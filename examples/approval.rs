//! Signals: a release pipeline that stops at an approval, a value from outside the graph,
//! and goes on once one is sent (here by the program itself, after a short wait). The
//! approval is stored like any output: running the pipeline again finds it and does not wait.
//!
//! Run it with:
//!
//! ```text
//! cargo run --example approval
//! ```
//!
//! Expected output:
//!
//! ```text
//! waiting for signal `approve` (at most 10s)
//! shipped release 1.4.2, approved by ada
//! again: 0 ran, 3 cached, no wait
//! ```
//!
//! With the embedded store, a person sends the same value from a shell while the program is
//! not running, and its next run takes it:
//! `typedag signal release approve '{"by": "ada"}'`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use typedag::prelude::*;
use typedag::serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(crate = "typedag::serde")]
struct Approval {
    by: String,
}

#[task]
async fn build(version: String) -> String {
    format!("release {version}")
}

#[task]
async fn ship(build: &str, approval: &Approval) -> String {
    format!("shipped {build}, approved by {}", approval.by)
}

#[tokio::main]
async fn main() -> Result<(), typedag::Error> {
    let graph = || {
        dag! {
            name = "release";
            built   = build("1.4.2");
            approve = signal::<Approval>() with timeout = "10s";
            shipped = ship(built, approve);
        }
    };
    let store = MemoryStore::new();
    let waited = Arc::new(AtomicBool::new(false));
    let runner = {
        let waited = waited.clone();
        Runner::new().store(store).on_event(move |event, _| {
            if let Event::Waiting { node, timeout, .. } = event {
                waited.store(true, Ordering::SeqCst);
                let limit = timeout.map_or("no limit".to_owned(), |t| format!("at most {t:?}"));
                println!("waiting for signal `{node}` ({limit})");
            }
        })
    };

    // The approver: in a real program, a web handler or a chat command.
    let signals = runner.signals();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        signals.send("approve", Approval { by: "ada".into() });
    });
    let out = runner.run(graph()).await?;
    println!("{}", out.shipped);

    waited.store(false, Ordering::SeqCst);
    let again = runner.run_partial(graph()).await?.report;
    let wait = if waited.load(Ordering::SeqCst) {
        "waited again"
    } else {
        "no wait"
    };
    println!(
        "again: {} ran, {} cached, {wait}",
        again.ran(),
        again.cached()
    );
    Ok(())
}
