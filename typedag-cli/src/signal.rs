//! `typedag signal`: deliver a value, as JSON, to a signal node of a graph. The program
//! decodes it into the signal's type when a run takes it: the run waiting for it (a shared
//! store), or the next run to reach the node.

use dag_runtime::store::Delivery;

use crate::error::Error;
use crate::session::Session;
use crate::view::GraphView;

/// At most this many characters of a value in a message.
const SHOWN: usize = 60;

pub fn run(session: &Session, graph: &str, signal: &str, value: &str) -> Result<String, Error> {
    // Everything is checked before anything is written, so that a mistake stores nothing.
    let view = session.graph(graph)?;
    let node = find_signal(&view, signal)?;
    if let Err(e) = serde_json::from_str::<serde_json::Value>(value) {
        return Err(Error::NotJson {
            value: shorten(value),
            detail: e.to_string(),
        });
    }
    let replaced = session
        .deliveries(graph)?
        .iter()
        .any(|d| d.signal == signal);
    session.deliver(graph, Delivery::new(signal, value))?;

    let mut out = format!(
        "delivered {} to signal `{signal}` of graph `{graph}`",
        shorten(value)
    );
    if replaced {
        out.push_str(", in place of the value delivered before that no run had taken");
    }
    out.push('\n');
    out.push_str(if session.is_shared() {
        "a run waiting for it takes it within a second; else the next run to reach it does"
    } else {
        "the next run of the graph takes it"
    });
    let stored = view.nodes[node]
        .held
        .record()
        .is_some_and(|r| r.digest().is_some());
    if stored {
        out.push_str(&format!(
            ", in place of the value `{signal}` has stored: what depends on it runs again if it differs"
        ));
    }
    out.push('\n');
    Ok(out)
}

/// The node of `view` that is signal `signal`, or why there is none.
fn find_signal(view: &GraphView, signal: &str) -> Result<usize, Error> {
    if !view.has_shape {
        return Err(Error::NoShape {
            graph: view.name.clone(),
        });
    }
    let known: Vec<String> = view
        .nodes
        .iter()
        .filter(|n| n.signal)
        .map(|n| n.id.clone())
        .collect();
    match view.find(signal).map(|i| (i, &view.nodes[i])) {
        Some((i, node)) if node.signal => Ok(i),
        Some((_, node)) if node.in_graph => Err(Error::NotASignal {
            graph: view.name.clone(),
            node: signal.to_owned(),
            task: node.task.clone().unwrap_or_default(),
            known,
        }),
        _ => Err(Error::UnknownSignal {
            graph: view.name.clone(),
            signal: signal.to_owned(),
            known,
        }),
    }
}

/// `value` for a message: whole when short, else its start.
fn shorten(value: &str) -> String {
    if value.chars().count() <= SHOWN {
        return value.to_owned();
    }
    let start: String = value.chars().take(SHOWN - 3).collect();
    format!("{start}...")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_shortened_in_messages() {
        assert_eq!(shorten("42"), "42");
        let long = "x".repeat(100);
        assert_eq!(shorten(&long).chars().count(), SHOWN);
        assert!(shorten(&long).ends_with("..."));
    }
}
