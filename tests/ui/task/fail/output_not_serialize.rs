use typedag::prelude::*;

struct Page {
    html: String,
}

#[task]
async fn fetch(url: String) -> Page {
    Page { html: url }
}

fn main() {}
