//! The code fingerprint of a task: a hash of its tokens, blind to whitespace and comments.

use proc_macro2::{Delimiter, TokenStream, TokenTree};

/// Hex BLAKE3 of a canonical rendering of `tokens`. The rendering is ours, not
/// `TokenStream::to_string`, whose spacing may change between compiler versions.
pub fn of(tokens: TokenStream) -> String {
    let mut canonical = String::new();
    render(tokens, &mut canonical);
    blake3::hash(canonical.as_bytes()).to_hex()[..32].to_owned()
}

fn render(tokens: TokenStream, out: &mut String) {
    for tree in tokens {
        match tree {
            TokenTree::Group(g) => {
                let (open, close) = match g.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::None => ("", ""),
                };
                out.push_str(open);
                out.push(' ');
                render(g.stream(), out);
                out.push_str(close);
            }
            TokenTree::Ident(i) => out.push_str(&i.to_string()),
            TokenTree::Punct(p) => out.push(p.as_char()),
            TokenTree::Literal(l) => out.push_str(&l.to_string()),
        }
        out.push(' ');
    }
}

#[cfg(test)]
mod tests {
    use super::of;
    use quote::quote;

    #[test]
    fn whitespace_and_comments_do_not_count() {
        let a: proc_macro2::TokenStream = "fn f(x: u8) -> u8 { x + 1 }".parse().unwrap();
        let b: proc_macro2::TokenStream = "fn f( x : u8 )->u8 {\n  // add one\n  x+1\n}"
            .parse()
            .unwrap();
        assert_eq!(of(a), of(b));
    }

    #[test]
    fn code_counts() {
        assert_ne!(
            of(quote!(
                fn f(x: u8) -> u8 {
                    x + 1
                }
            )),
            of(quote!(
                fn f(x: u8) -> u8 {
                    x + 2
                }
            ))
        );
        assert_ne!(
            of(quote!(
                fn f() {
                    a(b)
                }
            )),
            of(quote!(
                fn f() {
                    a[b]
                }
            ))
        );
    }
}
