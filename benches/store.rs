//! Persistence cost and cached reruns (being written).

fn main() {}
