//! What sharing a run between processes costs per node.
//!
//! A 100 × 100 layered graph of 10,000 trivial tasks (each reads two nodes of the layer
//! above), run to the end by worker processes (this benchmark's binary, started again):
//!
//! - `embedded`: one worker with the embedded store (durable, fsync'd): the baseline.
//! - `postgres/1`, `/2`, `/4`: 1, 2 and 4 workers sharing one distributed run in a
//!   PostgreSQL 15 that the benchmark starts on a loopback port, with durable commits
//!   (`fsync` and `synchronous_commit` on, as a production server has them).
//!
//! Every iteration is a new run with a new constant input in every node, so that nothing
//! is cached and every node runs and is recorded. Each worker runs at most 8 tasks at once.
//! The time includes starting the workers (about the same for every row). Coordination cost
//! per node = (time with PostgreSQL - embedded time) / 10,000.
//!
//! Run with:
//!
//! ```text
//! cargo bench --bench distributed
//! ```

#[path = "../tests/support/postgres.rs"]
mod postgres;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, Throughput};
use typedag::prelude::*;
use typedag::{EmbeddedStore, Graph, PostgresStore};

const LAYERS: usize = 100;
const WIDTH: usize = 100;

#[task]
async fn seed(i: u64, round: u64) -> u64 {
    i ^ round
}

/// Each node has its own constant `i`, so that no two nodes share a fingerprint (a shared
/// run computes a fingerprint once, which would make this benchmark do less work).
#[task]
async fn mix(a: &u64, b: &u64, i: u64, round: u64) -> u64 {
    a.wrapping_mul(31).wrapping_add(*b) ^ round ^ i.rotate_left(32)
}

fn layered(round: u64) -> Graph {
    let mut g = Graph::new("layered");
    let mut above: Vec<typedag::Node<u64>> = (0..WIDTH)
        .map(|i| g.add::<seed>(format!("0-{i}"), (i as u64, round)).unwrap())
        .collect();
    for layer in 1..LAYERS {
        above = (0..WIDTH)
            .map(|i| {
                let (a, b) = (above[i], above[(i + 1) % WIDTH]);
                let id = (layer * WIDTH + i) as u64;
                g.add::<mix>(format!("{layer}-{i}"), (a, b, id, round))
                    .unwrap()
            })
            .collect();
    }
    g
}

/// A worker: runs the graph of round `TD_ROUND` in `TD_STORE` (a directory, or a database
/// with run `TD_RUN`).
fn worker(store: &str) {
    let round: u64 = std::env::var("TD_ROUND").unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let runner = Runner::new().concurrency(8);
        let runner = if store.starts_with("postgres://") {
            let run = std::env::var("TD_RUN").unwrap();
            runner
                .store(PostgresStore::connect(store).await.unwrap())
                .distributed(run)
        } else {
            runner.store(EmbeddedStore::open(store).unwrap())
        };
        let report = runner.run_partial(layered(round)).await.unwrap().report;
        assert!(report.is_success(), "{report}");
        assert_eq!(report.cached(), 0, "nothing may be cached");
    });
}

static ROUND: AtomicU64 = AtomicU64::new(1);

/// Runs `n` workers on one new round and waits for them.
fn workers(store: &str, n: usize) {
    let round = ROUND.fetch_add(1, Ordering::Relaxed);
    let children: Vec<_> = (0..n)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .env("TD_STORE", store)
                .env("TD_ROUND", round.to_string())
                .env("TD_RUN", format!("bench-{}-{round}", std::process::id()))
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success(), "a worker failed");
    }
}

fn main() {
    if let Ok(store) = std::env::var("TD_STORE") {
        worker(&store);
        return;
    }
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(20))
        .configure_from_args();
    let dir = std::env::temp_dir().join(format!("typedag-bench-dist-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut group = c.benchmark_group("distributed_10000");
    group.throughput(Throughput::Elements((LAYERS * WIDTH) as u64));
    let embedded = dir.to_str().unwrap().to_owned();
    group.bench_function("embedded", |b| b.iter(|| workers(&embedded, 1)));
    let cluster = postgres::Cluster::start_durable();
    let url = cluster.database("bench");
    for n in [1, 2, 4] {
        group.bench_function(format!("postgres/{n}"), |b| b.iter(|| workers(&url, n)));
    }
    group.finish();
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
    c.final_summary();
}
