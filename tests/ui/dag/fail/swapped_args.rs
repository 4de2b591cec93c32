use typedag::prelude::*;

#[task]
async fn load() -> Vec<String> {
    Vec::new()
}

#[task]
async fn size() -> usize {
    0
}

#[task]
async fn report(links: &[String], n: &usize) -> String {
    format!("{n} {}", links.len())
}

fn main() {
    let _ = dag! {
        links = load();
        n = size();
        text = report(n, links);
    };
}
