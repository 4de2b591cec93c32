//! Syntax only: `name = "graph";` then `node = task(args...) with key = value, ...;`.

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, LitStr, Path, Token};

use crate::options::{self, Raw};

pub struct Dag {
    pub name: Option<LitStr>,
    pub nodes: Vec<Statement>,
}

pub struct Statement {
    pub name: Ident,
    pub task: Path,
    pub call_span: Span,
    pub args: Vec<Expr>,
    pub settings: Vec<Raw>,
}

const SHAPE: &str = "each statement of `dag!` is `name = task(args...);`";

impl Parse for Dag {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut name = None;
        let mut nodes = Vec::new();
        while !input.is_empty() {
            let fork = input.fork();
            if fork.parse::<Ident>().is_ok_and(|i| i == "name")
                && fork.parse::<Token![=]>().is_ok()
                && fork.peek(LitStr)
            {
                let key: Ident = input.parse()?;
                input.parse::<Token![=]>()?;
                let lit: LitStr = input.parse()?;
                input.parse::<Token![;]>()?;
                if name.is_some() || !nodes.is_empty() {
                    return Err(syn::Error::new(
                        key.span(),
                        "the graph's `name = \"...\";` goes once, before the first node",
                    ));
                }
                name = Some(lit);
                continue;
            }
            nodes.push(input.parse()?);
        }
        Ok(Dag { name, nodes })
    }
}

impl Parse for Statement {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let name: Ident = input
            .parse()
            .map_err(|e| syn::Error::new(e.span(), format!("expected a node name: {SHAPE}")))?;
        input.parse::<Token![=]>().map_err(|e| {
            syn::Error::new(e.span(), format!("expected `=` after `{name}`: {SHAPE}"))
        })?;
        let task = Path::parse_mod_style(input).map_err(|e| {
            syn::Error::new(
                e.span(),
                format!("expected the task `{name}` runs: {SHAPE}"),
            )
        })?;
        if !input.peek(syn::token::Paren) {
            return Err(syn::Error::new(
                input.span(),
                format!(
                    "expected `(` with the task's inputs after `{}`: {SHAPE}",
                    crate::pretty::tokens(&task)
                ),
            ));
        }
        let content;
        let paren = syn::parenthesized!(content in input);
        let args = Punctuated::<Expr, Token![,]>::parse_terminated(&content)?
            .into_iter()
            .collect();
        let mut settings = Vec::new();
        if input.peek(Ident) && input.fork().parse::<Ident>().is_ok_and(|i| i == "with") {
            input.parse::<Ident>()?;
            settings = options::parse_list_until_semi(input)?;
        }
        input.parse::<Token![;]>().map_err(|e| {
            syn::Error::new(
                e.span(),
                format!("expected `;` after the node `{name}`: {SHAPE}"),
            )
        })?;
        Ok(Statement {
            name,
            task,
            call_span: paren.span.join(),
            args,
            settings,
        })
    }
}
