use typedag::prelude::*;

/// The state is the page number, a `u32`, but the `Loop` says `u64`.
#[task]
async fn pages(page: u32, site: &String) -> Loop<u64, Vec<u32>> {
    let _ = site;
    Loop::Done(vec![page])
}

fn main() {}
