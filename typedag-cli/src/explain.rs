//! `typedag explain`: what the store knows about each node, and what a rerun of the same
//! program would do with it.
//!
//! The store has outputs' digests but not the program's code or constants, so the verdict
//! assumes the program is unchanged. It follows the runtime's rules: a node without a usable
//! record runs; a node whose upstream runs is still loaded from the store if that upstream
//! produces the same bytes as before.

use dag_runtime::store::RecordState;
use dag_runtime::{NodeState, Reason};

use crate::error::Error;
use crate::human;
use crate::session::Session;
use crate::view::{GraphView, Held, NodeView};

/// Said once at the end: the limits of what the store alone can tell.
const CAVEAT: &str = "This assumes the program is unchanged: the code and constants of its tasks are only known to the program itself, so after an edit ask `Runner::explain` in the program what a run would do.";

/// The longest label, so that every node's lines line up with every other's.
const LABEL_WIDTH: usize = "ran because".len();

/// What a rerun of the unchanged program would do with a node.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Next {
    /// Loaded from the store.
    Cached,
    /// Runs, for this reason.
    Runs(Reason),
    /// Loaded unless upstream node `on`, which runs, produces other bytes than last time.
    Waits { on: String, why: Reason },
    /// Not in the graph's shape: no run reads it.
    Unused,
}

pub fn run(session: &Session, graph: &str, node: Option<&str>) -> Result<String, Error> {
    let view = session.graph(graph)?;
    let only = match node {
        Some(id) => Some(view.find(id).ok_or_else(|| Error::UnknownNode {
            graph: graph.to_owned(),
            node: id.to_owned(),
            known: view.ids(),
        })?),
        None => None,
    };
    let next = plan(&view);
    let mut out = summary(&view, &next, session);
    for (i, n) in view.nodes.iter().enumerate() {
        // A map node's item records (batches of items, failed items) are summed up under the
        // node, not listed one by one.
        let shown = match only {
            Some(o) => o == i,
            None => n.item_of.is_none(),
        };
        if shown {
            out.push('\n');
            out.push_str(&describe(&view, n, &next[i]));
        }
    }
    out.push('\n');
    out.push_str(CAVEAT);
    out.push('\n');
    Ok(out)
}

fn summary(view: &GraphView, next: &[Next], session: &Session) -> String {
    // Nodes only: a map node's item records go with their node.
    let count = |f: fn(&Next) -> bool| {
        next.iter()
            .zip(&view.nodes)
            .filter(|(n, node)| node.item_of.is_none() && f(n))
            .count()
    };
    let mut out = format!("graph `{}` in {}: ", view.name, session.location());
    if view.has_shape {
        out.push_str(&human::count(view.shape_len(), "node"));
    } else {
        out.push_str("shape not saved (inputs and dependents unknown)");
    }
    out.push_str(&format!(", {}", human::count(view.records(), "record")));
    out.push_str(&format!(
        "\na rerun of the same program: {} cached, {} to run, {} depending on upstream changes\n",
        count(|n| *n == Next::Cached),
        count(|n| matches!(n, Next::Runs(_))),
        count(|n| matches!(n, Next::Waits { .. })),
    ));
    out
}

/// Each node's verdict, in the order of `view.nodes`.
fn plan(view: &GraphView) -> Vec<Next> {
    let mut memo: Vec<Option<Next>> = vec![None; view.nodes.len()];
    for i in 0..view.nodes.len() {
        verdict(view, i, &mut memo, &mut Vec::new());
    }
    memo.into_iter()
        .map(|n| n.unwrap_or(Next::Cached))
        .collect()
}

