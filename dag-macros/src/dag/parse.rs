//! Syntax only: `name = "graph";` then `node = task(args...) [if [!]cond] [with key = value, ...];`,
//! where a signal node is `node = signal::<Type>()`.

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, LitStr, Path, Token, Type};

use crate::options::{self, Raw};

pub struct Dag {
    pub name: Option<LitStr>,
    pub nodes: Vec<Statement>,
}

pub struct Statement {
    pub name: Ident,
    pub task: Path,
    /// `signal::<T>()`: the node's value, a `T`, comes from outside the graph.
    pub signal: Option<Type>,
    pub call_span: Span,
    pub args: Vec<Expr>,
    /// The `each` keyword before an argument, by the argument's position.
    pub each: Vec<Option<Ident>>,
    /// `if c` (`true`) or `if !c` (`false`), with what is written for `c`.
    pub condition: Option<(bool, Expr)>,
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
        let (task, signal) = if is_signal(input) {
            let (word, ty) = parse_signal(input)?;
            (Path::from(word), Some(ty))
        } else {
            let task = Path::parse_mod_style(input).map_err(|e| {
                syn::Error::new(
                    e.span(),
                    format!("expected the task `{name}` runs: {SHAPE}"),
                )
            })?;
            (task, None)
        };
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
        if signal.is_some() && !content.is_empty() {
            return Err(syn::Error::new(
                content.span(),
                format!(
                    "a signal takes no inputs: its value comes from outside the graph, sent under the node's name; write `{name} = signal::<Type>();`"
                ),
            ));
        }
        let (each, args): (Vec<_>, Vec<_>) =
            Punctuated::<(Option<Ident>, Expr), Token![,]>::parse_terminated_with(
                &content, argument,
            )?
            .into_iter()
            .unzip();
        let mut condition = None;
        if input.peek(Token![if]) {
            condition = Some(parse_condition(input)?);
        }
        let mut settings = Vec::new();
        if input.peek(Ident) && input.fork().parse::<Ident>().is_ok_and(|i| i == "with") {
            input.parse::<Ident>()?;
            settings = options::parse_list_until_semi(input)?;
        }
        if condition.is_none() && input.peek(Token![if]) {
            condition = Some(parse_condition(input)?);
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
            signal,
            call_span: paren.span.join(),
            args,
            each,
            condition,
            settings,
        })
    }
}

/// Whether a signal node follows: `signal::<`. A task named `signal` is called without `::<`.
fn is_signal(input: ParseStream) -> bool {
    let fork = input.fork();
    fork.parse::<Ident>().is_ok_and(|i| i == "signal")
        && fork.parse::<Token![::]>().is_ok()
        && fork.peek(Token![<])
}

/// `signal::<T>`: the word, for messages, and the value's type.
fn parse_signal(input: ParseStream) -> syn::Result<(Ident, Type)> {
    let word: Ident = input.parse()?;
    input.parse::<Token![::]>()?;
    input.parse::<Token![<]>()?;
    let ty: Type = input.parse()?;
    input.parse::<Token![>]>().map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected `>` after the signal's type: a signal node is `name = signal::<Type>();`",
        )
    })?;
    Ok((word, ty))
}

/// One argument: an expression, after `each` when the task runs once per item of it.
fn argument(input: ParseStream) -> syn::Result<(Option<Ident>, Expr)> {
    // Most arguments are a node's name alone: read it without the expression parser, which
    // a `dag!` of a thousand nodes would otherwise run a thousand times.
    if let Some(name) = lone_name(input) {
        return Ok((None, name));
    }
    let fork = input.fork();
    let each = match fork.parse::<Ident>() {
        // `each` is the keyword when what follows starts an expression of its own: a name, a
        // literal or a bracketed group. Otherwise (`each`, `each.len()`) it is a variable.
        Ok(word)
            if word == "each"
                && (fork.peek(Ident)
                    || fork.peek(syn::Lit)
                    || fork.peek(syn::token::Paren)
                    || fork.peek(syn::token::Bracket)
                    || fork.peek(syn::token::Brace)) =>
        {
            Some(input.parse::<Ident>()?)
        }
        _ => None,
    };
    Ok((each, input.parse()?))
}

/// A name alone (`a` followed by `,` or the end), read as the expression it is; `None`,
/// reading nothing, for anything else, keywords included.
fn lone_name(input: ParseStream) -> Option<Expr> {
    // `each` starts an argument; the rest are Rust's keywords and `_`, left to the
    // expression parser and its messages.
    const WORDS: &[&str] = &[
        "each", "_", "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else",
        "enum", "extern", "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match",
        "mod", "move", "mut", "pub", "ref", "return", "self", "Self", "static", "struct", "super",
        "trait", "true", "try", "type", "unsafe", "use", "where", "while", "yield", "abstract",
        "become", "box", "do", "final", "macro", "override", "priv", "typeof", "unsized",
        "virtual",
    ];
    // A fragment a `macro_rules!` passed (`$x:expr`) is an invisible group, whose span
    // the expression keeps: left to the expression parser.
    if input.cursor().group(proc_macro2::Delimiter::None).is_some() {
        return None;
    }
    let (name, rest) = input.cursor().ident()?;
    let alone = rest.eof() || rest.punct().is_some_and(|(p, _)| p.as_char() == ',');
    if !alone || WORDS.contains(&name.to_string().as_str()) {
        return None;
    }
    input
        .step(|cursor| Ok(((), cursor.ident().map_or(*cursor, |(_, rest)| rest))))
        .ok()?;
    Some(Expr::Path(syn::ExprPath {
        attrs: Vec::new(),
        qself: None,
        path: Path::from(name),
    }))
}

/// `if c` or `if !c`, where `c` should be a node (checked later, with the names).
fn parse_condition(input: ParseStream) -> syn::Result<(bool, Expr)> {
    input.parse::<Token![if]>()?;
    let holds = !input.peek(Token![!]);
    if !holds {
        input.parse::<Token![!]>()?;
    }
    let cond = Expr::parse_without_eager_brace(input).map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected a node after `if`: a node runs `if flag;` or `if !flag;`, where `flag` is a node of output `bool` declared above",
        )
    })?;
    Ok((holds, cond))
}
