//! Names and order: every node name unique, every node reference to a node declared above,
//! lists made of node names only, settings valid. Collects every error; emits no tokens.

use std::collections::HashMap;

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Expr, Ident, LitStr, Path, Type};

use super::parse::{Dag, Statement};
use crate::options::{self, Place, Settings};

pub struct Checked {
    pub name: Option<LitStr>,
    pub nodes: Vec<Node>,
}

pub struct Node {
    pub name: Ident,
    pub task: Path,
    /// A signal node's value type.
    pub signal: Option<Type>,
    pub call_span: Span,
    pub args: Vec<Arg>,
    /// `if c` / `if !c`: whether `c` must be true, the node, and its name as written.
    pub condition: Option<(bool, usize, Ident)>,
    pub settings: Settings,
}

pub enum Arg {
    /// A node declared above, by index, with the name as written.
    Node(usize, Ident),
    /// `[a, b, c]`: nodes declared above.
    List(Vec<(usize, Ident)>, Span),
    /// `each a`: the task runs once per item of node `a`'s `Vec` output.
    Each(usize, Ident),
    /// Any other expression: a constant input.
    Value(Expr),
}

pub fn check(dag: &Dag) -> Result<Checked, Vec<syn::Error>> {
    let mut errors = Vec::new();
    let names = Names::declare(dag, &mut errors);

    let mut nodes = Vec::new();
    for (i, stmt) in dag.nodes.iter().enumerate() {
        let mut args = Vec::new();
        // The argument `each` is already on, as written.
        let mut mapped: Option<String> = None;
        for (expr, each) in stmt.args.iter().zip(&stmt.each) {
            if let Some(keyword) = each {
                if let Some(first) = &mapped {
                    errors.push(syn::Error::new(
                        keyword.span(),
                        format!(
                            "a node maps over one list, and `{}` already has `each {first}`: drop this `each` to pass `{}` whole to every item, or map in two steps",
                            stmt.name,
                            crate::pretty::tokens(expr)
                        ),
                    ));
                    continue;
                }
                mapped = Some(crate::pretty::tokens(expr));
                match names.node(expr) {
                    Some((to, ident)) => {
                        if let Some(j) = reference(dag, &names, i, to, ident, &mut errors) {
                            args.push(Arg::Each(j, ident.clone()));
                        }
                    }
                    None => errors.push(syn::Error::new_spanned(
                        expr,
                        format!(
                            "`each` takes a node of this `dag!` whose output is a `Vec`, and `{}` is not a node: to map over a constant list, add a task that returns it (`items = list(...);`) and write `each items`",
                            crate::pretty::tokens(expr)
                        ),
                    )),
                }
                continue;
            }
            match names.node(expr) {
                Some((to, ident)) => {
                    if let Some(j) = reference(dag, &names, i, to, ident, &mut errors) {
                        args.push(Arg::Node(j, ident.clone()));
                    }
                }
                None => match expr {
                    Expr::Array(array) if array.elems.iter().any(|e| names.node(e).is_some()) => {
                        let mut list = Vec::new();
                        for elem in &array.elems {
                            match names.node(elem) {
                                Some((to, ident)) => {
                                    if let Some(j) =
                                        reference(dag, &names, i, to, ident, &mut errors)
                                    {
                                        list.push((j, ident.clone()));
                                    }
                                }
                                None => errors.push(syn::Error::new(
                                    elem.span(),
                                    format!(
                                        "a list of nodes holds node names only, and `{}` is not a node of this `dag!`; pass constants to a parameter of their own",
                                        crate::pretty::tokens(elem)
                                    ),
                                )),
                            }
                        }
                        args.push(Arg::List(list, array.span()));
                    }
                    other => args.push(Arg::Value(other.clone())),
                },
            }
        }
        let condition = stmt.condition.as_ref().and_then(|(holds, expr)| {
            match names.node(expr) {
                Some((to, ident)) if to == i => {
                    errors.push(syn::Error::new(
                        ident.span(),
                        format!(
                            "the condition of `{ident}` is `{ident}` itself: whether a node runs cannot depend on its own output; the condition is a node of output `bool` declared above `{ident} = ...;`"
                        ),
                    ));
                    None
                }
                Some((to, ident)) => reference(dag, &names, i, to, ident, &mut errors)
                    .map(|j| (*holds, j, ident.clone())),
                None => {
                    errors.push(syn::Error::new(
                        expr.span(),
                        format!(
                            "a condition is a node of this `dag!` whose output is `bool`, and `{}` is not a node: write `if flag;` with `flag = task(...);` declared above",
                            crate::pretty::tokens(expr)
                        ),
                    ));
                    None
                }
            }
        });
        let settings = options::check(&stmt.settings, Place::Node, &mut errors);
        if stmt.signal.is_some() {
            signal_settings(&stmt.name, &settings, &mut errors);
        }
        nodes.push(Node {
            name: stmt.name.clone(),
            task: stmt.task.clone(),
            signal: stmt.signal.clone(),
            call_span: stmt.call_span,
            args,
            condition,
            settings,
        });
    }

    if errors.is_empty() {
        Ok(Checked {
            name: dag.name.clone(),
            nodes,
        })
    } else {
        Err(errors)
    }
}

