//! Resume: a pipeline of 242 tasks over a corpus of 60 files it writes itself, run against
//! one embedded store five times: from scratch, again with nothing changed (all cached),
//! after one file is edited (only its branch and the totals re-run), after one file is
//! touched without a change (its read re-runs, its output has the same bytes, nothing else
//! does), and cancelled halfway then resumed (only what was not finished runs).
//!
//! Each file is read by a task whose constant input is the file's `Stamp` (path, length,
//! modification time): the cache sees a new stamp and reads the file again; if the text is
//! the same bytes, the early cutoff keeps everything downstream cached.
//!
//! Run it with:
//!
//! ```text
//! cargo run --example resume
//! ```
//!
//! Expected output:
//!
//! ```text
//! 1. fresh store:       242 ran, 0 cached: 60 files, 3606 words, longest "abcdefghijklmnopqrstu"
//! 2. nothing changed:   0 ran, 242 cached: 60 files, 3606 words, longest "abcdefghijklmnopqrstu"
//! 3. file-07 edited:    ran read-07, words-07, longest-07, summary-07, total, report
//! 3. file-07 edited:    6 ran, 236 cached: 60 files, 3609 words, longest "abcdefghijklmnopqrstuvwxyz"
//! 4. file-21 touched:   ran read-21
//! 4. file-21 touched:   1 ran, 241 cached: 60 files, 3609 words, longest "abcdefghijklmnopqrstuvwxyz"
//! 5. cancelled halfway: some nodes completed, the rest cancelled
//! 5. resumed:           every node completed once in all, outputs as before
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use typedag::prelude::*;
use typedag::serde::{Deserialize, Serialize};

const FILES: usize = 60;

/// What identifies one version of a file, cheaply: if it is unchanged, so is the file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(crate = "typedag::serde")]
struct Stamp {
    path: PathBuf,
    len: u64,
    modified: SystemTime,
}

impl Stamp {
    fn of(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        Ok(Self {
            path: path.to_owned(),
            len: meta.len(),
            modified: meta.modified()?,
        })
    }
}

#[task]
async fn read(file: &Stamp) -> Result<String, std::io::Error> {
    std::fs::read_to_string(&file.path)
}

#[task]
async fn words(text: &str) -> u64 {
    tokio::time::sleep(Duration::from_millis(1)).await;
    text.split_whitespace().count() as u64
}

#[task]
async fn longest(text: &str) -> String {
    text.split_whitespace()
        .max_by_key(|w| w.len())
        .unwrap_or_default()
        .to_owned()
}

#[task]
async fn summary(words: &u64, longest: &str) -> (u64, String) {
    (*words, longest.to_owned())
}

#[task]
async fn total(counts: Vec<u64>) -> u64 {
    counts.iter().sum()
}

#[task]
async fn report(summaries: Vec<(u64, String)>, total: &u64) -> String {
    let longest = summaries
        .iter()
        .map(|(_, w)| w)
        .max_by_key(|w| w.len())
        .cloned()
        .unwrap_or_default();
    format!(
        "{} files, {total} words, longest {longest:?}",
        summaries.len()
    )
}

/// One node per task per file, then the totals: 4 × 60 + 2 nodes.
fn pipeline(corpus: &Path) -> std::io::Result<(Graph, Kept<String>)> {
    let mut graph = Graph::new("resume-example");
    let (mut counts, mut summaries) = (Vec::new(), Vec::new());
    for i in 0..FILES {
        let stamp = Stamp::of(&corpus.join(format!("file-{i:02}.txt")))?;
        let text = graph
            .add::<read>(format!("read-{i:02}"), (stamp,))
            .expect("unique ids");
        let n = graph
            .add::<words>(format!("words-{i:02}"), (text,))
            .expect("unique ids");
        let long = graph
            .add::<longest>(format!("longest-{i:02}"), (text,))
            .expect("unique ids");
        summaries.push(
            graph
                .add::<summary>(format!("summary-{i:02}"), (n, long))
                .expect("unique ids"),
        );
        counts.push(n);
    }
    let sum = graph.add::<total>("total", (counts,)).expect("unique ids");
    let text = graph
        .add::<report>("report", (summaries, sum))
        .expect("unique ids");
    let kept = graph.keep(text);
    Ok((graph, kept))
}

/// 60 words per file, plus one long word in every tenth.
fn write_corpus(corpus: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(corpus)?;
    for i in 0..FILES {
        let mut text: Vec<String> = (0..60).map(|w| format!("w{}", (i * 7 + w) % 97)).collect();
        if i % 10 == 0 {
            text.push("abcdefghijklmnopqrstu".into());
        }
        std::fs::write(corpus.join(format!("file-{i:02}.txt")), text.join(" "))?;
    }
    Ok(())
}

