use typedag::prelude::*;

#[task]
async fn count(cache: Res<std::cell::RefCell<u64>>) -> u64 {
    *cache.borrow()
}

fn main() {}
