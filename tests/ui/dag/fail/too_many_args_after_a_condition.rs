use typedag::prelude::*;

#[task]
async fn is_big(x: &u64) -> bool {
    *x > 10
}

#[task]
async fn double(x: &u64) -> u64 {
    x * 2
}

fn main() {
    let _ = dag! {
        big = is_big(1);
        a = double(2) if big;
        b = double(3, a);
    };
}
