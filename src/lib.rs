//! # typedag
//!
//! Typed, durable task graphs. Write ordinary `async fn`s, mark them [`#[task]`](task), wire
//! them in a [`dag!`] block, and run the graph with a [`Runner`]. The compiler checks every
//! edge: a wrong output type, a missing argument, a task that is not a task or a node used
//! before it exists is a compile error on your own code. Every finished output is stored
//! under a fingerprint of what produced it, so a rerun runs only what is missing or changed.
//!
//! (The examples here use [`Runner::in_memory`] so that they can run side by side;
//! [`Runner::new`] keeps its store in `./.typedag`.)
//!
//! ```
//! use typedag::prelude::*;
//!
//! #[task]
//! async fn fetch(url: String) -> String {
//!     format!("<a href='{url}/a'></a><a href='{url}/b'></a>")
//! }
//!
//! #[task(retries = 2)]
//! async fn parse(html: &String) -> Vec<String> {
//!     html.split("href='").skip(1).map(|s| s.split('\'').next().unwrap_or("").to_string()).collect()
//! }
//!
//! #[task(priority = 10)]
//! async fn count(links: &Vec<String>) -> usize {
//!     links.len()
//! }
//!
//! #[task]
//! async fn report(links: &Vec<String>, n: &usize, title: String) -> String {
//!     format!("{title}: {n} links, first {}", links[0])
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), typedag::Error> {
//! let url = "https://example.org".to_string();
//! let graph = dag! {
//!     page  = fetch(url);          // `url` comes from the enclosing scope: a constant input
//!     links = parse(page);         // `page` is a node above: its output flows in
//!     n     = count(links);
//!     text  = report(links, n, "Links".to_string());
//! };
//! let out = Runner::in_memory().run(graph).await?;
//! assert_eq!(out.text, "Links: 2 links, first https://example.org/a");
//! assert_eq!(out.n, 2);
//! # Ok(())
//! # }
//! ```
//!
//! ## Tasks
//!
//! `#[task]` leaves the function as it is (call and await it directly in a unit test) and adds
//! a companion struct of the same name that implements [`Task`]. A parameter `&T` borrows an
//! upstream output without copying it; a parameter `T` gets its own clone; a parameter
//! `Vec<T>` also takes a list of nodes, `[a, b, c]`, for fan-in. The return type is `T` or
//! `Result<T, E>`; an `Err` fails the attempt and drives retries.
//!
//! Options, all optional: `retries = 3`, `backoff = exponential("100ms", cap = "10s", jitter)`
//! (or `fixed(..)`, `linear(..)`), `timeout = "30s"` per attempt, `priority = 10`,
//! `limit = 4` (nodes of this task running at once), `version = "2"`, `cache = false`,
//! `retry_if = path::to::fn` (a `fn(&E) -> bool` that says whether an error is worth a retry).
//!
//! The code fingerprint is a hash of the function's own tokens, computed at compile time:
//! editing the body changes it, reformatting or editing comments does not. It cannot see
//! helper functions the task calls, crates it uses, or the outside world: give such tasks a
//! `version = "…"` and bump it when their behaviour changes, or `cache = false` when they must
//! always run.
//!
//! ## `dag!`
//!
//! A list of `name = task(args...);` statements. An argument is the name of a node declared
//! above (its output flows in), a list of such names in brackets (for a `Vec<T>` parameter),
//! or any Rust expression (a constant input, evaluated once when the graph is built; it must
//! implement `Serialize` because it is part of the node's fingerprint). A statement may end
//! with per-node settings: `n = count(links) with priority = 5, retries = 1, timeout = "1s";`.
//! An optional first line `name = "crawl";` names the graph, which scopes its cache keys;
//! without it the module path is used.
//!
//! Nodes can only use nodes declared above them, so a `dag!` graph is acyclic by construction.
//! After a run, each node's output is a field of the value `run` returns, by the node's name.
//!
//! A task that returns [`Loop<S, T>`](Loop) runs again on its own next state until it returns
//! `Loop::Done`: its first parameter of type `S` is its state, fed the initial state in
//! `dag!`, and its node's output is `T`. Each iteration's state is stored as it completes,
//! so a stopped loop resumes after its last stored iteration; `with max = 100` bounds it
//! ([`DEFAULT_MAX_ITERATIONS`] by default).
//!
//! `approve = signal::<Approval>() with timeout = "1h";` is a signal node: its value, typed,
//! comes from outside the graph under the node's name, sent by the program through
//! [`Runner::signals`] or into the store by `typedag signal GRAPH approve '<json>'`. The node
//! waits for it (holding no concurrency slot), then stores it like any output, so later runs
//! do not wait again; see [`Signals`].
//!
//! ## The builder
//!
//! For graphs whose shape is known only at run time, [`Graph`] is the typed builder `dag!`
//! expands to: [`Graph::add`] takes the task as a type parameter and one input per parameter
//! as a tuple, and returns a typed [`Node`] handle.
//!
//! ## Running
//!
//! [`Runner`] starts each node as soon as its own inputs are ready, runs independent nodes
//! concurrently on tokio (at most [`DEFAULT_CONCURRENCY`] at once unless
//! [`Runner::concurrency`] says otherwise), higher `priority` first among ready nodes. Outputs
//! are shared by reference and freed as soon as no pending node needs them. A task that
//! returns `Err`, panics or times out fails its attempt; once its retries are spent its
//! dependents are skipped, independent branches go on, and the run fails with a [`Report`]
//! that names every failed node and its error. The runner itself never panics.
//!
//! ## Caching
//!
//! A node's fingerprint hashes (BLAKE3) its task's full path (module path and name) and code
//! fingerprint, the shape of its output type, its constant inputs' bytes and its upstream
//! outputs' digests. A node whose stored record has the same fingerprint is loaded instead of
//! run ([`Event::Cached`], [`Outcome::Cached`]); otherwise the [`Reason`] says why it runs. A
//! node that runs again and produces the same bytes leaves its dependents cached. Each output
//! is committed to the store as its task completes, before its [`Event::Completed`]; failures
//! are recorded and retried on the next run. [`Runner::explain`] says what a run would do,
//! without running.
//!
//! ## Resources
//!
//! A parameter [`Res<T>`](Res) receives the value given to [`Runner::resource`], shared: an
//! HTTP client, a pool, settings. It is not wired in `dag!` and is not part of any
//! fingerprint; a graph whose tasks take a resource the runner lacks fails before any task
//! starts.
//!
//! ## Stores
//!
//! Stores: [`EmbeddedStore`] (the default, in `./.typedag`, or `TYPEDAG_STORE`),
//! [`MemoryStore`], none ([`Runner::without_store`]), or your own [`Store`]. With the
//! `postgres` feature, `PostgresStore` keeps the cache in a PostgreSQL database that every
//! process shares (`TYPEDAG_STORE=postgres://…`), and [`Runner::distributed`] splits one run
//! of a graph between all the processes that join it.

extern crate self as typedag;

pub use dag_macros::{dag, task};
pub use dag_runtime::*;

/// Everything a program using typedag needs: `use typedag::prelude::*;`.
pub mod prelude {
    pub use dag_macros::{dag, task};
    #[cfg(feature = "postgres")]
    pub use dag_runtime::PostgresStore;
    pub use dag_runtime::{
        Backoff, Cancel, EmbeddedStore, Error, Event, Graph, Kept, Loop, MemoryStore, Node,
        NodeState, Outcome, Outputs, Reason, Res, Runner, Task, Totals, each,
    };
}

/// serde, re-exported so that tasks' types can derive `Serialize` and `Deserialize` with
/// `#[derive(typedag::serde::Serialize)]` and `#[serde(crate = "typedag::serde")]`.
pub use dag_runtime::__private::serde;
