//! `typedag gc`: drop records that no run will read, and optionally old ones (with the
//! ended shared runs of a PostgreSQL store that started before then).

use std::time::Duration;

use crate::error::Error;
use crate::human;
use crate::session::Session;
use crate::view::{GraphView, Held};

/// What to drop.
pub struct Options {
    /// Also drop records that finished longer ago than this.
    pub older_than: Option<Duration>,
    /// Say what would be dropped, and drop nothing.
    pub dry_run: bool,
}

pub fn run(session: &Session, options: &Options) -> Result<String, Error> {
    let mut out = String::new();
    let mut drops: Vec<(String, Option<Vec<String>>)> = Vec::new();
    let (mut records, mut bytes) = (0, 0);
    for (name, manifest) in session.graphs()? {
        let view = session.load(name, manifest)?;
        let doomed = doomed(&view, options.older_than);
        if doomed.is_empty() {
            if !view.has_shape && view.records() > 0 && options.older_than.is_none() {
                out.push_str(&format!(
                    "graph `{}`: kept {}: the store has no saved shape to tell which are used (`typedag forget {}` drops them all)\n",
                    view.name,
                    human::count(view.records(), "record"),
                    view.name
                ));
            }
            continue;
        }
        let size: u64 = doomed
            .iter()
            .filter_map(|(i, _)| view.nodes[*i].held.size())
            .sum();
        let listed: Vec<String> = doomed
            .iter()
            .map(|(i, why)| format!("{} ({why})", view.nodes[*i].id))
            .collect();
        out.push_str(&format!(
            "graph `{}`: {} {} ({}): {}\n",
            view.name,
            if options.dry_run {
                "would drop"
            } else {
                "dropped"
            },
            human::count(doomed.len(), "record"),
            human::size(size),
            listed.join(", ")
        ));
        records += doomed.len();
        bytes += size;
        drops.push((
            view.name.clone(),
            Some(
                doomed
                    .iter()
                    .map(|(i, _)| view.nodes[*i].id.clone())
                    .collect(),
            ),
        ));
    }
    let runs = old_runs(session, options, &mut out)?;
    let graphs = drops.len();
    if records == 0 {
        if runs.is_empty() {
            out.push_str("nothing to drop\n");
        } else if !options.dry_run {
            session.forget_runs(runs)?;
        }
        return Ok(out);
    }
    if !options.dry_run && !runs.is_empty() {
        session.forget_runs(runs)?;
    }
    let total = format!(
        "{} ({}) in {}",
        human::count(records, "record"),
        human::size(bytes),
        human::count(graphs, "graph")
    );
    if options.dry_run {
        out.push_str(&format!("would drop {total} (dry run: nothing dropped)\n"));
    } else {
        session.forget(drops)?;
        out.push_str(&format!("dropped {total}\n"));
    }
    Ok(out)
}

/// With `--older-than`, the ended shared runs that started longer ago, each said in `out`:
/// finished, or stopped at a failure with nothing left in flight.
fn old_runs(session: &Session, options: &Options, out: &mut String) -> Result<Vec<String>, Error> {
    let Some(limit) = options.older_than else {
        return Ok(Vec::new());
    };
    let mut old = Vec::new();
    for run in session.runs()? {
        let started = std::time::UNIX_EPOCH + Duration::from_millis(run.started_ms);
        let age = started.elapsed().unwrap_or_default();
        if run.ended && age > limit {
            out.push_str(&format!(
                "run `{}` (graph `{}`, {} old): {}\n",
                run.run,
                run.graph,
                human::age(age),
                if options.dry_run {
                    "would drop"
                } else {
                    "dropped"
                }
            ));
            old.push(run.run);
        }
    }
    Ok(old)
}

/// The records of `view` to drop, by index, each with why.
fn doomed(view: &GraphView, older_than: Option<Duration>) -> Vec<(usize, String)> {
    view.nodes
        .iter()
        .enumerate()
        .filter_map(|(i, node)| {
            if matches!(node.held, Held::Missing) {
                return None;
            }
            // Without a shape nothing says which records are used: keep them.
            if !view.is_used(node) {
                return Some((i, "not in graph".to_owned()));
            }
            let age = node.held.record()?.age();
            older_than
                .filter(|limit| age > *limit)
                .map(|_| (i, format!("{} old", human::age(age))))
        })
        .collect()
}
