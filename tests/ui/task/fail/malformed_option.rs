use typedag::prelude::*;

#[task(retries = "3", timeout = "3 weeks", backoff = quadratic("1s"), priority = high)]
async fn fetch(url: String) -> String {
    url
}

fn main() {}