/// Runs the pipeline and prints one line: what ran, what was cached, and the report.
async fn step(
    label: &str,
    runner: &Runner,
    corpus: &Path,
) -> Result<typedag::Report, Box<dyn std::error::Error>> {
    let (graph, kept) = pipeline(corpus)?;
    let partial = runner.run_partial(graph).await?;
    let report = partial.report;
    let ran: Vec<&str> = report
        .nodes()
        .iter()
        .filter(|n| matches!(n.outcome, Outcome::Ran { .. }))
        .map(|n| n.id.as_str())
        .collect();
    if (1..10).contains(&ran.len()) {
        println!("{label:<21} ran {}", ran.join(", "));
    }
    if let Some(text) = partial.outputs.try_get(&kept) {
        println!(
            "{label:<21} {} ran, {} cached: {text}",
            report.ran(),
            report.cached()
        );
    }
    Ok(report)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A real program keeps its store in ./.typedag; the example starts afresh each time.
    let home = std::env::temp_dir().join("typedag-resume-example");
    let _ = std::fs::remove_dir_all(&home);
    let corpus = home.join("corpus");
    write_corpus(&corpus)?;
    let store = EmbeddedStore::open(home.join("store"))?;
    let runner = Runner::new()
        .store(store.clone())
        .concurrency(8)
        .cancel_on_ctrl_c();

    step("1. fresh store:", &runner, &corpus).await?;
    step("2. nothing changed:", &runner, &corpus).await?;

    let edited = corpus.join("file-07.txt");
    let text = std::fs::read_to_string(&edited)?;
    std::fs::write(
        &edited,
        format!("{text} more words abcdefghijklmnopqrstuvwxyz"),
    )?;
    step("3. file-07 edited:", &runner, &corpus).await?;

    // Same bytes, new modification time: the read runs again and finds nothing new.
    let touched = std::fs::File::options()
        .write(true)
        .open(corpus.join("file-21.txt"))?;
    touched.set_modified(SystemTime::now() + Duration::from_secs(60))?;
    step("4. file-21 touched:", &runner, &corpus).await?;

    // Start from scratch again and stop halfway, as Ctrl-C would.
    let outputs_before = step_outputs(&runner, &corpus).await?;
    drop(runner);
    drop(store);
    std::fs::remove_dir_all(home.join("store"))?;
    let store = EmbeddedStore::open(home.join("store"))?;
    let completions = Arc::new(Mutex::new(HashMap::<String, u32>::new()));
    let cancel = Cancel::new();
    let counter = completions.clone();
    let stopper = cancel.clone();
    let runner = Runner::new()
        .store(store)
        .concurrency(8)
        .cancel_with(cancel)
        .on_event(move |event, totals| {
            if let Event::Completed { node, .. } = event {
                *counter.lock().unwrap().entry(node.to_string()).or_default() += 1;
            }
            // Halfway: the 121st node to start stops the run.
            if totals.finished() + totals.running > 120 {
                stopper.cancel();
            }
        });
    let (graph, _) = pipeline(&corpus)?;
    match runner.run(graph).await {
        Err(typedag::Error::Cancelled(report)) if report.ran() > 0 => {
            println!(
                "{:<21} some nodes completed, the rest cancelled",
                "5. cancelled halfway:"
            );
        }
        Ok(_) => return Err("expected a cancelled run, but it finished".into()),
        Err(e) => return Err(format!("expected a cancelled run, got {e}").into()),
    }
    // The next run: the same graph, the same store, nothing cancels it.
    let resumed = Runner::new()
        .store(EmbeddedStore::open(home.join("store"))?)
        .concurrency(8);
    let counter = completions.clone();
    let resumed = resumed.on_event(move |event, _| {
        if let Event::Completed { node, .. } = event {
            *counter.lock().unwrap().entry(node.to_string()).or_default() += 1;
        }
    });
    let outputs_after = step_outputs(&resumed, &corpus).await?;
    let completions = completions.lock().unwrap();
    let once = completions.len() == 4 * FILES + 2 && completions.values().all(|&n| n == 1);
    if once && outputs_after == outputs_before {
        println!(
            "{:<21} every node completed once in all, outputs as before",
            "5. resumed:"
        );
    } else {
        return Err("the resumed run redid work or gave other outputs".into());
    }
    Ok(())
}

/// The final report of a run that must succeed.
async fn step_outputs(
    runner: &Runner,
    corpus: &Path,
) -> Result<String, Box<dyn std::error::Error>> {
    let (graph, kept) = pipeline(corpus)?;
    let mut outputs = runner.run(graph).await?;
    Ok(outputs.take(&kept).unwrap_or_default())
}
