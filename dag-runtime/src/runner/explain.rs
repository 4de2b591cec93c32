//! What a run of a graph would do with each node, without running anything.

use std::sync::Arc;

use super::condition::{bool_of_digest, not_run_digest};
use super::item_keys::{Encoded, match_items};
use super::plan::{fixed_parts, upstream_of};
use super::{Pending, Runner, item_index, item_log, iterate};
use crate::cache::{Digest, Fingerprint, InputDigest, Reason, Stamp, Upstream, Verdict, verdict};
use crate::error::Error;
use crate::error::GraphError;
use crate::graph::{Graph, NodeSpec, Source};
use crate::ids::NodeIds;

impl Runner {
    /// Says, without running anything, what a run of `graph` would do with each node: load
    /// it from the store, run it (and why), or run it only if an upstream node that runs
    /// produces other bytes than last time.
    ///
    /// ```
    /// use typedag::prelude::*;
    ///
    /// #[task]
    /// async fn load(n: u32) -> u32 { n }
    ///
    /// #[task]
    /// async fn double(x: &u32) -> u32 { x * 2 }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), typedag::Error> {
    /// let runner = Runner::in_memory();
    /// runner.run(dag! { a = load(1); b = double(a); }).await?;
    ///
    /// let plan = runner.explain(&dag! { a = load(2); b = double(a); }).await?;
    /// assert_eq!(plan.node("a"), Some(&NodeState::Runs(Reason::InputChanged)));
    /// assert_eq!(plan.node("b"), Some(&NodeState::Waits { on: "a".into() }));
    /// println!("{plan}");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn explain<O>(&self, graph: &Graph<O>) -> Result<Explanation, Error> {
        self.explain_nodes(&graph.name, &graph.nodes, &graph.ids, graph.error.as_ref())
            .await
    }

    /// [`explain`](Runner::explain)'s body: not generic, and boxed, so that it is compiled
    /// once, here, rather than in every crate that calls it.
    fn explain_nodes<'a>(
        &'a self,
        name: &'a str,
        nodes: &'a [NodeSpec],
        ids: &'a NodeIds,
        error: Option<&'a GraphError>,
    ) -> Pending<'a, Explanation> {
        Box::pin(async move {
            self.check_graph(error)?;
            let store = self.open_store().await?;
            let stamps = match &store {
                Some(s) => s.stamps(name, Arc::new(ids.clone())).await?.stamps,
                None => Vec::new(),
            };
            let n = nodes.len();
            let mut states: Vec<NodeState> = Vec::with_capacity(n);
            // What each node's output digest will be: known (cached), unknown until it runs
            // (by the id of the node that decides), or none at all.
            let mut digests: Vec<Result<Digest, Option<String>>> = Vec::with_capacity(n);
            let mut scratch = Vec::new();
            // The fingerprint each loop node that runs would record, when it is known.
            let mut loops: Vec<(usize, Fingerprint)> = Vec::new();
            for (i, spec) in nodes.iter().enumerate() {
                if let Some(state) = unmet(spec, nodes, &states, &digests) {
                    let settled = matches!(state, NodeState::NotRun { .. });
                    states.push(state);
                    digests.push(if settled {
                        Ok(not_run_digest())
                    } else {
                        Err(Some(spec.id.to_string()))
                    });
                    continue;
                }
                let parts = store.as_ref().and_then(|_| fixed_parts(spec));
                let upstream = upstream_of(
                    spec,
                    |j| match &digests[j] {
                        Ok(d) => InputDigest::Known(d),
                        Err(Some(on)) => InputDigest::Pending(on),
                        Err(None) => InputDigest::Missing,
                    },
                    &mut scratch,
                );
                let record = stamps.get(i).and_then(Option::as_ref);
                let known = matches!(upstream, Upstream::Known(_));
                let (state, digest) = match verdict(parts.as_ref(), record, upstream) {
                    Verdict::Cached(d) => (NodeState::Cached, Ok(d)),
                    Verdict::Run(reason, Some(fp)) if spec.meta.looping.is_some() && known => {
                        loops.push((i, fp));
                        (NodeState::Runs(reason), Err(Some(spec.id.to_string())))
                    }
                    Verdict::Run(reason, _) if spec.meta.codec.is_some() => {
                        (NodeState::Runs(reason), Err(Some(spec.id.to_string())))
                    }
                    Verdict::Run(reason, _) => (NodeState::Runs(reason), Err(None)),
                    Verdict::Waits(on) => (NodeState::Waits { on: on.clone() }, Err(Some(on))),
                };
                states.push(state);
                digests.push(digest);
            }
            // A map node that runs over a list the store holds: which of its items would.
            let mut items = vec![None; n];
            if let Some(store) = &store {
                for (i, spec) in nodes.iter().enumerate() {
                    if spec.map && matches!(states[i], NodeState::Runs(_)) {
                        items[i] = plan_items(
                            store.as_ref(),
                            name,
                            nodes,
                            i,
                            stamps.get(i).and_then(Option::as_ref),
                            &digests,
                        )
                        .await;
                    }
                }
            }
            // A loop node that runs: how many iterations the store holds for its inputs.
            let mut iterations = vec![None; n];
            if let Some(store) = &store {
                for (i, fp) in loops {
                    iterations[i] =
                        iterate::stored_iterations(store.as_ref(), name, &nodes[i], &fp).await;
                }
            }
            Ok(Explanation {
                graph: name.to_owned(),
                nodes: nodes
                    .iter()
                    .zip(states)
                    .zip(items.into_iter().zip(iterations))
                    .map(|((spec, state), (items, iterations))| ExplainedNode {
                        id: spec.id.to_string(),
                        task: spec.meta.task,
                        state,
                        items,
                        iterations,
                    })
                    .collect(),
            })
        })
    }
}

