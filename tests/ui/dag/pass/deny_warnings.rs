#![deny(warnings)]
#![deny(unused_qualifications, unused_results, missing_debug_implementations)]

use typedag::prelude::*;

#[task]
async fn seed(i: u64) -> u64 {
    i
}

#[task]
async fn sum(xs: Vec<u64>, offset: &u64) -> u64 {
    xs.iter().sum::<u64>() + offset
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let offset = 100;
    let graph = dag! {
        name = "deny-warnings";
        a = seed(1);
        b = seed(2) with priority = 1, retries = 2, timeout = "1s", backoff = linear("10ms");
        total = sum([a, b], offset);
        unused = seed(3);
    };
    let out = Runner::in_memory().run(graph).await.unwrap();
    assert_eq!(out.total, 103);
    println!("{out:?}");
}
