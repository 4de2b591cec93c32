//! The expansion of `#[task]` and `dag!` is clean under `#![deny(warnings)]` and clippy's
//! pedantic lints in a user crate: CI runs clippy on this file with `-D warnings`.
#![deny(warnings, clippy::all, clippy::pedantic)]

use typedag::prelude::*;

/// A fetch error.
#[derive(Debug)]
pub struct FetchError;

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fetch failed")
    }
}

fn transient(_: &FetchError) -> bool {
    true
}

/// Fetches.
///
/// # Errors
/// When the network is down.
#[task(retries = 2, backoff = exponential("10ms", cap = "1s", jitter), timeout = "5s", retry_if = transient)]
pub async fn fetch(url: String) -> Result<String, FetchError> {
    Ok(url)
}

#[task(priority = 3, limit = 2, version = "1")]
async fn words(text: &str) -> Vec<String> {
    text.split('/').map(str::to_owned).collect()
}

#[task(cache = false)]
async fn count(words: &[String], extra: usize) -> usize {
    words.len() + extra
}

#[task]
async fn total(counts: Vec<usize>) -> usize {
    counts.iter().sum()
}

#[task]
async fn nothing() {}

/// Settings shared by tasks.
pub struct Settings {
    /// Added to every total.
    pub bonus: usize,
}

#[task]
async fn bonus(sum: &usize, settings: Res<Settings>) -> usize {
    sum + settings.bonus
}

/// Halves its state until it is odd.
///
/// # Errors
/// Never.
#[task(max = 64, retries = 1)]
pub async fn halve(n: &u64) -> Result<Loop<u64, u64>, FetchError> {
    Ok(if n.is_multiple_of(2) {
        Loop::Again(n / 2)
    } else {
        Loop::Done(*n)
    })
}

#[tokio::test]
async fn expansion_is_lint_clean() {
    let url = "https://example.org/a".to_owned();
    let graph = dag! {
        name = "lints";
        page = fetch(url);
        w = words(page);
        n = count(w, 1) with priority = 2, retries = 1, timeout = "1s", backoff = fixed("1ms");
        m = count(w, 2);
        sum = total([n, m]);
        done = nothing();
        more = bonus(sum);
        odd = halve(48u64) with max = 10;
        extra = signal::<usize>() with timeout = "5s", priority = 1;
        plus = total([sum, extra]);
    };
    let runner = Runner::in_memory().resource(Settings { bonus: 5 });
    runner.signals().send("extra", 4usize);
    let out = runner.run(graph).await.unwrap();
    assert_eq!(out.sum, 11);
    assert_eq!(out.more, 16);
    assert_eq!(out.plus, 15);
    let () = out.done;
    assert_eq!(out.odd, 3);
}
