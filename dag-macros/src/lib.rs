//! The `#[task]` attribute and `dag!` macro of typedag.
//!
//! Use them through the `typedag` crate, which documents them. Each entry point converts to
//! `proc_macro2` and hands over to a parse → check → expand pipeline that works on
//! `proc_macro2::TokenStream`, so everything but these two lines is testable.

use proc_macro::TokenStream;

mod dag;
mod fingerprint;
mod options;
mod pretty;
mod task;

/// Turns an `async fn` into a task that a `dag!` graph can run. See the `typedag` crate.
#[proc_macro_attribute]
pub fn task(args: TokenStream, item: TokenStream) -> TokenStream {
    task::expand(args.into(), item.into()).into()
}

/// Builds a typed graph from `name = task(args...);` statements. See the `typedag` crate.
#[proc_macro]
pub fn dag(input: TokenStream) -> TokenStream {
    dag::expand(input.into()).into()
}
