//! Syntax only: the function as written and its raw options.

use proc_macro2::TokenStream;
use syn::parse::Parser;

use crate::options::{self, Raw};

pub struct Parsed {
    pub item: syn::ItemFn,
    /// An option list that does not parse is kept as its error, so the function can still
    /// be checked and expanded with default options.
    pub options: syn::Result<Vec<Raw>>,
}

pub fn parse(args: TokenStream, item: TokenStream) -> syn::Result<Parsed> {
    let item: syn::ItemFn = syn::parse2(item.clone()).map_err(|_| {
        syn::Error::new_spanned(
            first_tokens(item),
            "`#[task]` goes on an `async fn`, like `#[task] async fn fetch(url: String) -> String { ... }`",
        )
    })?;
    let options = options::parse_list.parse2(args);
    Ok(Parsed { item, options })
}

fn first_tokens(item: TokenStream) -> TokenStream {
    // Point at the start of the item (`struct Foo`), not at all of it.
    item.into_iter().take(2).collect()
}
