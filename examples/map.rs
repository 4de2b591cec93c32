//! Map: `counts = count(each files);` runs `count` once per item of the list `files`, and
//! each item is cached by its bytes, not its position. The graph lists a folder's text
//! files, counts the words of each and adds the counts. It runs against one store four
//! times: on a fresh store every file is counted; with nothing changed nothing is; after one
//! file is edited only that one is; after one file is added and another removed only the new
//! one is, although a file after it moved down the list.
//!
//! An item is a file's `Stamp` (path, length, modification time), so an edited file is a new
//! item. The listing runs every time (`cache = false`): the folder is outside the graph.
//! While it lists the same stamps, `counts` and `words` stay cached as a whole.
//!
//! Run it with:
//!
//! ```text
//! cargo run --example map
//! ```
//!
//! Expected output:
//!
//! ```text
//! 1. fresh store: 3 files, 13 words
//!    counted apple.txt, banana.txt, cherry.txt (3 items: 3 ran, 0 cached, 0 failed)
//! 2. nothing changed: 3 files, 13 words
//!    counted nothing: the list has the same bytes, so `counts` is cached whole
//! 3. banana.txt edited: 3 files, 15 words
//!    counted banana.txt (3 items: 1 ran, 2 cached, 0 failed)
//! 4. apricot.txt added, cherry.txt removed: 3 files, 14 words
//!    counted apricot.txt (3 items: 1 ran, 2 cached, 0 failed)
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use typedag::prelude::*;
use typedag::serde::{Deserialize, Serialize};

/// What identifies one version of a file, cheaply: if it is unchanged, so is the file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(crate = "typedag::serde")]
struct Stamp {
    path: PathBuf,
    len: u64,
    modified: SystemTime,
}

impl Stamp {
    fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// The folder's `.txt` files, sorted by name so that the list is the same from run to run.
#[task(cache = false)]
async fn list(folder: &Path) -> Result<Vec<Stamp>, std::io::Error> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "txt") {
            let meta = std::fs::metadata(&path)?;
            files.push(Stamp {
                len: meta.len(),
                modified: meta.modified()?,
                path,
            });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

#[task]
async fn count(file: &Stamp) -> Result<u64, std::io::Error> {
    let text = std::fs::read_to_string(&file.path)?;
    Ok(text.split_whitespace().count() as u64)
}

#[task]
async fn total(counts: &[u64]) -> u64 {
    counts.iter().sum()
}

/// A folder of its own under the system's temp directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!(
            "typedag-map-example-{}-{nanos}",
            std::process::id()
        ));
        // `create_dir`, not `create_dir_all`: it fails rather than reuse a folder.
        std::fs::create_dir(&path)?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the graph over `folder` and prints what it found and which files were counted:
/// `ran` receives the position of each item of `counts` that ran.
async fn step(
    label: &str,
    runner: &Runner,
    ran: &Mutex<Vec<usize>>,
    folder: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    ran.lock().unwrap().clear();
    let folder = folder.to_owned();
    let graph = dag! {
        name   = "map-example";
        files  = list(folder);
        counts = count(each files);
        words  = total(counts);
    };
    let partial = runner.run_partial(graph).await?;
    let report = partial.report;
    let (Some(files), Some(words)) = (partial.outputs.files, partial.outputs.words) else {
        return Err(format!("{label} the run failed:\n{report}").into());
    };
    println!("{label} {} files, {words} words", files.len());

    // An item's events are named after its position in this run's list: `counts[1]`.
    let mut counted: Vec<String> = ran
        .lock()
        .unwrap()
        .iter()
        .map(|&i| files[i].name())
        .collect();
    counted.sort();
    match report.node("counts").and_then(|n| n.items) {
        Some(items) => println!("   counted {} ({items})", counted.join(", ")),
        None => {
            println!("   counted nothing: the list has the same bytes, so `counts` is cached whole")
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A real program keeps its store in ./.typedag; the example starts afresh each time.
    let home = TempDir::new()?;
    let folder = home.0.join("files");
    std::fs::create_dir(&folder)?;
    let write = |name: &str, text: &str| std::fs::write(folder.join(name), text);
    write("apple.txt", "an apple a day")?;
    write("banana.txt", "bananas are long and yellow")?;
    write("cherry.txt", "cherries come in pairs")?;

    let ran = Arc::new(Mutex::new(Vec::new()));
    let seen = ran.clone();
    let runner = Runner::new()
        .store(EmbeddedStore::open(home.0.join("store"))?)
        .on_event(move |event, _| {
            if let Event::Completed { node, .. } = event
                && let Some(i) = node
                    .strip_prefix("counts[")
                    .and_then(|n| n.strip_suffix(']'))
                && let Ok(i) = i.parse()
            {
                seen.lock().unwrap().push(i);
            }
        });

    step("1. fresh store:", &runner, &ran, &folder).await?;
    step("2. nothing changed:", &runner, &ran, &folder).await?;

    write("banana.txt", "bananas are long and yellow when ripe")?;
    step("3. banana.txt edited:", &runner, &ran, &folder).await?;

    // `apricot.txt` comes second: `banana.txt` moves from position 1 to 2 and is not counted.
    write("apricot.txt", "apricots are orange")?;
    std::fs::remove_file(folder.join("cherry.txt"))?;
    step(
        "4. apricot.txt added, cherry.txt removed:",
        &runner,
        &ran,
        &folder,
    )
    .await?;
    Ok(())
}
