//! `dag!`: parse the statements, check names and order, expand to builder calls.

mod check;
mod expand;
mod parse;

use proc_macro2::TokenStream;

pub fn expand(input: TokenStream) -> TokenStream {
    let parsed = match syn::parse2::<parse::Dag>(input) {
        Ok(parsed) => parsed,
        Err(e) => return e.to_compile_error(),
    };
    match check::check(&parsed) {
        Ok(dag) => expand::expand(&dag),
        Err(errors) => errors.iter().map(syn::Error::to_compile_error).collect(),
    }
}
