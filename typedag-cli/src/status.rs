//! `typedag status`: what the store holds, per graph or per node.

use crate::error::Error;
use crate::human::{self, Align, Table};
use crate::session::Session;
use crate::view::{GraphView, NodeView};
use dag_runtime::store::shared::RunSummary;

/// Errors longer than this are cut in the table; `typedag explain` shows them whole.
const ERROR_WIDTH: usize = 60;

/// One line per graph, then one per shared run if the store has any.
pub fn graphs(session: &Session) -> Result<String, Error> {
    let mut out = graph_table(session)?;
    let runs = session.runs()?;
    if !runs.is_empty() {
        out.push('\n');
        out.push_str(&run_table(&runs));
    }
    Ok(out)
}

/// One line per shared run: how far it is, and who works on it now.
fn run_table(runs: &[RunSummary]) -> String {
    let mut table = Table::new(&[
        ("RUN", Align::Left),
        ("GRAPH", Align::Left),
        ("NODES", Align::Right),
        ("DONE", Align::Right),
        ("FAILED", Align::Right),
        ("SKIPPED", Align::Right),
        ("RUNNING", Align::Right),
        ("STARTED", Align::Right),
        ("STATE", Align::Left),
    ]);
    for r in runs {
        let finished = r.done + r.failed + r.skipped;
        let state = if r.stopping && r.ended {
            "stopped after a failure".to_owned()
        } else if r.stopping {
            "stopping after a failure".to_owned()
        } else if finished == r.nodes {
            "finished".to_owned()
        } else if r.workers.is_empty() {
            "waiting for a worker".to_owned()
        } else {
            format!(
                "running on {}: {}",
                human::count(r.workers.len(), "worker"),
                r.workers.join(", ")
            )
        };
        let started = std::time::UNIX_EPOCH + std::time::Duration::from_millis(r.started_ms);
        let age = started.elapsed().unwrap_or_default();
        table.row(vec![
            r.run.clone(),
            r.graph.clone(),
            r.nodes.to_string(),
            r.done.to_string(),
            r.failed.to_string(),
            r.skipped.to_string(),
            r.claimed.to_string(),
            format!("{} ago", human::age(age)),
            state,
        ]);
    }
    table.render()
}

fn graph_table(session: &Session) -> Result<String, Error> {
    let graphs = session.graphs()?;
    if graphs.is_empty() {
        return Ok(format!(
            "the store {} holds no graphs\n",
            session.location()
        ));
    }
    let mut table = Table::new(&[
        ("GRAPH", Align::Left),
        ("NODES", Align::Right),
        ("DONE", Align::Right),
        ("FAILED", Align::Right),
        ("SIZE", Align::Right),
        ("NEWEST", Align::Right),
        ("NOTES", Align::Left),
    ]);
    for (name, manifest) in graphs {
        let view = session.load(name, manifest)?;
        let c = view.counts();
        let mut notes = Vec::new();
        if !view.has_shape {
            notes.push("no saved shape".to_owned());
        }
        if c.damaged > 0 {
            notes.push(format!("{} damaged", human::count(c.damaged, "record")));
        }
        if c.unused > 0 {
            notes.push(format!(
                "{} not in graph (typedag gc)",
                human::count(c.unused, "record")
            ));
        }
        table.row(vec![
            view.name.clone(),
            if view.has_shape {
                view.shape_len().to_string()
            } else {
                "-".to_owned()
            },
            c.done.to_string(),
            c.failed.to_string(),
            human::size(c.size),
            c.newest
                .map_or_else(|| "-".to_owned(), |age| format!("{} ago", human::age(age))),
            notes.join("; "),
        ]);
    }
    Ok(table.render())
}

/// One line per node of `graph`.
pub fn graph(session: &Session, graph: &str) -> Result<String, Error> {
    Ok(nodes(&session.graph(graph)?))
}

fn nodes(view: &GraphView) -> String {
    let mut table = Table::new(&[
        ("NODE", Align::Left),
        ("TASK", Align::Left),
        ("STATE", Align::Left),
        ("SIZE", Align::Right),
        ("AGE", Align::Right),
        ("ATTEMPTS", Align::Right),
        ("LAST RAN BECAUSE", Align::Left),
        ("ERROR", Align::Left),
    ]);
    let dash = || "-".to_owned();
    for (i, node) in view.nodes.iter().enumerate() {
        if node.item_of.is_some() {
            continue;
        }
        let record = node.held.record();
        table.row(vec![
            if view.is_used(node) {
                node.id.clone()
            } else {
                format!("{} (not in graph)", node.id)
            },
            node.task.clone().unwrap_or_else(dash),
            node.held.state().to_owned(),
            node.held.size().map_or_else(dash, human::size),
            record.map_or_else(dash, |r| human::age(r.age())),
            record.map_or_else(dash, |r| r.attempts.to_string()),
            record.map_or_else(dash, |r| r.reason.to_string()),
            node.held
                .problem()
                .map_or_else(dash, |e| human::one_line(e, ERROR_WIDTH)),
        ]);
        // A map node's items: one line for all of them.
        let items: Vec<&NodeView> = view
            .nodes
            .iter()
            .filter(|n| n.item_of == Some(i) && n.is_item_record())
            .collect();
        if !items.is_empty() {
            let failed = items.iter().filter(|n| n.held.problem().is_some()).count();
            let size: u64 = items.iter().filter_map(|n| n.held.size()).sum();
            table.row(vec![
                format!("{}[…]", node.id),
                node.task.clone().unwrap_or_else(dash),
                format!(
                    "{} of finished items, {} failed",
                    human::count(items.len() - failed, "batch record"),
                    human::count(failed, "item")
                ),
                human::size(size),
                dash(),
                dash(),
                dash(),
                dash(),
            ]);
        }
    }
    let mut out = table.render();
    let looping: Vec<&str> = view
        .nodes
        .iter()
        .filter(|n| n.is_loop_record())
        .filter_map(|n| n.item_of.map(|i| view.nodes[i].id.as_str()))
        .collect();
    if !looping.is_empty() {
        out.push_str(&format!(
            "(a loop that has not finished keeps its last iteration: {}; the next run resumes after it)\n",
            looping.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
        ));
    }
    if !view.has_shape {
        out.push_str(
            "(the store has no saved shape for this graph: the nodes above are its records)\n",
        );
    }
    out
}