/// The verdict of node `i`, after its inputs'. `path` holds the nodes being decided, so that
/// a cycle (only possible in a damaged shape) ends instead of recursing forever.
fn verdict(view: &GraphView, i: usize, memo: &mut [Option<Next>], path: &mut Vec<usize>) -> Next {
    if let Some(next) = &memo[i] {
        return next.clone();
    }
    let node = &view.nodes[i];
    let own = match &node.held {
        _ if !view.is_used(node) => Some(Next::Unused),
        Held::Missing => Some(Next::Runs(Reason::NeverRan)),
        Held::Damaged(_) => Some(Next::Runs(Reason::RecordDamaged)),
        Held::Record(r) => match r.state {
            RecordState::Failed { .. } => Some(Next::Runs(Reason::FailedBefore)),
            // Its upstream has no digest to compare (`cache = false`): that holds next time.
            RecordState::Done { .. } if r.reason == Reason::UpstreamNotCached => {
                Some(Next::Runs(Reason::UpstreamNotCached))
            }
            RecordState::Done { .. } => None,
        },
    };
    let next = own.unwrap_or_else(|| {
        path.push(i);
        // Like the runtime, the first input in argument order that runs decides.
        let waits = node.inputs.iter().find_map(|&j| {
            if path.contains(&j) {
                return None;
            }
            match verdict(view, j, memo, path) {
                Next::Runs(why) => Some(Next::Waits {
                    on: view.nodes[j].id.clone(),
                    why,
                }),
                waits @ Next::Waits { .. } => Some(waits),
                Next::Cached | Next::Unused => None,
            }
        });
        path.pop();
        waits.unwrap_or(Next::Cached)
    });
    memo[i] = Some(next.clone());
    next
}

