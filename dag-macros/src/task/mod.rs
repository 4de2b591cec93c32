//! `#[task]`: parse the function and options, check them, expand to the companion struct.

mod check;
mod expand;
mod parse;

use proc_macro2::TokenStream;
use quote::quote;

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let parsed = match parse::parse(args, item.clone()) {
        Ok(parsed) => parsed,
        // Keep the user's item so one mistake gives one error, not a cascade.
        Err(e) => {
            let error = e.to_compile_error();
            return quote!(#item #error);
        }
    };
    match check::check(&parsed) {
        Ok(task) => expand::expand(&parsed.item, &task),
        Err(errors) => {
            let item = &parsed.item;
            let errors = errors.iter().map(syn::Error::to_compile_error);
            quote!(#item #(#errors)*)
        }
    }
}
