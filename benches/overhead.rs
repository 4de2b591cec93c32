//! Per-task overhead of typedag, side by side with [dagx](https://crates.io/crates/dagx) 0.3.
//!
//! Every task is trivial (an add or a sum of `u64`s), so the time measured is the cost of the
//! library itself: building the graph *and* running it, both inside the measured closure, on
//! one tokio multi-thread runtime created once (`rt.block_on(..)` per iteration). Each
//! iteration checks the final value, so a broken run cannot pass for a fast one.
//!
//! Three shapes, each a criterion group with a `typedag` and a `dagx` benchmark:
//!
//! - `chain_10000`: a source and 9,999 tasks in a line, each taking the previous output
//!   `&u64` and returning it + 1 (10,000 nodes for both libraries).
//! - `fanout_10000`: one source, 10,000 nodes that each read it, and a fan-in of all 10,000
//!   outputs. typedag: the fan-in is one node with a `Vec<u64>` parameter fed by a
//!   `Vec<Node<u64>>` (10,002 nodes). dagx has no list-of-dependencies input (`depends_on`
//!   takes a handle or a tuple of at most 8 handles), so its fan-in is a tree of 8-ary sum
//!   tasks instead (2- to 7-ary for the leftover chunk of a level): 1,250 + 157 + 20 + 3 + 1
//!   = 1,431 sum nodes, 11,432 nodes in all, and 5 reduction levels instead of 1.
//! - `layered_100x100`: 100 layers of 100 nodes. Layer 0 nodes are sources taking a constant
//!   (node i takes i); node i of layer k > 0 sums (wrapping) nodes i, (i+1)%100 and, for even
//!   i, (i+2)%100 of layer k-1. Identical wiring for both libraries (10,000 nodes).
//!
//! - `two_chains_uneven`: two independent chains of two sleeping tasks, 100 ms then 10 ms,
//!   and 10 ms then 100 ms. A runner that starts each node when its own input is ready
//!   finishes in the critical path, ~110 ms; one that runs layer by layer needs ~200 ms.
//!
//! typedag tasks are `#[task(cache = false)]` async fns run by a `Runner` without a store
//! (dagx has none; `benches/store.rs` measures the store), with events delivered to a
//! callback and a retry policy set, as a real program would run them; dagx tasks are `#[task]` impl blocks (its public API), spawned with
//! `dag.run(|fut| { tokio::spawn(fut); })` as its README shows.
//!
//! Run with:
//!
//! ```text
//! cargo bench --bench overhead
//! ```
//!
//! Reading the results: criterion prints the time per iteration (one build + run of the
//! whole graph) and, from `Throughput::Elements`, nodes per second. The overhead per task is
//! time per iteration / number of nodes, e.g. 5 ms for 10,000 nodes is 500 ns/task. Each
//! benchmark's throughput is the number of nodes *that library* runs, so for `fanout_10000`
//! dagx's elements/s counts its 1,431 extra sum nodes too.

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;

/// Nodes in the chain, source included.
const CHAIN: usize = 10_000;
/// Nodes reading the source in the fan-out.
const FANOUT: usize = 10_000;
/// Layers of the layered graph.
const LAYERS: usize = 100;
/// Nodes per layer of the layered graph.
const WIDTH: usize = 100;
/// Most dependencies a dagx task can take.
const DAGX_MAX_DEPS: usize = 8;

/// The source value of the fan-out; every reader adds one to it.
const FANOUT_SOURCE: u64 = 1;
const FANOUT_SUM: u64 = FANOUT as u64 * (FANOUT_SOURCE + 1);
const CHAIN_LAST: u64 = CHAIN as u64 - 1;

/// The nodes of the layer above that node `i` reads: its own column, the next and, for even
/// `i`, the one after that.
fn parents(i: usize) -> (usize, usize, Option<usize>) {
    let third = i.is_multiple_of(2).then_some((i + 2) % WIDTH);
    (i, (i + 1) % WIDTH, third)
}

