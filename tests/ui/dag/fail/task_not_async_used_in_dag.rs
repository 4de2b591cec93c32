use typedag::prelude::*;

#[task]
fn fetch(url: String) -> String {
    url
}

#[task]
async fn count(page: &String) -> usize {
    page.len()
}

async fn run() -> Result<(), typedag::Error> {
    let url = "https://example.org".to_string();
    let g = dag! {
        page = fetch(url);
        n = count(page);
    };
    let out = Runner::new().run(g).await?;
    println!("{} {}", out.page, out.n);
    Ok(())
}

fn main() {
    let _ = run();
}
