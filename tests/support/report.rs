//! How the distributed tests compare the reports of their processes.

#![allow(dead_code, reason = "each test binary uses part of it")]

use typedag::Outcome;

/// Each node's outcome, without the durations (which differ by worker and by run).
pub fn outcomes(report: &typedag::Report) -> Vec<(String, String)> {
    report
        .nodes()
        .iter()
        .map(|n| {
            let outcome = match &n.outcome {
                Outcome::Ran { .. } => "ran".to_owned(),
                other => format!("{other:?}"),
            };
            (n.id.clone(), outcome)
        })
        .collect()
}
