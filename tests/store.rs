//! The embedded store on disk: outputs outlive the process, and a bad store is a clear
//! error naming the path and what to do, never a panic and never wrong data.

mod support;

use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use redb::ReadableTable as _;

use support::temp_dir::TempDir;
use typedag::StoreError;
use typedag::prelude::*;

static RUNS: AtomicUsize = AtomicUsize::new(0);

#[task]
async fn square(x: u64) -> u64 {
    RUNS.fetch_add(1, Ordering::SeqCst);
    x * x
}

#[task]
async fn total(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

/// A graph of 20 squares and their sum.
fn squares() -> (Graph, typedag::Kept<u64>) {
    let mut graph = Graph::new("squares");
    let nodes: Vec<_> = (0..20u64)
        .map(|i| graph.add::<square>(format!("sq{i}"), (i,)).unwrap())
        .collect();
    let sum = graph.add::<total>("sum", (nodes,)).unwrap();
    let sum = graph.keep(sum);
    (graph, sum)
}

/// Runs [`squares`] in the store at `dir`.
async fn run_in(dir: &Path) -> Result<(u64, typedag::Report), typedag::Error> {
    let store = EmbeddedStore::open(dir)?;
    let (graph, sum) = squares();
    let partial = Runner::new().store(store).run_partial(graph).await?;
    let value = *partial.outputs.try_get(&sum).expect("the sum completed");
    Ok((value, partial.report))
}

#[tokio::test]
async fn outputs_outlive_the_store_and_come_back_cached() {
    let dir = TempDir::new("reopen");
    let (sum, report) = run_in(&dir.0).await.unwrap();
    assert_eq!(sum, 2470);
    assert_eq!(report.ran(), 21);
    // Every handle is gone: the file is closed, and opened afresh here.
    let (sum, report) = run_in(&dir.0).await.unwrap();
    assert_eq!(sum, 2470);
    assert_eq!(report.cached(), 21);
}

#[tokio::test]
async fn opening_a_store_twice_in_one_process_shares_it() {
    let dir = TempDir::new("twice");
    let a = EmbeddedStore::open(&dir.0).unwrap();
    let b = EmbeddedStore::open(&dir.0).unwrap();
    assert_eq!(a.path(), b.path());
}

fn open_error(dir: &Path) -> StoreError {
    EmbeddedStore::open(dir).expect_err("the store must not open")
}

#[tokio::test]
async fn a_file_that_is_not_a_store_is_named() {
    let dir = TempDir::new("foreign");
    std::fs::write(dir.file(), "name,size\nreport.csv,12\n".repeat(400)).unwrap();
    let e = open_error(&dir.0);
    assert!(matches!(e, StoreError::NotAStore { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains(&dir.file().display().to_string()), "{text}");
    assert!(
        text.contains("is not a typedag store") && text.contains("move it away"),
        "{text}"
    );
    // Nothing was overwritten.
    assert!(
        std::fs::read_to_string(dir.file())
            .unwrap()
            .starts_with("name,size")
    );
}

#[tokio::test]
async fn a_redb_file_of_another_program_is_not_taken_over() {
    let dir = TempDir::new("other-redb");
    {
        let db = redb::Database::create(dir.file()).unwrap();
        let tx = db.begin_write().unwrap();
        let table: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("accounts");
        tx.open_table(table).unwrap().insert("alice", 10).unwrap();
        tx.commit().unwrap();
    }
    let e = open_error(&dir.0);
    assert!(matches!(e, StoreError::NotAStore { .. }), "{e}");
}

#[tokio::test]
async fn a_store_of_another_format_version_is_refused() {
    let dir = TempDir::new("version");
    run_in(&dir.0).await.unwrap();
    {
        let db = redb::Database::create(dir.file()).unwrap();
        let tx = db.begin_write().unwrap();
        let info: redb::TableDefinition<&str, &str> = redb::TableDefinition::new("typedag");
        tx.open_table(info)
            .unwrap()
            .insert("format", "typedag-store-99")
            .unwrap();
        tx.commit().unwrap();
    }
    let e = open_error(&dir.0);
    let text = e.to_string();
    assert!(matches!(e, StoreError::Version { .. }), "{text}");
    assert!(
        text.contains("typedag-store-99") && text.contains("typedag-store-1"),
        "{text}"
    );
}

#[tokio::test]
async fn a_truncated_store_is_an_error_or_starts_afresh_never_wrong() {
    for keep in [0.0, 0.1, 0.5, 0.9] {
        let dir = TempDir::new("truncated");
        run_in(&dir.0).await.unwrap();
        let len = std::fs::metadata(dir.file()).unwrap().len();
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let cut = (len as f64 * keep) as u64;
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.file())
            .unwrap()
            .set_len(cut)
            .unwrap();
        match run_in(&dir.0).await {
            Ok((sum, _)) => assert_eq!(sum, 2470, "kept {keep}: a wrong answer"),
            Err(e) => {
                let text = e.to_string();
                assert!(text.contains(&dir.file().display().to_string()), "{text}");
                assert!(
                    text.contains("move it away") || text.contains("run again"),
                    "{text}"
                );
            }
        }
    }
}

#[tokio::test]
async fn flipped_bytes_are_detected_and_never_give_wrong_outputs() {
    let dir = TempDir::new("flipped");
    run_in(&dir.0).await.unwrap();
    let clean = std::fs::read(dir.file()).unwrap();
    let mut outcomes = [0usize; 2];
    // Damage every 4 KiB page in turn, in the middle of the page.
    for page in 0..clean.len() / 4096 {
        let mut bytes = clean.clone();
        for b in &mut bytes[page * 4096 + 1000..page * 4096 + 1100] {
            *b ^= 0x5a;
        }
        std::fs::write(dir.file(), &bytes).unwrap();
        match run_in(&dir.0).await {
            Ok((sum, _)) => {
                assert_eq!(sum, 2470, "page {page}: a wrong answer");
                outcomes[0] += 1;
            }
            Err(e) => {
                let text = e.to_string();
                assert!(matches!(e, typedag::Error::Store(_)), "page {page}: {text}");
                assert!(text.contains(&dir.file().display().to_string()), "{text}");
                outcomes[1] += 1;
            }
        }
    }
    eprintln!(
        "{} pages: {} runs still right, {} clear errors",
        clean.len() / 4096,
        outcomes[0],
        outcomes[1]
    );
    assert!(outcomes[1] > 0, "some damage must be caught: {outcomes:?}");
}

#[tokio::test]
async fn a_damaged_record_reruns_its_node_and_says_why() {
    let dir = TempDir::new("damaged-record");
    run_in(&dir.0).await.unwrap();
    {
        // Flip one byte of node sq3's record (inside its fingerprint) in the file's own
        // database, as a bad sector or a stray write would.
        let records: redb::TableDefinition<(&str, &str), &[u8]> =
            redb::TableDefinition::new("records");
        let db = redb::Database::create(dir.file()).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut table = tx.open_table(records).unwrap();
            let mut value = table
                .get(("squares", "sq3"))
                .unwrap()
                .unwrap()
                .value()
                .to_vec();
            value[40] ^= 0x01;
            table.insert(("squares", "sq3"), value.as_slice()).unwrap();
        }
        tx.commit().unwrap();
    }
    let runner = Runner::new().store(EmbeddedStore::open(&dir.0).unwrap());
    let plan = runner.explain(&squares().0).await.unwrap();
    assert_eq!(
        plan.node("sq3"),
        Some(&typedag::NodeState::Runs(typedag::Reason::RecordDamaged))
    );
    assert_eq!(
        plan.node("sum"),
        Some(&typedag::NodeState::Waits { on: "sq3".into() })
    );
    assert_eq!(plan.node("sq4"), Some(&typedag::NodeState::Cached));
    drop(runner);
    let (sum, report) = run_in(&dir.0).await.unwrap();
    assert_eq!(sum, 2470);
    assert_eq!(report.ran(), 1, "{report}");
    assert!(matches!(
        report.node("sq3").unwrap().outcome,
        Outcome::Ran {
            reason: typedag::Reason::RecordDamaged,
            ..
        }
    ));
    // Its output came out the same: the sum stays cached.
    assert!(matches!(
        report.node("sum").unwrap().outcome,
        Outcome::Cached
    ));
}

#[tokio::test]
async fn a_directory_without_write_permission_is_named() {
    let dir = TempDir::new("readonly");
    let store_dir = dir.0.join("store");
    std::fs::create_dir(&store_dir).unwrap();
    let guard = ReadOnly::new(&store_dir);
    let e = open_error(&store_dir);
    drop(guard);
    let text = e.to_string();
    assert!(matches!(e, StoreError::Io { .. }), "{text}");
    assert!(text.contains(&store_dir.display().to_string()), "{text}");
    assert!(text.contains("make it writable"), "{text}");
}

/// Makes a directory unwritable, even for root (which ignores permission bits), while held.
struct ReadOnly(PathBuf, bool);

impl ReadOnly {
    fn new(dir: &Path) -> Self {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        let probe = dir.join("probe");
        if std::fs::write(&probe, b"").is_err() {
            return Self(dir.to_owned(), false);
        }
        // Root: permission bits do not bind; the immutable attribute does.
        std::fs::remove_file(&probe).unwrap();
        let status = Command::new("chattr").arg("+i").arg(dir).status();
        assert!(
            status.is_ok_and(|s| s.success()) && std::fs::write(&probe, b"").is_err(),
            "cannot make {} unwritable here (root without chattr)",
            dir.display()
        );
        Self(dir.to_owned(), true)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        if self.1 {
            let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
        }
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o755));
    }
}

/// Run by `a_second_process_gets_a_clear_error`, in a child process: holds the store in
/// `TYPEDAG_TEST_HOLD` open until its stdin closes.
#[test]
#[ignore = "a helper process of another test"]
fn hold_store_open() {
    let Ok(dir) = std::env::var("TYPEDAG_TEST_HOLD") else {
        return;
    };
    let _store = EmbeddedStore::open(dir).unwrap();
    println!("holding");
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

#[tokio::test]
async fn a_second_process_gets_a_clear_error() {
    let dir = TempDir::new("locked");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "hold_store_open",
            "--ignored",
            "--nocapture",
            "--quiet",
        ])
        .env("TYPEDAG_TEST_HOLD", &dir.0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|l| l.is_ok_and(|l| l.contains("holding"))),
        "the helper did not open the store"
    );
    let e = open_error(&dir.0);
    drop(child.stdin.take());
    let _ = child.wait();
    let text = e.to_string();
    assert!(matches!(e, StoreError::Locked { .. }), "{text}");
    assert!(text.contains("in use by another process"), "{text}");
    // Once the other process is gone, the store opens.
    EmbeddedStore::open(&dir.0).unwrap();
}
