//! The `typedag` command-line tool (being written).

fn main() {}
