use typedag::prelude::*;

#[task]
async fn report(title: String) -> String {
    title
}

fn main() {
    let _ = dag! {
        text = report(42);
    };
}
