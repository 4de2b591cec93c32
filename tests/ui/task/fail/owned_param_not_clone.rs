use typedag::prelude::*;

struct Page {
    html: String,
}

#[task]
async fn size(page: Page) -> usize {
    page.html.len()
}

fn main() {}
