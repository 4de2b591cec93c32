//! Syntax only: `key = value` pairs as written, in a `#[task(...)]` list or after `with`.

use syn::Token;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;

use super::Raw;

impl Parse for Raw {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let key: syn::Ident = input.call(syn::ext::IdentExt::parse_any)?;
        if !input.peek(Token![=]) {
            return Err(syn::Error::new(
                key.span(),
                format!("expected `{key} = <value>`: settings are written as `key = value`"),
            ));
        }
        input.parse::<Token![=]>()?;
        let value: syn::Expr = input.parse()?;
        Ok(Raw { key, value })
    }
}

/// Parses `a = 1, b = "x"` (possibly empty).
pub fn parse_list(input: ParseStream) -> syn::Result<Vec<Raw>> {
    Ok(Punctuated::<Raw, Token![,]>::parse_terminated(input)?
        .into_iter()
        .collect())
}

/// Parses `a = 1, b = "x"` up to (not including) a `;`.
pub fn parse_list_until_semi(input: ParseStream) -> syn::Result<Vec<Raw>> {
    let mut list = Vec::new();
    loop {
        list.push(input.parse::<Raw>()?);
        if input.peek(Token![,]) {
            input.parse::<Token![,]>()?;
            continue;
        }
        return Ok(list);
    }
}
