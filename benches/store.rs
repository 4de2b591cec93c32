//! What durability costs, and how fast a fully cached rerun is.
//!
//! - `persist_1kib`: 2,000 tasks that each return 1 KiB (a `Vec<u8>`), run through the
//!   `Runner` three ways in the same process: with no store (the baseline), with a
//!   `MemoryStore`, and with the embedded store in a temp dir, which commits every output
//!   durably (fsync'd) before its `Completed` event. Two shapes: `wide` (independent tasks,
//!   concurrency 64) and `chain` (each task reads the previous one, so only one runs at a
//!   time). Every iteration changes a constant input of every node, so every node runs and
//!   every record is rewritten. Persistence cost per task = (store time - baseline time) /
//!   2,000.
//! - `persist_1kib/redb_floor`: the same bytes written straight into redb, without typedag,
//!   laid out as the store lays them out: 2,000 values of 1,264 bytes (a 240-byte record
//!   followed by its 1 KiB output) into one table, one durable transaction per iteration,
//!   keys overwritten each time. What the disk and redb cost before typedag does anything.
//! - `cached_rerun_10000`: a 100 × 100 layered graph of 10,000 nodes (each reads two nodes
//!   of the layer above), run once to fill the embedded store; then each iteration builds
//!   the graph and runs it again: every node is cached, and only the one kept output is
//!   read and decoded. The time includes building the graph, reading 10,000 records,
//!   fingerprinting every node and handing back the output.
//!
//! Run with:
//!
//! ```text
//! cargo bench --bench store
//! ```

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use typedag::prelude::*;

const TASKS: usize = 2_000;
const PAYLOAD: usize = 1024;
const LAYERS: usize = 100;
const WIDTH: usize = 100;

#[task]
async fn payload(i: u64, round: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; PAYLOAD];
    bytes[..8].copy_from_slice(&i.to_le_bytes());
    bytes[8..16].copy_from_slice(&round.to_le_bytes());
    bytes
}

#[task]
async fn next_payload(prev: &[u8], i: u64, round: u64) -> Vec<u8> {
    let mut bytes = prev.to_vec();
    bytes[..8].copy_from_slice(&i.to_le_bytes());
    bytes[8..16].copy_from_slice(&round.to_le_bytes());
    bytes
}

#[task]
async fn seed(i: u64) -> u64 {
    i
}

#[task]
async fn mix(a: &u64, b: &u64) -> u64 {
    a.wrapping_mul(31).wrapping_add(*b)
}

/// Every call gets a new round, so that no node is cached.
static ROUND: AtomicU64 = AtomicU64::new(0);

fn wide() -> Graph {
    let round = ROUND.fetch_add(1, Ordering::Relaxed);
    let mut g = Graph::new("persist-wide");
    for i in 0..TASKS as u64 {
        g.add::<payload>(format!("p{i}"), (i, round)).unwrap();
    }
    g
}

fn chain() -> Graph {
    let round = ROUND.fetch_add(1, Ordering::Relaxed);
    let mut g = Graph::new("persist-chain");
    let mut prev = g.add::<payload>("p0", (0, round)).unwrap();
    for i in 1..TASKS as u64 {
        prev = g
            .add::<next_payload>(format!("p{i}"), (prev, i, round))
            .unwrap();
    }
    g
}

fn layered() -> (Graph, typedag::Kept<u64>) {
    let mut g = Graph::new("cached-rerun");
    let mut above: Vec<Node<u64>> = (0..WIDTH as u64)
        .map(|i| g.add::<seed>(format!("0-{i}"), (i,)).unwrap())
        .collect();
    for layer in 1..LAYERS {
        above = (0..WIDTH)
            .map(|i| {
                let inputs = (above[i], above[(i + 1) % WIDTH]);
                g.add::<mix>(format!("{layer}-{i}"), inputs).unwrap()
            })
            .collect();
    }
    let kept = g.keep(above[0]);
    (g, kept)
}

fn temp_store(tag: &str) -> (PathBuf, EmbeddedStore) {
    let dir = std::env::temp_dir().join(format!("typedag-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = EmbeddedStore::open(&dir).expect("a store in the temp dir");
    (dir, store)
}

fn persist(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let (dir, embedded) = temp_store("persist");
    let memory = MemoryStore::new();
    for (shape, build) in [("wide", wide as fn() -> Graph), ("chain", chain)] {
        let mut group = c.benchmark_group(format!("persist_1kib/{shape}"));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(4))
            .throughput(Throughput::Elements(TASKS as u64));
        let runners = [
            ("no_store", Runner::new().without_store()),
            ("memory", Runner::new().store(memory.clone())),
            ("embedded_durable", Runner::new().store(embedded.clone())),
        ];
        for (name, runner) in runners {
            group.bench_function(name, |b| {
                b.iter_batched(
                    build,
                    |g| {
                        let report = rt.block_on(runner.run_partial(g)).unwrap().report;
                        assert_eq!(report.ran(), TASKS);
                    },
                    BatchSize::PerIteration,
                );
            });
        }
        group.finish();
    }
    drop(embedded);
    let _ = std::fs::remove_dir_all(dir);
}

/// The engine's own cost for what a wide run writes: one durable transaction of 2,000 records
/// and 2,000 outputs.
fn redb_floor(c: &mut Criterion) {
    const RECORDS: redb::TableDefinition<(&str, &str), &[u8]> = redb::TableDefinition::new("r");
    let dir = std::env::temp_dir().join(format!("typedag-bench-floor-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = redb::Database::create(dir.join("floor.redb")).unwrap();
    let ids: Vec<String> = (0..TASKS).map(|i| format!("p{i}")).collect();
    let mut group = c.benchmark_group("persist_1kib/wide");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(TASKS as u64));
    group.bench_function("redb_floor", |b| {
        b.iter(|| {
            let round = ROUND.fetch_add(1, Ordering::Relaxed);
            let tx = db.begin_write().unwrap();
            {
                let mut records = tx.open_table(RECORDS).unwrap();
                for (i, id) in ids.iter().enumerate() {
                    let mut value = vec![0u8; 240 + PAYLOAD];
                    value[..8].copy_from_slice(&(i as u64).to_le_bytes());
                    value[8..16].copy_from_slice(&round.to_le_bytes());
                    records
                        .insert(("persist", id.as_str()), value.as_slice())
                        .unwrap();
                }
            }
            tx.commit().unwrap();
        });
    });
    group.finish();
    drop(db);
    let _ = std::fs::remove_dir_all(dir);
}

fn cached_rerun(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let (dir, store) = temp_store("rerun");
    let runner = Runner::new().store(store.clone());
    let (g, kept) = layered();
    let expected = *rt.block_on(runner.run(g)).unwrap().get(&kept);

    let mut group = c.benchmark_group("cached_rerun_10000");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements((LAYERS * WIDTH) as u64));
    group.bench_function("embedded", |b| {
        b.iter(|| {
            let (g, kept) = layered();
            let partial = rt.block_on(runner.run_partial(g)).unwrap();
            assert_eq!(partial.report.cached(), LAYERS * WIDTH);
            assert_eq!(partial.outputs.try_get(&kept), Some(&expected));
        });
    });
    group.finish();
    drop(runner);
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group!(benches, persist, redb_floor, cached_rerun);
criterion_main!(benches);
