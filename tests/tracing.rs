//! Every attempt runs in a `typedag.attempt` span carrying the node id, task and attempt,
//! and for an item of a map node, its position in the list.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use typedag::prelude::*;

/// Records the spans opened, as `name node task attempt`.
#[derive(Default)]
struct Spans {
    seen: Mutex<Vec<String>>,
    next: AtomicU64,
}

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.push_str(&format!(" {}={value}", field.name()));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push_str(&format!(" {}={value}", field.name()));
    }
}

impl Subscriber for Spans {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = Fields(span.metadata().name().to_owned());
        span.record(&mut fields);
        self.seen.lock().unwrap().push(fields.0);
        Id::from_u64(self.next.fetch_add(1, Ordering::SeqCst) + 1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

static CALLS: AtomicU32 = AtomicU32::new(0);

#[task(retries = 1, backoff = fixed("1ms"))]
async fn second_time_lucky() -> Result<u32, String> {
    if CALLS.fetch_add(1, Ordering::SeqCst) == 0 {
        Err("unlucky".into())
    } else {
        Ok(7)
    }
}

/// Runs `run` on a current-thread runtime under a subscriber that records spans, and hands
/// back its result with the `typedag.attempt` spans opened, in order.
fn with_spans<T>(run: impl std::future::Future<Output = T>) -> (T, Vec<String>) {
    let spans = Arc::new(Spans::default());
    let dispatch = tracing::Dispatch::from(spans.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let out = tracing::dispatcher::with_default(&dispatch, || rt.block_on(run));
    let seen = spans.seen.lock().unwrap();
    let attempts = seen
        .iter()
        .filter(|s| s.starts_with("typedag.attempt"))
        .cloned()
        .collect();
    (out, attempts)
}

#[test]
fn each_attempt_has_a_span_with_node_task_and_attempt() {
    let (out, attempts) =
        with_spans(Runner::in_memory().run(dag! { lucky = second_time_lucky(); }));
    assert_eq!(out.unwrap().lucky, 7);
    assert_eq!(
        attempts,
        [
            "typedag.attempt node=lucky task=second_time_lucky attempt=1",
            "typedag.attempt node=lucky task=second_time_lucky attempt=2",
        ]
    );
}

#[task]
async fn pages() -> Vec<u32> {
    vec![10, 20]
}

#[task]
async fn fetch(page: &u32) -> u32 {
    page + 1
}

#[test]
fn an_item_of_a_map_node_has_its_position_in_the_span() {
    let (out, mut attempts) = with_spans(Runner::in_memory().run(dag! {
        list = pages();
        fetched = fetch(each list);
    }));
    assert_eq!(out.unwrap().fetched, [11, 21]);
    attempts.sort();
    assert_eq!(
        attempts,
        [
            "typedag.attempt node=fetched item=0 task=fetch attempt=1",
            "typedag.attempt node=fetched item=1 task=fetch attempt=1",
            "typedag.attempt node=list task=pages attempt=1",
        ]
    );
}
