//! A user crate with its own `Result`, `Task`, `Node`, `Runner`, `Graph`, `serde`, `core`,
//! `std` and `__private` items still compiles the expansion.
#![allow(dead_code)]

mod serde {}
mod postcard {}
mod __private {}
mod core {}
struct Task;
struct Node;
struct Graph;
struct Wire;
struct Box;
struct Vec;
struct Option;
type Result<T> = ::std::result::Result<T, String>;

mod tasks {
    use typedag::task;

    #[task]
    pub async fn parse(text: &str) -> super::Result<::std::vec::Vec<::std::string::String>> {
        Ok(text.split(' ').map(str::to_owned).collect())
    }

    #[task]
    pub async fn count(words: &[::std::string::String]) -> usize {
        words.len()
    }
}

fn main() {
    struct Runner;
    let _ = Runner;
    let text = "a b c".to_string();
    let __typedag_graph = 1;
    let __typedag_value = 2;
    let graph = typedag::dag! {
        words = tasks::parse(text);
        n = tasks::count(words);
    };
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let out = rt.block_on(typedag::Runner::in_memory().run(graph)).unwrap();
    assert_eq!(out.n, 3);
    assert_eq!(__typedag_graph + __typedag_value, 3);
}
