use typedag::prelude::*;

struct Crawler;

impl Crawler {
    #[task]
    async fn fetch(&self, url: String) -> String {
        url
    }
}

fn main() {}