/// The wrapping sum of the last layer of the layered graph, computed without either library.
fn layered_expected() -> u64 {
    let mut layer: Vec<u64> = (0..WIDTH as u64).collect();
    for _ in 1..LAYERS {
        layer = (0..WIDTH)
            .map(|i| {
                let (a, b, c) = parents(i);
                let ab = layer[a].wrapping_add(layer[b]);
                c.map_or(ab, |c| ab.wrapping_add(layer[c]))
            })
            .collect();
    }
    layer.iter().fold(0, |acc, v| acc.wrapping_add(*v))
}

/// How many nodes the dagx fan-out has: source, readers and the tree of sums.
const fn dagx_fanout_nodes() -> usize {
    let mut nodes = 1 + FANOUT;
    let mut level = FANOUT;
    while level > 1 {
        let next = level.div_ceil(DAGX_MAX_DEPS);
        // A chunk of one is passed through, not summed.
        let single = (level % DAGX_MAX_DEPS == 1) as usize;
        nodes += next - single;
        level = next;
    }
    nodes
}
// The count the header states.
const _: () = assert!(dagx_fanout_nodes() == 11_432);

mod typedag_graphs {
    use typedag::prelude::*;

    use super::{CHAIN, FANOUT, FANOUT_SOURCE, LAYERS, WIDTH, parents};

    #[task(cache = false)]
    async fn source(x: u64) -> u64 {
        x
    }

    #[task(cache = false)]
    async fn inc(x: &u64) -> u64 {
        x + 1
    }

    #[task(cache = false)]
    async fn sum(xs: Vec<u64>) -> u64 {
        xs.iter().sum()
    }

    #[task(cache = false)]
    async fn add2(a: &u64, b: &u64) -> u64 {
        a.wrapping_add(*b)
    }

    #[task(cache = false)]
    async fn add3(a: &u64, b: &u64, c: &u64) -> u64 {
        a.wrapping_add(*b).wrapping_add(*c)
    }

    #[task(cache = false)]
    async fn nap(ms: u64) -> u64 {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        ms
    }

    #[task(cache = false)]
    async fn nap_after(prev: &u64, ms: u64) -> u64 {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        prev + ms
    }

    /// The runner as a real program configures it: events to a callback, a retry policy.
    fn runner() -> Runner {
        Runner::new()
            .without_store()
            .retries(2)
            .backoff(Backoff::exponential(std::time::Duration::from_millis(10)))
            .on_event(|event, totals| {
                std::hint::black_box((event, totals));
            })
    }

    pub async fn two_chains() -> u64 {
        let graph = dag! {
            a1 = nap(100);
            b1 = nap(10);
            a2 = nap_after(a1, 10);
            b2 = nap_after(b1, 100);
        };
        let out = runner().run(graph).await.unwrap();
        out.a2 + out.b2
    }

    pub async fn chain() -> u64 {
        let mut g = Graph::new("chain");
        let mut prev = g.add::<source>("n0", (0u64,)).unwrap();
        for i in 1..CHAIN {
            prev = g.add::<inc>(format!("n{i}"), (prev,)).unwrap();
        }
        let last = g.keep(prev);
        let out = runner().run(g).await.unwrap();
        *out.get(&last)
    }

    pub async fn fanout() -> u64 {
        let mut g = Graph::new("fanout");
        let src = g.add::<source>("src", (FANOUT_SOURCE,)).unwrap();
        let readers: Vec<Node<u64>> = (0..FANOUT)
            .map(|i| g.add::<inc>(format!("n{i}"), (src,)).unwrap())
            .collect();
        let total = g.add::<sum>("sum", (readers,)).unwrap();
        let total = g.keep(total);
        let out = runner().run(g).await.unwrap();
        *out.get(&total)
    }

