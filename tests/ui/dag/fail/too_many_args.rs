use typedag::prelude::*;

#[task]
async fn double(x: &u64) -> u64 {
    x * 2
}

fn main() {
    let _ = dag! {
        a = double(1, 2);
        b = double(a, 3);
    };
}
