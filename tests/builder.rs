//! The typed builder: graphs shaped at run time, fan-in over many nodes, clear errors.

use typedag::prelude::*;
use typedag::{Error, GraphError};

#[task]
async fn seed(i: u64) -> u64 {
    i
}

#[task]
async fn double(x: &u64) -> u64 {
    x * 2
}

#[task]
async fn sum(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

#[tokio::test]
async fn a_thousand_nodes_built_in_a_loop_fan_into_one() {
    let mut graph = Graph::new("thousand");
    let mut doubled = Vec::new();
    for i in 0..1000u64 {
        let s = graph.add::<seed>(format!("seed-{i}"), (i,)).unwrap();
        doubled.push(graph.add::<double>(format!("double-{i}"), (s,)).unwrap());
    }
    let total = graph.add::<sum>("sum", (doubled,)).unwrap();
    let total = graph.keep(total);
    assert_eq!(graph.len(), 2001);

    let mut out = Runner::in_memory()
        .concurrency(16)
        .run(graph)
        .await
        .unwrap();
    assert_eq!(*out.get(&total), 2 * (0..1000).sum::<u64>());
    assert_eq!(out.take(&total), Some(999_000));
    assert_eq!(out.take(&total), None, "an output is taken once");
}

#[test]
fn a_duplicate_id_is_a_clear_error() {
    let mut graph = Graph::new("dupes");
    graph.add::<seed>("a", (1,)).unwrap();
    let err = graph.add::<seed>("a", (2,)).unwrap_err();
    assert_eq!(
        err,
        GraphError::DuplicateId {
            graph: "dupes".into(),
            id: "a".into()
        }
    );
    let text = err.to_string();
    assert!(text.contains("already has a node with id `a`"), "{text}");
    assert!(text.contains("give this node another id"), "{text}");
    assert_eq!(graph.len(), 1);
}

#[test]
fn a_node_of_another_graph_is_a_clear_error() {
    let mut one = Graph::new("one");
    let mut two = Graph::new("two");
    let a = one.add::<seed>("a", (1,)).unwrap();
    let err = two.add::<double>("b", (a,)).unwrap_err();
    assert!(
        matches!(err, GraphError::ForeignNode { param: 0, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("a node of another graph"), "{err}");
}

#[tokio::test]
async fn node_settings_override_the_task() {
    use std::sync::atomic::{AtomicU32, Ordering};
    static CALLS: AtomicU32 = AtomicU32::new(0);

    #[task]
    async fn flaky() -> Result<u32, String> {
        let n = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
        if n < 3 {
            Err(format!("attempt {n} failed"))
        } else {
            Ok(n)
        }
    }

    let mut graph = Graph::new("settings");
    let f = graph.add::<flaky>("flaky", ()).unwrap();
    graph
        .configure(&f)
        .retries(2)
        .backoff(Backoff::fixed(std::time::Duration::from_millis(1)));
    let f = graph.keep(f);
    let out = Runner::in_memory().run(graph).await.unwrap();
    assert_eq!(*out.get(&f), 3);
}

#[tokio::test]
async fn outputs_not_kept_are_not_handed_back() {
    let mut graph = Graph::new("kept");
    let a = graph.add::<seed>("a", (1,)).unwrap();
    let b = graph.add::<double>("b", (a,)).unwrap();
    let b = graph.keep(b);
    let out = Runner::in_memory().run(graph).await.unwrap();
    assert_eq!(*out.get(&b), 2);
    assert_eq!(format!("{out:?}"), "Outputs(1 kept)");
}

#[test]
fn running_outside_tokio_is_a_clear_error() {
    let mut graph = Graph::new("no-runtime");
    graph.add::<seed>("a", (1,)).unwrap();
    let err = futures::executor::block_on(Runner::in_memory().run(graph)).unwrap_err();
    assert!(matches!(err, Error::NoRuntime));
    assert!(err.to_string().contains("inside a runtime"), "{err}");
}

#[tokio::test]
async fn an_empty_graph_runs() {
    let graph = Graph::new("empty");
    assert!(graph.is_empty());
    Runner::in_memory().run(graph).await.unwrap();
}