/// What a run of a graph would do with each node, from [`Runner::explain`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    graph: String,
    nodes: Vec<ExplainedNode>,
}

/// What [`Explanation`] says of one node.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ExplainedNode {
    id: String,
    task: &'static str,
    state: NodeState,
    /// For a map node that runs over a list the store holds: its items.
    items: Option<ItemsPlan>,
    /// For a loop node that runs: the iterations the store holds for its inputs.
    iterations: Option<u32>,
}

/// What a run would do with the items of a map node that runs over a list the store holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ItemsPlan {
    /// Items in the list.
    pub total: usize,
    /// Items whose record still answers for them: loaded, not run.
    pub stored: usize,
    /// Items that would run.
    pub to_run: usize,
}

/// What a run would do with one node.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeState {
    /// Its output is loaded from the store: it does not run.
    Cached,
    /// It runs, for this reason.
    Runs(Reason),
    /// It is cached unless the upstream node `on`, which runs, produces other bytes than
    /// last time.
    Waits {
        /// The nearest upstream node that decides.
        on: String,
    },
    /// It does not run: its condition does not hold, by the stored output of the node that
    /// decides, or it reads a node that does not run.
    NotRun {
        /// Why: "`big` is false", or "it reads `alert`, which does not run".
        condition: String,
    },
    /// It runs only if its condition holds, which is known once the node `on`, which runs,
    /// has its output.
    RunsIf {
        /// The condition node.
        on: String,
        /// The value it must have.
        holds: bool,
    },
}

impl Explanation {
    /// The graph's name.
    pub fn graph(&self) -> &str {
        &self.graph
    }

    /// Every node's id, task and state, in declaration order.
    pub fn nodes(&self) -> impl Iterator<Item = (&str, &'static str, &NodeState)> {
        self.nodes.iter().map(|n| (n.id.as_str(), n.task, &n.state))
    }

    /// One node's state.
    pub fn node(&self, id: &str) -> Option<&NodeState> {
        self.nodes.iter().find(|n| n.id == id).map(|n| &n.state)
    }

    /// For a map node that would run over a list the store holds: how many of its items
    /// are stored and how many would run.
    pub fn items(&self, id: &str) -> Option<ItemsPlan> {
        self.nodes.iter().find(|n| n.id == id).and_then(|n| n.items)
    }

    /// For a loop node that would run: how many of its iterations the store holds for the
    /// same inputs and code, after which the run resumes; `None` if it starts from the first.
    pub fn iterations(&self, id: &str) -> Option<u32> {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .and_then(|n| n.iterations)
    }

    pub(super) fn count(&self, f: impl Fn(&NodeState) -> bool) -> usize {
        self.nodes.iter().filter(|n| f(&n.state)).count()
    }
}

impl std::fmt::Display for Explanation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "graph `{}`: {} cached, {} to run, {} depending on upstream changes",
            self.graph,
            self.count(|s| matches!(s, NodeState::Cached)),
            self.count(|s| matches!(s, NodeState::Runs(_))),
            self.count(|s| matches!(s, NodeState::Waits { .. } | NodeState::RunsIf { .. })),
        )?;
        let not_run = self.count(|s| matches!(s, NodeState::NotRun { .. }));
        if not_run > 0 {
            write!(f, ", {not_run} not run, their condition not holding")?;
        }
        let width = self.nodes.iter().map(|n| n.id.len()).max().unwrap_or(0);
        for ExplainedNode {
            id,
            task,
            state,
            items,
            iterations,
        } in &self.nodes
        {
            write!(f, "\n  {id:<width$}  {task:<12}  {state}")?;
            if let Some(items) = items {
                write!(
                    f,
                    "; {} items: {} stored, {} to run",
                    items.total, items.stored, items.to_run
                )?;
            }
            if let Some(done) = iterations {
                write!(f, "; resumes after iteration {done} (stored)")?;
            }
        }
        Ok(())
    }
}

