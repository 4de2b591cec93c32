//! How map tests name a set of items in a failed assertion: a few of them, and how many,
//! instead of thousands of numbers.

#![allow(dead_code, reason = "each test binary uses part of it")]

use std::collections::HashSet;

/// The items of map node `node` in `a` and not in `b`: `none`, or `3 (pages[1], pages[4],
/// pages[9])`, the first five and a count.
pub fn only_in(node: &str, a: &HashSet<usize>, b: &HashSet<usize>) -> String {
    let mut items: Vec<usize> = a.difference(b).copied().collect();
    if items.is_empty() {
        return "none".to_owned();
    }
    items.sort_unstable();
    let first: Vec<String> = items
        .iter()
        .take(5)
        .map(|i| format!("{node}[{i}]"))
        .collect();
    let more = if items.len() > first.len() {
        ", …"
    } else {
        ""
    };
    format!("{} ({}{more})", items.len(), first.join(", "))
}
