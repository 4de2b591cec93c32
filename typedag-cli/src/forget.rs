//! `typedag forget`: drop the records of some nodes of a graph, or of the whole graph.

use crate::error::Error;
use crate::human;
use crate::session::Session;
use crate::view::{GraphView, Held};

pub fn run(session: &Session, graph: &str, nodes: &[String]) -> Result<String, Error> {
    let view = session.graph(graph)?;
    if nodes.is_empty() {
        let ids: Vec<String> = view
            .nodes
            .iter()
            .filter(|n| !matches!(n.held, Held::Missing))
            .map(|n| n.id.clone())
            .collect();
        session.forget(vec![(graph.to_owned(), None)])?;
        let mut out = format!(
            "forgot graph `{graph}`: {}",
            human::count(ids.len(), "record")
        );
        if !ids.is_empty() {
            out.push_str(&format!(" ({})", ids.join(", ")));
        }
        if view.has_shape {
            out.push_str(" and its saved shape");
        }
        out.push_str("; it is gone from the store until its program runs again\n");
        return Ok(out);
    }

    // Check every name before dropping anything, so that a typo drops nothing.
    let mut doomed: Vec<usize> = Vec::new();
    for id in nodes {
        let i = view.find(id).ok_or_else(|| Error::UnknownNode {
            graph: graph.to_owned(),
            node: id.clone(),
            known: view.ids(),
        })?;
        if matches!(view.nodes[i].held, Held::Missing) {
            return Err(Error::NoRecord {
                graph: graph.to_owned(),
                node: id.clone(),
            });
        }
        if !doomed.contains(&i) {
            doomed.push(i);
        }
    }
    let ids: Vec<String> = doomed.iter().map(|&i| view.nodes[i].id.clone()).collect();
    session.forget(vec![(graph.to_owned(), Some(ids.clone()))])?;

    let mut out = format!(
        "forgot {} of graph `{graph}`: {}\n",
        human::count(ids.len(), "record"),
        ids.join(", ")
    );
    out.push_str(&consequence(&view, &doomed));
    Ok(out)
}

/// What the next run does about the forgotten nodes, and that their dependents were kept:
/// forgetting a node is not forgetting what was computed from it.
fn consequence(view: &GraphView, doomed: &[usize]) -> String {
    let rerun: Vec<&str> = doomed
        .iter()
        .map(|&i| &view.nodes[i])
        .filter(|n| view.is_used(n))
        .map(|n| n.id.as_str())
        .collect();
    let (subject, runs, produces) = match rerun.as_slice() {
        [] => return String::new(),
        [one] => (format!("`{one}`"), "runs", "produces"),
        _ => ("the forgotten nodes".to_owned(), "run", "produce"),
    };
    let mut kept: Vec<&str> = Vec::new();
    for &i in doomed {
        for &d in &view.nodes[i].dependents {
            let dependent = &view.nodes[d];
            // Only a stored output can be reused; a failed dependent runs again anyway.
            if !doomed.contains(&d)
                && dependent
                    .held
                    .record()
                    .is_some_and(|r| r.digest().is_some())
                && !kept.contains(&dependent.id.as_str())
            {
                kept.push(&dependent.id);
            }
        }
    }
    let dependents = if !view.has_shape {
        "dependents (unknown: the store has no saved shape) keep their records".to_owned()
    } else if kept.is_empty() {
        return format!("{subject} {runs} again on the next run\n");
    } else {
        format!("dependents keep their records ({})", kept.join(", "))
    };
    format!(
        "{subject} {runs} again on the next run; {dependents}: they run again only if {subject} {produces} other bytes than before\n"
    )
}
