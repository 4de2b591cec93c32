//! Paginate: a loop task that pages through a listing of a fake API, one page per
//! iteration, until the last page. Each iteration's state (the next page and the users so
//! far) is stored as it completes, so a run stopped midway resumes at the page it reached.
//!
//! The first run is stopped while it fetches page 4, as a kill would stop it: the page in
//! flight is lost, the three before it are stored. The second run resumes at page 4 and
//! finishes; the third finds the loop cached and fetches nothing.
//!
//! Run it with:
//!
//! ```text
//! cargo run --example paginate
//! ```
//!
//! Expected output:
//!
//! ```text
//! run 1: fetched pages 1, 2, 3, 4; stopped while fetching page 4 (3 iterations stored)
//! run 2: fetched pages 4, 5, 6, 7; 7 iterations, resumed after 3: 19 users, the last "user-19"
//! run 3: fetched no page; `users` cached: 19 users
//! ```

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use typedag::prelude::*;
use typedag::serde::{Deserialize, Serialize};

/// How many users each page of the fake listing holds.
const PAGE_SIZES: [u32; 7] = [3, 3, 3, 3, 3, 3, 1];

/// One page of the listing: its users, and the next page's number unless it is the last.
struct Page {
    users: Vec<String>,
    next: Option<u32>,
}

/// A local fake of a paged API, which records the pages asked for, and can stop the run
/// while it serves one page (standing in for a kill).
struct Api {
    fetched: Arc<Mutex<Vec<u32>>>,
    stop_at: Mutex<Option<(u32, Cancel)>>,
}

impl Api {
    /// Page `n` (from 1), after a short network delay.
    async fn page(&self, n: u32) -> Result<Page, String> {
        self.fetched.lock().unwrap().push(n);
        let stop = self.stop_at.lock().unwrap().take_if(|(at, _)| *at == n);
        if let Some((_, cancel)) = stop {
            // The process dies while it waits for this page.
            cancel.cancel();
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        let index = usize::try_from(n).map_err(|e| e.to_string())?;
        let size = *PAGE_SIZES
            .get(index.wrapping_sub(1))
            .ok_or(format!("there is no page {n}"))?;
        let first: u32 = PAGE_SIZES[..index - 1].iter().sum();
        let users = (first + 1..=first + size)
            .map(|u| format!("user-{u:02}"))
            .collect();
        let next = (index < PAGE_SIZES.len()).then_some(n + 1);
        Ok(Page { users, next })
    }
}

/// The pages asked for since the last call, as a list.
fn take_fetched(fetched: &Mutex<Vec<u32>>) -> String {
    let pages = std::mem::take(&mut *fetched.lock().unwrap());
    match pages.as_slice() {
        [] => "no page".to_owned(),
        _ => {
            let list: Vec<String> = pages.iter().map(u32::to_string).collect();
            format!("pages {}", list.join(", "))
        }
    }
}

/// Where the listing is: the next page to fetch, and the users of the pages before it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(crate = "typedag::serde")]
struct Cursor {
    next: u32,
    users: Vec<String>,
}

/// One page per iteration: the users so far and the next page, until the last page.
#[task]
async fn users(api: Res<Api>, cursor: Cursor) -> Result<Loop<Cursor, Vec<String>>, String> {
    let page = api.page(cursor.next).await?;
    let mut users = cursor.users;
    users.extend(page.users);
    Ok(match page.next {
        Some(next) => Loop::Again(Cursor { next, users }),
        None => Loop::Done(users),
    })
}

/// A folder of its own under the system's temp directory, removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A real program keeps its store in ./.typedag; the example starts afresh each time.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let home = TempDir(std::env::temp_dir().join(format!(
        "typedag-paginate-example-{}-{nanos}",
        std::process::id()
    )));
    std::fs::create_dir(&home.0)?;

    let cancel = Cancel::new();
    let fetched = Arc::new(Mutex::new(Vec::new()));
    let api = Api {
        fetched: fetched.clone(),
        stop_at: Mutex::new(Some((4, cancel.clone()))),
    };
    let runner = Runner::new()
        .store(EmbeddedStore::open(home.0.join("store"))?)
        .resource(api);
    let graph = || {
        let start = Cursor {
            next: 1,
            users: Vec::new(),
        };
        dag! {
            name  = "paginate";
            users = users(start) with max = 100;
        }
    };

    // 1. Stopped while it fetches page 4.
    let stopped = runner.clone().cancel_with(cancel).run(graph()).await;
    let Err(typedag::Error::Cancelled(report)) = stopped else {
        return Err("the first run should have been stopped".into());
    };
    let stored = report
        .node("users")
        .and_then(|n| n.iterations)
        .map_or(0, |i| i.total);
    println!(
        "run 1: fetched {}; stopped while fetching page 4 ({stored} iterations stored)",
        take_fetched(&fetched)
    );

    // 2. Resumed at page 4.
    let partial = runner.run_partial(graph()).await?;
    let users = partial
        .outputs
        .users
        .ok_or("the second run should finish")?;
    let iterations = partial
        .report
        .node("users")
        .and_then(|n| n.iterations)
        .ok_or("the loop ran")?;
    println!(
        "run 2: fetched {}; {iterations}: {} users, the last {:?}",
        take_fetched(&fetched),
        users.len(),
        users.last().ok_or("no user")?
    );

    // 3. The same inputs: the loop is cached whole.
    let partial = runner.run_partial(graph()).await?;
    let cached = partial.report.cached() == 1;
    let users = partial.outputs.users.ok_or("the third run should finish")?;
    println!(
        "run 3: fetched {}; `users` {}: {} users",
        take_fetched(&fetched),
        if cached { "cached" } else { "ran" },
        users.len()
    );
    Ok(())
}