    pub async fn layered() -> u64 {
        let mut g = Graph::new("layered");
        let mut layer: Vec<Node<u64>> = (0..WIDTH)
            .map(|i| g.add::<source>(format!("l0-{i}"), (i as u64,)).unwrap())
            .collect();
        for k in 1..LAYERS {
            layer = (0..WIDTH)
                .map(|i| {
                    let id = format!("l{k}-{i}");
                    match parents(i) {
                        (a, b, Some(c)) => g.add::<add3>(id, (layer[a], layer[b], layer[c])),
                        (a, b, None) => g.add::<add2>(id, (layer[a], layer[b])),
                    }
                    .unwrap()
                })
                .collect();
        }
        let last: Vec<Kept<u64>> = layer.into_iter().map(|n| g.keep(n)).collect();
        let out = runner().run(g).await.unwrap();
        last.iter().fold(0, |acc, k| acc.wrapping_add(*out.get(k)))
    }
}

mod dagx_graphs {
    use dagx::{DagRunner, Task, TaskHandle, task};

    use super::{CHAIN, DAGX_MAX_DEPS, FANOUT, FANOUT_SOURCE, LAYERS, WIDTH, parents};

    struct Source(u64);

    #[task]
    impl Source {
        async fn run(&self) -> u64 {
            self.0
        }
    }

    struct Nap(u64);

    #[task]
    impl Nap {
        async fn run(&self) -> u64 {
            tokio::time::sleep(std::time::Duration::from_millis(self.0)).await;
            self.0
        }
    }

    struct NapAfter(u64);

    #[task]
    impl NapAfter {
        async fn run(&self, prev: &u64) -> u64 {
            tokio::time::sleep(std::time::Duration::from_millis(self.0)).await;
            prev + self.0
        }
    }

    pub async fn two_chains() -> u64 {
        let dag = DagRunner::new();
        let a1 = dag.add_task(Nap(100));
        let b1 = dag.add_task(Nap(10));
        let a2 = dag.add_task(NapAfter(10)).depends_on(&a1);
        let b2 = dag.add_task(NapAfter(100)).depends_on(&b1);
        run(&dag).await;
        dag.get(a2).unwrap() + dag.get(b2).unwrap()
    }

    struct Inc;

    #[task]
    impl Inc {
        async fn run(x: &u64) -> u64 {
            x + 1
        }
    }

    struct Add2;

    #[task]
    impl Add2 {
        async fn run(a: &u64, b: &u64) -> u64 {
            a.wrapping_add(*b)
        }
    }

    struct Add3;

    #[task]
    impl Add3 {
        async fn run(a: &u64, b: &u64, c: &u64) -> u64 {
            a.wrapping_add(*b).wrapping_add(*c)
        }
    }

    /// `SumN`: the sum of N dependencies, for the fan-in tree.
    macro_rules! sum_tasks {
        ($($name:ident($($x:ident),+);)+) => {$(
            struct $name;

            #[task]
            impl $name {
                #[allow(clippy::too_many_arguments, reason = "dagx: one parameter per dependency")]
                async fn run($($x: &u64),+) -> u64 {
                    0 $(+ *$x)+
                }
            }
        )+};
    }

    sum_tasks! {
        Sum4(a, b, c, d);
        Sum5(a, b, c, d, e);
        Sum6(a, b, c, d, e, f);
        Sum7(a, b, c, d, e, f, g);
        Sum8(a, b, c, d, e, f, g, h);
    }

    /// Reduces `level` to one handle with sums of at most 8 dependencies per node.
    fn sum_tree(dag: &DagRunner, mut level: Vec<TaskHandle<u64>>) -> TaskHandle<u64> {
        while level.len() > 1 {
            level = level
                .chunks(DAGX_MAX_DEPS)
                .map(|chunk| match chunk {
                    [a] => *a,
                    [a, b] => dag.add_task(Add2).depends_on((a, b)),
                    [a, b, c] => dag.add_task(Add3).depends_on((a, b, c)),
                    [a, b, c, d] => dag.add_task(Sum4).depends_on((a, b, c, d)),
                    [a, b, c, d, e] => dag.add_task(Sum5).depends_on((a, b, c, d, e)),
                    [a, b, c, d, e, f] => dag.add_task(Sum6).depends_on((a, b, c, d, e, f)),
                    [a, b, c, d, e, f, g] => dag.add_task(Sum7).depends_on((a, b, c, d, e, f, g)),
                    [a, b, c, d, e, f, g, h] => {
                        dag.add_task(Sum8).depends_on((a, b, c, d, e, f, g, h))
                    }
                    _ => unreachable!("chunks of 1 to {DAGX_MAX_DEPS}"),
                })
                .collect();
        }
        level[0]
    }

