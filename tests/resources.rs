//! Resources: supplied by the runner by type, never wired, never part of a fingerprint.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use typedag::ResourceError;
use typedag::prelude::*;

/// A fake service client: counts the calls it serves.
struct Client {
    calls: AtomicUsize,
    prefix: String,
}

/// Settings tasks read.
struct Settings {
    factor: u64,
}

#[task]
async fn fetch(client: Res<Client>, id: u64) -> String {
    client.calls.fetch_add(1, Ordering::SeqCst);
    format!("{}{id}", client.prefix)
}

#[task]
async fn fetch_len(text: &str, client: Res<Client>) -> usize {
    client.calls.fetch_add(1, Ordering::SeqCst);
    text.len()
}

#[task]
async fn scale(n: &usize, settings: Res<Settings>) -> u64 {
    *n as u64 * settings.factor
}

fn client(prefix: &str) -> Client {
    Client {
        calls: AtomicUsize::new(0),
        prefix: prefix.into(),
    }
}

#[tokio::test]
async fn two_tasks_share_one_resource() {
    let shared = std::sync::Arc::new(client("item-"));
    let runner = Runner::in_memory()
        .resource_arc(shared.clone())
        .resource(Settings { factor: 10 });
    let out = runner
        .run(dag! { name = "shared"; t = fetch(7); n = fetch_len(t); s = scale(n); })
        .await
        .unwrap();
    assert_eq!(out.t, "item-7");
    assert_eq!(out.s, 60);
    assert_eq!(
        shared.calls.load(Ordering::SeqCst),
        2,
        "one client served both tasks"
    );
}

#[tokio::test]
async fn a_resource_never_enters_a_fingerprint() {
    let store = MemoryStore::new();
    let g = || dag! { name = "fp"; t = fetch(1); n = fetch_len(t); s = scale(n); };
    Runner::new()
        .store(store.clone())
        .resource(client("a-"))
        .resource(Settings { factor: 2 })
        .run(g())
        .await
        .unwrap();
    // Other contents in both resources: every node stays cached, with its old output.
    let again = Runner::new()
        .store(store.clone())
        .resource(client("b-"))
        .resource(Settings { factor: 1000 })
        .run_partial(g())
        .await
        .unwrap();
    assert_eq!(again.report.cached(), 3, "{}", again.report);
    assert_eq!(again.outputs.t.as_deref(), Some("a-1"));
    assert_eq!(again.outputs.s, Some(6));
}

static STARTED: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[task]
async fn noted(x: u64) -> u64 {
    STARTED.lock().unwrap().push(format!("noted {x}"));
    x
}

#[tokio::test]
async fn missing_resources_fail_the_run_before_any_task_starts() {
    let graph =
        dag! { name = "missing"; a = noted(1); t = fetch(2); n = fetch_len(t); s = scale(n); };
    let err = Runner::in_memory().run(graph).await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(&err, typedag::Error::Resource(ResourceError::Missing { missing }) if missing.len() == 3),
        "{text}"
    );
    assert!(
        text.contains("task `fetch` takes `Res<resources::Client>`"),
        "{text}"
    );
    assert!(
        text.contains("task `fetch_len` takes `Res<resources::Client>`"),
        "{text}"
    );
    assert!(
        text.contains("task `scale` takes `Res<resources::Settings>`"),
        "{text}"
    );
    assert!(text.contains("Runner::resource"), "{text}");
    assert!(STARTED.lock().unwrap().is_empty(), "nothing started");
}

#[tokio::test]
async fn two_resources_of_one_type_are_a_clear_error() {
    let err = Runner::in_memory()
        .resource(Settings { factor: 1 })
        .resource(Settings { factor: 2 })
        .run(dag! { name = "twice"; a = noted(5); })
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            typedag::Error::Resource(ResourceError::Duplicate { .. })
        ),
        "{text}"
    );
    assert!(
        text.contains("two resources of type `resources::Settings`") && text.contains("newtype"),
        "{text}"
    );
}

#[tokio::test]
async fn a_task_with_a_resource_is_still_an_ordinary_function() {
    let c = Res::new(client("x-"));
    assert_eq!(fetch(c.clone(), 3).await, "x-3");
    assert_eq!(c.calls.load(Ordering::SeqCst), 1);
}

/// A service behind a trait, so that tests can swap it.
trait Mailer: Send + Sync {
    fn send(&self, to: &str) -> String;
}

struct FakeMailer;

impl Mailer for FakeMailer {
    fn send(&self, to: &str) -> String {
        format!("queued for {to}")
    }
}

#[task(cache = false)]
async fn notify(mailer: Res<dyn Mailer>, to: String) -> String {
    mailer.send(&to)
}

#[tokio::test]
async fn a_resource_can_be_a_trait_object() {
    let runner = Runner::in_memory().resource_arc::<dyn Mailer>(std::sync::Arc::new(FakeMailer));
    let out = runner
        .run(dag! { name = "mail"; m = notify("ops"); })
        .await
        .unwrap();
    assert_eq!(out.m, "queued for ops");
}

#[tokio::test]
async fn the_builder_leaves_resources_out_of_its_inputs() {
    let mut graph = Graph::new("built");
    let t = graph.add::<fetch>("t", (9u64,)).unwrap();
    let n = graph.add::<fetch_len>("n", (t,)).unwrap();
    let n = graph.keep(n);
    let out = Runner::in_memory()
        .resource(client("id-"))
        .run(graph)
        .await
        .unwrap();
    assert_eq!(*out.get(&n), 4);
}
