use typedag::prelude::*;

#[derive(Debug)]
enum FetchError {
    Offline,
}

#[task]
async fn fetch(url: String) -> Result<String, FetchError> {
    if url.is_empty() { Err(FetchError::Offline) } else { Ok(url) }
}

fn main() {}
