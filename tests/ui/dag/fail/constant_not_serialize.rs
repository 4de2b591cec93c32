use typedag::prelude::*;

#[derive(Clone)]
struct Config {
    depth: u32,
}

#[task]
async fn crawl(config: Config) -> u32 {
    config.depth
}

fn main() {
    let config = Config { depth: 3 };
    let _ = dag! {
        pages = crawl(config);
    };
}