    async fn run(dag: &DagRunner) {
        dag.run(|fut| {
            tokio::spawn(fut);
        })
        .await
        .unwrap();
    }

    pub async fn chain() -> u64 {
        let dag = DagRunner::new();
        let mut prev: TaskHandle<u64> = dag.add_task(Source(0)).into();
        for _ in 1..CHAIN {
            prev = dag.add_task(Inc).depends_on(prev);
        }
        run(&dag).await;
        dag.get(prev).unwrap()
    }

    pub async fn fanout() -> u64 {
        let dag = DagRunner::new();
        let src: TaskHandle<u64> = dag.add_task(Source(FANOUT_SOURCE)).into();
        let readers: Vec<TaskHandle<u64>> = (0..FANOUT)
            .map(|_| dag.add_task(Inc).depends_on(src))
            .collect();
        let total = sum_tree(&dag, readers);
        run(&dag).await;
        dag.get(total).unwrap()
    }

    pub async fn layered() -> u64 {
        let dag = DagRunner::new();
        let mut layer: Vec<TaskHandle<u64>> = (0..WIDTH)
            .map(|i| dag.add_task(Source(i as u64)).into())
            .collect();
        for _ in 1..LAYERS {
            layer = (0..WIDTH)
                .map(|i| match parents(i) {
                    (a, b, Some(c)) => dag
                        .add_task(Add3)
                        .depends_on((&layer[a], &layer[b], &layer[c])),
                    (a, b, None) => dag.add_task(Add2).depends_on((&layer[a], &layer[b])),
                })
                .collect();
        }
        run(&dag).await;
        layer
            .iter()
            .fold(0, |acc, h| acc.wrapping_add(dag.get(h).unwrap()))
    }
}

/// A group with a short run: the machine is small and CI only compiles benches.
fn short_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group
}

fn overhead(c: &mut Criterion) {
    let rt = Runtime::new().expect("a tokio runtime");

    let mut group = short_group(c, "chain_10000");
    group.throughput(Throughput::Elements(CHAIN as u64));
    group.bench_function("typedag", |b| {
        b.iter(|| assert_eq!(rt.block_on(typedag_graphs::chain()), CHAIN_LAST));
    });
    group.bench_function("dagx", |b| {
        b.iter(|| assert_eq!(rt.block_on(dagx_graphs::chain()), CHAIN_LAST));
    });
    group.finish();

    let mut group = short_group(c, "fanout_10000");
    group.throughput(Throughput::Elements(FANOUT as u64 + 2));
    group.bench_function("typedag", |b| {
        b.iter(|| assert_eq!(rt.block_on(typedag_graphs::fanout()), FANOUT_SUM));
    });
    group.throughput(Throughput::Elements(dagx_fanout_nodes() as u64));
    group.bench_function("dagx", |b| {
        b.iter(|| assert_eq!(rt.block_on(dagx_graphs::fanout()), FANOUT_SUM));
    });
    group.finish();

    let expected = layered_expected();
    let mut group = short_group(c, "layered_100x100");
    group.throughput(Throughput::Elements((LAYERS * WIDTH) as u64));
    group.bench_function("typedag", |b| {
        b.iter(|| assert_eq!(rt.block_on(typedag_graphs::layered()), expected));
    });
    group.bench_function("dagx", |b| {
        b.iter(|| assert_eq!(rt.block_on(dagx_graphs::layered()), expected));
    });
    group.finish();

    let mut group = short_group(c, "two_chains_uneven");
    group.bench_function("typedag", |b| {
        b.iter(|| assert_eq!(rt.block_on(typedag_graphs::two_chains()), 220));
    });
    group.bench_function("dagx", |b| {
        b.iter(|| assert_eq!(rt.block_on(dagx_graphs::two_chains()), 220));
    });
    group.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);