/// A signal waits once for its value: retries, backoff and a loop's `max` have nothing to
/// repeat.
fn signal_settings(name: &Ident, settings: &Settings, errors: &mut Vec<syn::Error>) {
    let spans = [
        ("retries", settings.retries.as_ref().map(|s| s.span)),
        ("backoff", settings.backoff.as_ref().map(|s| s.span)),
        ("max", settings.max.as_ref().map(|s| s.span)),
    ];
    for (key, span) in spans {
        if let Some(span) = span {
            errors.push(syn::Error::new(
                span,
                format!(
                    "`{key}` does not apply to a signal: `{name}` waits once for its value; a signal node takes `timeout` (how long it waits) and `priority`"
                ),
            ));
        }
    }
}

/// The node names of a `dag!`, each with the statement that declares it.
struct Names(HashMap<String, usize>);

impl Names {
    /// Reads every statement's name; a name declared twice is an error at the second one.
    fn declare(dag: &Dag, errors: &mut Vec<syn::Error>) -> Names {
        let mut index: HashMap<String, usize> = HashMap::new();
        for (i, stmt) in dag.nodes.iter().enumerate() {
            let name = stmt.name.to_string();
            if let Some(&first) = index.get(&name) {
                errors.push(syn::Error::new(
                    stmt.name.span(),
                    format!(
                        "duplicate node name `{name}`: a node `{name}` is already declared above (statement {}); node names must be unique within a `dag!`",
                        first + 1
                    ),
                ));
            } else {
                index.insert(name, i);
            }
        }
        Names(index)
    }

    /// The node an argument refers to, with the statement that declares it: an argument is a
    /// node exactly when it is a bare identifier naming a node of this `dag!`. Anything
    /// else, including a local that no node shares the name of, is a constant input.
    fn node<'a>(&self, expr: &'a Expr) -> Option<(usize, &'a Ident)> {
        match expr {
            Expr::Path(p) if p.qself.is_none() && p.attrs.is_empty() => {
                let ident = p.path.get_ident()?;
                self.0.get(&ident.to_string()).map(|&i| (i, ident))
            }
            Expr::Group(g) => self.node(&g.expr),
            _ => None,
        }
    }
}

/// Checks a reference from statement `from` to node `to`, named `ident`, which must be
/// above it.
fn reference(
    dag: &Dag,
    names: &Names,
    from: usize,
    to: usize,
    ident: &Ident,
    errors: &mut Vec<syn::Error>,
) -> Option<usize> {
    let me = &dag.nodes[from].name;
    if to == from {
        errors.push(syn::Error::new(
            ident.span(),
            format!("node `{me}` takes its own output as input: that is a cycle; a node can only use nodes declared above it (inside `dag!` a bare name is the node of that name: to pass a variable `{me}` of the enclosing scope, rename the variable or the node)"),
        ));
        return None;
    }
    if to > from {
        let message = match path(dag, names, to, from) {
            Some(cycle) => format!(
                "`{me}` uses `{ident}`, which is declared below it and itself depends on `{me}`: this would be a cycle ({}); a graph must be acyclic",
                cycle.join(" → ")
            ),
            None => format!(
                "node `{ident}` is used before it is declared: a node can only use nodes declared above it; move `{ident} = ...;` above `{me} = ...;` (or, to pass a variable `{ident}` of the enclosing scope, rename the variable or the node)"
            ),
        };
        errors.push(syn::Error::new(ident.span(), message));
        return None;
    }
    Some(to)
}

