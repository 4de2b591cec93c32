//! Distributed: one graph split between several processes that share a PostgreSQL
//! database. Every process that runs the same graph under the same run name takes part;
//! each node runs once in all, and every process ends with the same outputs.
//!
//! On real machines, start PostgreSQL once, then the same program on each machine:
//!
//! ```text
//! export TYPEDAG_STORE=postgres://pipeline@db.internal/pipeline
//! TYPEDAG_RUN=nightly-2026-11-23 cargo run --example distributed
//! ```
//!
//! and watch it with `cargo run --bin typedag -- status --store $TYPEDAG_STORE`.
//!
//! Without `TYPEDAG_STORE`, the example shows the whole thing on this machine: it starts a
//! throwaway PostgreSQL (`initdb` and `pg_ctl` from `pg_config --bindir`), runs three
//! copies of itself against it, then a second run that finds everything cached.
//!
//! Run it with:
//!
//! ```text
//! cargo run --example distributed
//! ```
//!
//! Expected output:
//!
//! ```text
//! a throwaway PostgreSQL is up; starting 3 workers on run `nightly-1`
//! run nightly-1: 3 workers ran 81 nodes in all, each node once
//! run nightly-1: every worker reports 40 stations, warmest station-01 at 18.6 °C
//! run nightly-2: 3 workers ran 0 nodes, 81 cached
//! run nightly-2: every worker reports 40 stations, warmest station-01 at 18.6 °C
//! ```

#[path = "../tests/support/postgres.rs"]
mod postgres;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use typedag::prelude::*;
use typedag::serde::{Deserialize, Serialize};
use typedag::{Graph, Kept};

const STATIONS: u32 = 40;
const WORKERS: usize = 3;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(crate = "typedag::serde")]
struct Readings {
    station: String,
    tenths: Vec<i32>,
}

/// Downloads a day of readings (made up here, the same every time).
#[task(retries = 2)]
async fn fetch(station: u32) -> Readings {
    tokio::time::sleep(Duration::from_millis(20)).await;
    let tenths = (0..24)
        .map(|h| {
            let x = i32::try_from(station * 31 + h * 7).unwrap_or(0);
            120 + (x % 97) + i32::try_from(h).unwrap_or(0)
        })
        .collect();
    Readings {
        station: format!("station-{station:02}"),
        tenths,
    }
}

/// The day's mean, in tenths of a degree.
#[task]
async fn mean(readings: &Readings) -> (String, i32) {
    tokio::time::sleep(Duration::from_millis(10)).await;
    let n = i32::try_from(readings.tenths.len()).unwrap_or(1).max(1);
    (
        readings.station.clone(),
        readings.tenths.iter().sum::<i32>() / n,
    )
}

/// The warmest station of all.
#[task]
async fn report(means: Vec<(String, i32)>) -> String {
    let (station, tenths) = means
        .iter()
        .max_by_key(|(name, t)| (*t, std::cmp::Reverse(name.clone())))
        .cloned()
        .unwrap_or_default();
    format!(
        "{} stations, warmest {station} at {}.{} °C",
        means.len(),
        tenths / 10,
        tenths % 10
    )
}

fn graph() -> (Graph, Kept<String>) {
    let mut graph = Graph::new("weather");
    let mut means = Vec::new();
    for s in 0..STATIONS {
        let readings = graph.add::<fetch>(format!("fetch-{s:02}"), (s,)).unwrap();
        means.push(
            graph
                .add::<mean>(format!("mean-{s:02}"), (readings,))
                .unwrap(),
        );
    }
    let report = graph.add::<report>("report", (means,)).unwrap();
    let kept = graph.keep(report);
    (graph, kept)
}

/// One worker: `TYPEDAG_STORE` and `TYPEDAG_RUN` come from the environment.
async fn worker() -> Result<(), typedag::Error> {
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = ran.clone();
    let runner = Runner::new()
        .concurrency(4)
        .cancel_on_ctrl_c()
        .on_event(move |event, _| {
            if let Event::Completed { .. } = event {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
    let (graph, kept) = graph();
    let partial = runner.run_partial(graph).await?;
    let cached = partial.report.cached();
    let text = partial.outputs.try_get(&kept).cloned().unwrap_or_default();
    println!("ran {}", ran.load(Ordering::Relaxed));
    println!("cached {cached}");
    println!("report {text}");
    if !partial.report.is_success() {
        eprintln!("{}", partial.report);
    }
    Ok(())
}

/// Runs `WORKERS` copies of this program on run `name` and sums up what they printed.
fn round(url: &str, name: &str) {
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .env("TYPEDAG_STORE", url)
                .env("TYPEDAG_RUN", name)
                .stdout(Stdio::piped())
                .spawn()
                .expect("start a worker")
        })
        .collect();
    let mut ran = 0;
    let mut cached = Vec::new();
    let mut reports = HashMap::new();
    for w in workers {
        let out = w.wait_with_output().expect("wait for a worker");
        assert!(out.status.success(), "a worker failed");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(n) = line.strip_prefix("ran ") {
                ran += n.parse::<usize>().unwrap_or(0);
            } else if let Some(n) = line.strip_prefix("cached ") {
                cached.push(n.parse::<usize>().unwrap_or(0));
            } else if let Some(r) = line.strip_prefix("report ") {
                *reports.entry(r.to_owned()).or_insert(0) += 1;
            }
        }
    }
    let all = STATIONS as usize * 2 + 1;
    if ran == all {
        println!("run {name}: {WORKERS} workers ran {ran} nodes in all, each node once");
    } else {
        let cached = cached.iter().max().copied().unwrap_or(0);
        println!("run {name}: {WORKERS} workers ran {ran} nodes, {cached} cached");
    }
    match reports.len() {
        1 => {
            let (report, _) = reports.into_iter().next().unwrap();
            println!("run {name}: every worker reports {report}");
        }
        _ => println!("run {name}: the workers disagree: {reports:?}"),
    }
}

#[tokio::main]
async fn main() -> Result<(), typedag::Error> {
    if std::env::var("TYPEDAG_STORE").is_ok() {
        return worker().await;
    }
    let cluster = postgres::Cluster::start();
    let url = cluster.database("pipeline");
    println!("a throwaway PostgreSQL is up; starting {WORKERS} workers on run `nightly-1`");
    tokio::task::spawn_blocking(move || {
        round(&url, "nightly-1");
        round(&url, "nightly-2");
        drop(cluster);
    })
    .await
    .expect("the demo stopped");
    Ok(())
}
