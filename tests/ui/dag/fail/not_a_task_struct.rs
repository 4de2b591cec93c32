use typedag::prelude::*;

struct Double;

fn main() {
    let _ = dag! {
        a = Double(1);
    };
}
