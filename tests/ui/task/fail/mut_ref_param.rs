use typedag::prelude::*;

#[task]
async fn bump(count: &mut u64) -> u64 {
    *count + 1
}

fn main() {}