/// The chain of uses from node `start` down to node `goal`, if `start` depends on `goal`:
/// `[me, start, ..., me]` spelled as names.
fn path(dag: &Dag, names: &Names, start: usize, goal: usize) -> Option<Vec<String>> {
    fn uses(stmt: &Statement, names: &Names) -> Vec<usize> {
        let mut out = Vec::new();
        for arg in &stmt.args {
            let mut push = |e: &Expr| {
                if let Some((i, _)) = names.node(e) {
                    out.push(i);
                }
            };
            match arg {
                Expr::Array(a) => a.elems.iter().for_each(&mut push),
                other => push(other),
            }
        }
        if let Some((_, cond)) = &stmt.condition
            && let Some((i, _)) = names.node(cond)
        {
            out.push(i);
        }
        out
    }
    let mut seen = vec![false; dag.nodes.len()];
    let mut stack = vec![(start, vec![start])];
    while let Some((at, trail)) = stack.pop() {
        if at == goal {
            let mut names: Vec<String> = std::iter::once(goal)
                .chain(trail.iter().copied())
                .map(|i| format!("`{}`", dag.nodes[i].name))
                .collect();
            names.dedup();
            let first = names.first().cloned();
            if names.last() != first.as_ref() {
                names.extend(first);
            }
            return Some(names);
        }
        if std::mem::replace(&mut seen[at], true) {
            continue;
        }
        for next in uses(&dag.nodes[at], names) {
            let mut t = trail.clone();
            t.push(next);
            stack.push((next, t));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_a_bare_identifier_naming_a_node() {
        let dag: Dag = syn::parse_quote!(a = t(1); b = t(a););
        let names = Names::declare(&dag, &mut Vec::new());
        let node = |e: Expr| names.node(&e).map(|(i, ident)| (i, ident.to_string()));
        assert_eq!(node(syn::parse_quote!(b)), Some((1, "b".into())));
        assert_eq!(node(syn::parse_quote!(url)), None);
        assert_eq!(node(syn::parse_quote!(self::a)), None);
        assert_eq!(node(syn::parse_quote!(a.clone())), None);
        assert_eq!(node(syn::parse_quote!([a])), None);
    }

    #[test]
    fn a_signal_is_a_node_of_its_type_without_inputs() {
        let dag: Dag = syn::parse_quote!(approve = signal::<Approval>() with timeout = "1s"; go = signal(approve););
        let checked = check(&dag).unwrap_or_else(|_| panic!("a valid dag!"));
        let ty = checked.nodes[0].signal.as_ref().map(crate::pretty::tokens);
        assert_eq!(ty.as_deref(), Some("Approval"));
        // Without `::<`, `signal` is a task like any other.
        assert!(checked.nodes[1].signal.is_none());
        assert!(matches!(checked.nodes[1].args[..], [Arg::Node(0, _)]));
    }

    #[test]
    fn a_signal_takes_no_inputs_nor_retries() {
        let parsed = syn::parse_str::<Dag>("approve = signal::<Approval>(1);");
        let message = parsed.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.starts_with("a signal takes no inputs"), "{message}");

        let dag: Dag = syn::parse_quote!(approve = signal::<Approval>() with retries = 2, max = 3;);
        let errors = check(&dag).err().unwrap_or_default();
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(
            messages[1].starts_with("`max` does not apply to a signal"),
            "{messages:?}"
        );
        assert!(
            messages[0].starts_with("`retries` does not apply to a signal: `approve` waits once"),
            "{messages:?}"
        );
    }
}
