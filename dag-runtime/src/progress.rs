//! A ready-made terminal progress bar, fed by the run's events.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::event::{Event, Totals};

/// A callback for [`Runner::on_event`](crate::Runner::on_event) that draws a progress bar on
/// stderr when stderr is a terminal, and does nothing otherwise (in CI logs, pipes, files).
/// [`Runner::progress_bar`](crate::Runner::progress_bar) installs it.
pub fn bar() -> impl Fn(&Event<'_>, &Totals) + Send + Sync + 'static {
    let drawn = std::io::stderr().is_terminal();
    let bar: Mutex<Option<ProgressBar>> = Mutex::new(None);
    move |event, totals| {
        if !drawn {
            return;
        }
        let mut slot = bar.lock().unwrap_or_else(|e| e.into_inner());
        let bar = slot.get_or_insert_with(|| new_bar(totals.total));
        bar.set_position(totals.finished() as u64);
        match event {
            Event::Started { node, .. } => {
                bar.set_message(format!("{} running, last started {node}", totals.running))
            }
            Event::Failed { node, error, .. } => bar.println(format!("failed: {node}: {error}")),
            Event::Waiting { node, .. } => bar.println(format!("waiting for signal {node}")),
            Event::Retrying {
                node, delay, error, ..
            } => {
                bar.println(format!("retrying {node} in {delay:?}: {error}"));
            }
            _ => {}
        }
        if totals.finished() == totals.total {
            let summary = format!(
                "{} completed, {} failed, {} skipped, {} cancelled",
                totals.completed, totals.failed, totals.skipped, totals.cancelled
            );
            bar.finish_with_message(summary);
        }
    }
}

fn new_bar(total: usize) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar
}
