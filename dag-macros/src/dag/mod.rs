//! `dag!`: parse the statements, check names and order, expand to builder calls.

mod check;
mod expand;
mod parse;

use proc_macro2::TokenStream;

pub fn expand(input: TokenStream) -> TokenStream {
    let parsed = match syn::parse2::<parse::Dag>(input) {
        Ok(parsed) => parsed,
        Err(e) => return errors(&[e]),
    };
    match check::check(&parsed) {
        Ok(dag) => expand::expand(&dag),
        Err(list) => {
            let errors = list.iter().map(syn::Error::to_compile_error);
            let graph = expand::placeholder(&parsed);
            quote::quote!({ #(#errors;)* #graph })
        }
    }
}

/// Errors that leave no statements to build on, in one block expression: `dag!` stands where
/// an expression is expected.
fn errors(list: &[syn::Error]) -> TokenStream {
    let errors = list.iter().map(syn::Error::to_compile_error);
    quote::quote!({ #(#errors;)* })
}
