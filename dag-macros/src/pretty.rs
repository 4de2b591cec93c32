//! Types and signatures as a person writes them, for messages.

use proc_macro2::{Spacing, TokenStream, TokenTree};
use quote::ToTokens;

/// `Vec<String>` rather than `Vec < String >`.
pub fn tokens(t: &impl ToTokens) -> String {
    let mut out = String::new();
    write(t.to_token_stream(), &mut out);
    out
}

fn write(tokens: TokenStream, out: &mut String) {
    let mut prev_joint_or_open = true;
    let mut prev_ident = false;
    let mut trees = tokens.into_iter().peekable();
    while let Some(tree) = trees.next() {
        let text = match &tree {
            TokenTree::Group(g) => {
                let (open, close) = match g.delimiter() {
                    proc_macro2::Delimiter::Parenthesis => ('(', ')'),
                    proc_macro2::Delimiter::Brace => ('{', '}'),
                    proc_macro2::Delimiter::Bracket => ('[', ']'),
                    proc_macro2::Delimiter::None => (' ', ' '),
                };
                let mut inner = String::new();
                write(g.stream(), &mut inner);
                format!("{open}{}{close}", inner.trim())
            }
            other => other.to_string(),
        };
        // The `!` of a macro call, `vec![...]`, stays with its name.
        let macro_bang =
            text == "!" && prev_ident && matches!(trees.peek(), Some(TokenTree::Group(_)));
        let glue_left = matches!(text.as_str(), "<" | ">" | "," | ":" | ")" | "]" | ";" | "?")
            || macro_bang
            || text.starts_with('(')
            || text.starts_with('[') && out.ends_with(|c: char| c.is_alphanumeric());
        if !out.is_empty() && !prev_joint_or_open && !glue_left {
            out.push(' ');
        }
        out.push_str(&text);
        prev_ident = matches!(tree, TokenTree::Ident(_));
        prev_joint_or_open = match &tree {
            TokenTree::Punct(p) => {
                p.spacing() == Spacing::Joint || matches!(p.as_char(), '<' | '&' | '\'' | '#' | '!')
            }
            TokenTree::Ident(_) => false,
            _ => false,
        };
        if text == "," || text == ":" && !out.ends_with("::") {
            // a space follows a comma or a type ascription colon
            prev_joint_or_open = false;
        }
        if text == "::" || out.ends_with("::") {
            prev_joint_or_open = true;
        }
    }
}

/// Escapes `{` and `}` for a `#[diagnostic::on_unimplemented]` format string.
pub fn escape(text: &str) -> String {
    text.replace('{', "{{").replace('}', "}}")
}

#[cfg(test)]
mod tests {
    use super::tokens;
    use quote::quote;

    #[test]
    fn types_read_naturally() {
        assert_eq!(tokens(&quote!(Vec<String>)), "Vec<String>");
        assert_eq!(tokens(&quote!(&Vec<Link>)), "&Vec<Link>");
        assert_eq!(
            tokens(&quote!(std::collections::HashMap<u32, Vec<u8>>)),
            "std::collections::HashMap<u32, Vec<u8>>"
        );
        assert_eq!(
            tokens(&quote!(Result<Vec<u8>, io::Error>)),
            "Result<Vec<u8>, io::Error>"
        );
        assert_eq!(tokens(&quote!((u8, String))), "(u8, String)");
        assert_eq!(tokens(&quote!([u8; 4])), "[u8; 4]");
        assert_eq!(
            tokens(&quote!(async fn f(a: &u8, b: Vec<u8>) -> usize)),
            "async fn f(a: &u8, b: Vec<u8>) -> usize"
        );
    }

    #[test]
    fn a_macro_call_keeps_its_bang() {
        assert_eq!(tokens(&quote!(vec![1, 2, 3])), "vec![1, 2, 3]");
        assert_eq!(tokens(&quote!(format!("{}", x))), "format!(\"{}\", x)");
        assert_eq!(tokens(&quote!(f(!x))), "f(!x)");
    }
}