fn describe(view: &GraphView, node: &NodeView, next: &Next) -> String {
    let mut lines: Vec<(&str, String)> = Vec::new();
    let state = match &node.held {
        Held::Missing => "missing: the store has no record of it".to_owned(),
        Held::Damaged(why) => format!("damaged: its record cannot be read ({why})"),
        Held::Record(r) => match &r.state {
            RecordState::Done { size, .. } => format!("done, output {}", human::size(*size)),
            RecordState::Failed { .. } => "failed".to_owned(),
        },
    };
    lines.push(("state", state));
    if let Some(error) = node.held.problem().filter(|_| node.held.record().is_some()) {
        lines.push(("error", human::one_line(error, usize::MAX)));
    }
    if let Some(r) = node.held.record() {
        let mut finished = format!(
            "{} ({} ago)",
            human::timestamp(r.finished_ms),
            human::age(r.age())
        );
        // The runtime does not time failures: their duration is 0 and says nothing.
        if r.digest().is_some() {
            finished.push_str(&format!(", took {}", human::duration(r.duration_us)));
        }
        finished.push_str(&format!(
            ", {}",
            human::count(r.attempts as usize, "attempt")
        ));
        lines.push(("finished", finished));
        lines.push(("ran because", r.reason.to_string()));
    }
    let names = |of: &[usize]| {
        let ids: Vec<String> = of
            .iter()
            .map(|&j| format!("`{}`", view.nodes[j].id))
            .collect();
        human::list(&ids)
    };
    if node.in_graph {
        lines.push(("inputs", names(&node.inputs)));
        lines.push(("dependents", names(&node.dependents)));
        let me = view.find(&node.id);
        let items: Vec<_> = view
            .nodes
            .iter()
            .filter(|n| n.item_of == me && n.is_item_record())
            .collect();
        if view
            .nodes
            .iter()
            .any(|n| n.item_of == me && n.is_loop_record())
        {
            lines.push((
                "loop",
                "not finished: its last iteration's state is stored, and the next run resumes after it".to_owned(),
            ));
        }
        if !items.is_empty() {
            let failed = items.iter().filter(|n| n.held.problem().is_some()).count();
            lines.push((
                "items",
                format!(
                    "{} of items finished while the node had not completed, and {} failed; items are cached by their bytes: a rerun runs only the items its last list did not have",
                    human::count(items.len() - failed, "batch record"),
                    human::count(failed, "item")
                ),
            ));
        }
    } else if view.has_shape {
        lines.push((
            "inputs",
            "unknown: the graph no longer has this node".to_owned(),
        ));
    } else {
        lines.push(("inputs", "unknown: the store has no saved shape".to_owned()));
    }
    // The runtime's words (`Runner::explain`), with what only the program can tell.
    let rerun = match next {
        Next::Cached => format!(
            "{} (if its code, its constants and its inputs' outputs are unchanged)",
            NodeState::Cached
        ),
        Next::Runs(why) => NodeState::Runs(*why).to_string(),
        Next::Waits { on, why } => {
            let state = NodeState::Waits { on: on.clone() };
            format!("{state} (`{on}` runs: {why})")
        }
        Next::Unused => {
            "never read: a run of the graph does not use it (`typedag gc` drops it)".to_owned()
        }
    };
    lines.push(("next run", rerun));

    let task = node.task.as_deref().unwrap_or("unknown");
    let mut out = format!("node `{}` (task `{task}`)\n", node.id);
    for (label, text) in lines {
        out.push_str(&format!("  {label:<LABEL_WIDTH$}  {text}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use dag_runtime::Fingerprint;
    use dag_runtime::store::{Loaded, Manifest, ManifestNode, Record, Snapshot};

    use super::*;

    fn record(state: RecordState, reason: Reason) -> Loaded {
        Loaded::Record(Record {
            task: "t".into(),
            fingerprint: Fingerprint {
                code: [0; 32],
                output_type: [0; 32],
                inputs: [0; 32],
                upstream: [0; 32],
            },
            state,
            finished_ms: 0,
            duration_us: 0,
            attempts: 1,
            reason,
        })
    }

    fn done() -> Loaded {
        record(
            RecordState::Done {
                digest: [1; 32],
                size: 1,
            },
            Reason::NeverRan,
        )
    }

    /// a → b → c, d reads a and c; `e` is a record the shape no longer has.
    fn view(records: Vec<(&str, Loaded)>) -> GraphView {
        let node = |id: &str, inputs: Vec<u32>| ManifestNode {
            id: id.into(),
            task: "t".into(),
            inputs,
        };
        let manifest = Manifest {
            nodes: vec![
                node("a", vec![]),
                node("b", vec![0]),
                node("c", vec![1]),
                node("d", vec![0, 2]),
            ],
        };
        let snapshot = Snapshot {
            records: records
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            manifest: None,
        };
        GraphView::new("g".into(), Some(manifest), snapshot)
    }

    fn waits(on: &str, why: Reason) -> Next {
        Next::Waits { on: on.into(), why }
    }

    #[test]
    fn all_done_is_cached() {
        let v = view(vec![
            ("a", done()),
            ("b", done()),
            ("c", done()),
            ("d", done()),
        ]);
        assert_eq!(plan(&v), vec![Next::Cached; 4]);
    }

    #[test]
    fn a_missing_upstream_makes_dependents_wait_on_it() {
        let v = view(vec![
            ("b", done()),
            ("c", done()),
            ("d", done()),
            ("e", done()),
        ]);
        assert_eq!(
            plan(&v),
            vec![
                Next::Runs(Reason::NeverRan),
                waits("a", Reason::NeverRan),
                waits("a", Reason::NeverRan),
                waits("a", Reason::NeverRan),
                Next::Unused,
            ]
        );
    }

    #[test]
    fn failures_and_uncached_upstreams_run() {
        let failed = record(
            RecordState::Failed {
                error: "boom".into(),
            },
            Reason::NeverRan,
        );
        let uncached = record(
            RecordState::Done {
                digest: [1; 32],
                size: 1,
            },
            Reason::UpstreamNotCached,
        );
        let v = view(vec![
            ("a", done()),
            ("b", failed),
            ("c", uncached),
            ("d", done()),
        ]);
        assert_eq!(
            plan(&v),
            vec![
                Next::Cached,
                Next::Runs(Reason::FailedBefore),
                Next::Runs(Reason::UpstreamNotCached),
                waits("c", Reason::UpstreamNotCached),
            ]
        );
    }
}
