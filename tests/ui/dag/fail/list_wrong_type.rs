use typedag::prelude::*;

#[task]
async fn name(i: u64) -> String {
    i.to_string()
}

#[task]
async fn total(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

fn main() {
    let _ = dag! {
        a = name(1);
        b = name(2);
        sum = total([a, b]);
    };
}
