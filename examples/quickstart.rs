//! The quickstart: four tasks wired in a `dag!`, run concurrently, outputs read by name.
//! Every output is stored in `./.typedag`: run it twice and the second run loads them all
//! instead of running a task (`cargo run --bin typedag -- status quickstart` shows them).
//!
//! Run it with:
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! Expected output:
//!
//! ```text
//! fetched 3 pages, 9 links in all
//! Links: 9 links, most on https://example.org/docs (4)
//! ```

use typedag::prelude::*;

/// A fake page: a few links per URL, so the example needs no network.
#[task]
async fn fetch(url: String) -> Result<String, std::fmt::Error> {
    let links = match url.rsplit('/').next() {
        Some("docs") => 4,
        Some("blog") => 3,
        _ => 2,
    };
    Ok((0..links)
        .map(|i| format!("<a href=\"{url}/{i}\">"))
        .collect())
}

#[task(retries = 3, timeout = "30s")]
async fn parse(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[task(priority = 10)]
async fn count(links: &[String]) -> usize {
    links.len()
}

#[task]
async fn busiest(counts: Vec<usize>, urls: Vec<String>) -> (String, usize) {
    let best = (0..counts.len()).max_by_key(|&i| counts[i]).unwrap_or(0);
    (urls[best].clone(), counts[best])
}

#[task]
async fn report(counts: Vec<usize>, busiest: &(String, usize), title: String) -> String {
    let total: usize = counts.iter().sum();
    format!(
        "{title}: {total} links, most on {} ({})",
        busiest.0, busiest.1
    )
}

#[tokio::main]
async fn main() -> Result<(), typedag::Error> {
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "https://example.org".into());
    let urls = vec![
        format!("{base}/docs"),
        format!("{base}/blog"),
        format!("{base}/about"),
    ];

    let graph = dag! {
        name = "quickstart";
        docs   = fetch(urls[0].clone());
        blog   = fetch(urls[1].clone());
        about  = fetch(urls[2].clone());
        docs_links  = parse(docs);
        blog_links  = parse(blog);
        about_links = parse(about);
        docs_n  = count(docs_links);
        blog_n  = count(blog_links);
        about_n = count(about_links);
        top  = busiest([docs_n, blog_n, about_n], urls.clone());
        text = report([docs_n, blog_n, about_n], top, "Links".to_string()) with priority = 1;
    };

    let out = Runner::new().cancel_on_ctrl_c().run(graph).await?;
    let total = out.docs_links.len() + out.blog_links.len() + out.about_links.len();
    println!("fetched 3 pages, {total} links in all");
    println!("{}", out.text);
    Ok(())
}