/// The words for a node's state, the same in [`Explanation`] and in `typedag explain`.
impl std::fmt::Display for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeState::Cached => f.write_str("cached"),
            NodeState::Runs(reason) => write!(f, "runs: {reason}"),
            NodeState::Waits { on } => write!(f, "cached unless `{on}` changes its output"),
            NodeState::NotRun { condition } => write!(f, "not run: {condition}"),
            NodeState::RunsIf { on, holds } => write!(f, "runs only if `{on}` turns out {holds}"),
        }
    }
}

/// What `explain` says of a node that may not run, when its condition (or a node it reads)
/// settles it: not run, or running only if a condition still to be computed holds. `None`
/// when the node is judged like any other.
fn unmet(
    spec: &NodeSpec,
    nodes: &[NodeSpec],
    states: &[NodeState],
    digests: &[Result<Digest, Option<String>>],
) -> Option<NodeState> {
    if !spec.maybe {
        return None;
    }
    let mut pending = None;
    for (param, j) in spec.upstream() {
        let upstream = &nodes[j].id;
        let not_run = matches!(states[j], NodeState::NotRun { .. });
        match spec.sources[param] {
            Source::Condition(_, holds) => {
                if not_run {
                    return Some(NodeState::NotRun {
                        condition: format!("its condition `{upstream}` does not run"),
                    });
                }
                match &digests[j] {
                    Ok(d) => {
                        if let Some(value) = bool_of_digest(d)
                            && value != holds
                        {
                            return Some(NodeState::NotRun {
                                condition: format!("`{upstream}` is {value}"),
                            });
                        }
                    }
                    Err(_) => {
                        pending = Some(NodeState::RunsIf {
                            on: upstream.to_string(),
                            holds,
                        });
                    }
                }
            }
            _ if not_run && !spec.meta.optional.get(param).copied().unwrap_or(false) => {
                return Some(NodeState::NotRun {
                    condition: format!("it reads `{upstream}`, which does not run"),
                });
            }
            _ => {}
        }
    }
    pending
}

/// Which items of map node `i` a run would run, when the list it maps over is in the store
/// and its other inputs are known; `None` otherwise. The same items as a run finds: those of
/// the node's last `Vec` (`stamp`) and of its batches, computed in the same context.
async fn plan_items(
    store: &dyn crate::store::Store,
    graph: &str,
    nodes: &[NodeSpec],
    i: usize,
    stamp: Option<&Stamp>,
    digests: &[Result<Digest, Option<String>>],
) -> Option<ItemsPlan> {
    let spec = &nodes[i];
    let (param, j, items) = spec.each()?;
    let parts = fixed_parts(spec)?;
    let list_digest = digests[j].as_ref().ok()?;
    let bytes = store
        .output(graph, &nodes[j].id, list_digest)
        .await
        .ok()??;
    let list = (nodes[j].decoder()?)(&bytes).ok()?;
    let encoded = Encoded::new(&items, &*list).ok()?;
    let n = encoded.len();
    let others: Vec<(usize, Option<Digest>)> = spec
        .upstream()
        .map(|(p, u)| (p, digests[u].as_ref().ok().copied()))
        .collect();
    if others.iter().any(|(p, d)| *p != param && d.is_none()) {
        return None;
    }
    let stored = if spec.meta.task_options.cache {
        // The items a run would find: in the last `Vec`, then in the batches.
        let context = item_index::item_context(&parts, param, others.into_iter());
        let last = match stamp {
            Some(Stamp::Done { digest, .. }) => {
                item_index::stored_index(store, graph, &spec.id, digest, &context).await
            }
            _ => None,
        };
        let matched = match_items(&encoded, last.as_ref().map(|(k, c)| (&k[..], &c[..])));
        let logged = item_log::read(store, graph, &spec.id, &context).await;
        matched
            .from_old
            .iter()
            .zip(&matched.keys)
            .filter(|(at, key)| at.is_some() || logged.items.contains_key(*key))
            .count()
    } else {
        0
    };
    Some(ItemsPlan {
        total: n,
        stored,
        to_run: n - stored,
    })
}
