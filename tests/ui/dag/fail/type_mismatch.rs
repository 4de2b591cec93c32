use typedag::prelude::*;

#[task]
async fn fetch(url: String) -> String {
    url
}

#[task]
async fn count(n: &usize) -> usize {
    *n
}

fn main() {
    let url = "https://example.org".to_string();
    let _ = dag! {
        page = fetch(url);
        n = count(page);
    };
}
