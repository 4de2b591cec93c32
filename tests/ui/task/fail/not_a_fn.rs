use typedag::prelude::*;

#[task]
struct Fetch {
    url: String,
}

fn main() {}
