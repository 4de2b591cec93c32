use typedag::prelude::*;

fn transient(_: &String) -> bool {
    true
}

#[task(retry_if = transient)]
async fn fetch(url: String) -> String {
    url
}

fn main() {}
