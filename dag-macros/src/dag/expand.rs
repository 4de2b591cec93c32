//! Expands a checked `dag!` into data and checks, so that a large graph costs the build
//! little more than a table:
//!
//! - a constant table of nodes (id, task, where each argument comes from) that the runtime
//!   adds in one call, with the constants and lists evaluated beside it; each task is named
//!   once, by a constant;
//! - every wiring check, each on the argument's own tokens, in a closure that is
//!   type-checked and never called, which also gives the outputs struct its types; the
//!   nodes of one task with as many arguments past the first few share one wiring, checked
//!   for that count once;
//! - the outputs struct, declared by the runtime's `outputs!` from one line per node, its
//!   field types named through each task's gate (`Gated`), so that a name that is not a task
//!   is one error.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::check::{Arg, Checked, Node};
use super::parse::Dag;

pub fn expand(dag: &Checked) -> TokenStream {
    let graph = format_ident!("__typedag_graph");
    let name = match &dag.name {
        Some(lit) => quote!(#lit),
        None => quote!(::core::module_path!()),
    };
    let markers = dag.nodes.iter().map(|n| {
        let marker = marker(n, Span::call_site());
        quote!(pub struct #marker;)
    });
    // Each field's type is written out: its task's output, in a `Vec` for a map node, in
    // an `Option` for a node that may not run (its condition, or what its parameters make
    // of the nodes it reads that may not, computed by the compiler), named through the
    // task's gate (`Gated`), so that a name that is not a task is reported once, on its
    // node. Not past a long chain of nodes that may not run, whose written types would grow
    // with it (`MAYBE_SIZE`).
    let mays = mays(dag);
    let typed = mays.iter().all(|m| m.size() <= MAYBE_SIZE);
    let tasks = Tasks::of(dag);
    let outputs = if typed {
        typed_outputs(dag, &tasks, &mays)
    } else {
        let fields: Vec<_> = dag.nodes.iter().map(|n| &n.name).collect();
        outputs_structs(&fields)
    };

    // At run time: the wiring of the nodes with constants (whose conversion is the check),
    // the lists, and the sources of both, in node and argument order.
    let mut runtime_args = Vec::new();
    let mut lists = Vec::new();
    let mut given = Vec::new();
    // In the closure that is type-checked and never run: every other node's wiring, every
    // handle, every node and list check, and the outputs struct.
    let mut checked_args = Vec::new();
    let wirings = Wirings::of(dag, &tasks);
    for (index, n) in dag.nodes.iter().enumerate() {
        // A signal node has no task to call, so no wiring: its handle is all it needs. Nodes
        // of one task with as many arguments share the wiring of the first.
        if n.signal.is_none() && wirings.owner[index] == index {
            let wiring = wiring(index, n);
            if wirings.at_run_time[index] {
                runtime_args.push(wiring);
            } else {
                checked_args.push(wiring);
            }
        }
        for (i, arg) in n.args.iter().enumerate() {
            match arg {
                Arg::Node(..) => {}
                Arg::List(items, span) => {
                    let list = list_local(index, i, *span);
                    let indices = items.iter().map(|(j, _)| j);
                    lists.push(quote_spanned! {*span=>
                        let #list = __typedag::ListOf::new(&[#(#indices),*]);
                    });
                    given.push(quote!(#list.source()));
                }
                Arg::Each(j, ident) => {
                    let span = ident.span();
                    let local = each_local(index, i, span);
                    lists.push(quote_spanned! {span=>
                        let #local = __typedag::EachOf::new(#j);
                    });
                    given.push(quote_spanned!(span=> #local.source()));
                }
                Arg::Value(expr) => given.push(value(wirings.owner[index], i, expr)),
            }
        }
    }
    let rows = dag
        .nodes
        .iter()
        .enumerate()
        .map(|(index, n)| row(&tasks, index, n));
    let task_refs = tasks.refs(dag);
    let settings =
        dag.nodes.iter().enumerate().map(|(index, n)| {
            crate::options::expand::node_configuration(&n.settings, &graph, index)
        });
    let handles = dag
        .nodes
        .iter()
        .enumerate()
        .map(|(index, n)| node_handle(dag, &wirings, index, n));
    let shape = dag.nodes.iter().enumerate().map(|(index, n)| {
        let field = &n.name;
        let handle = handle_local(index, Span::call_site());
        quote!(#field: #handle)
    });
    let conditions = dag.nodes.iter().enumerate().filter_map(|(index, n)| {
        let (holds, j, _) = n.condition.as_ref()?;
        Some(quote!(__typedag::Conditional(#index, #j, #holds)))
    });
    // The wiring checks, each on its argument's own tokens (and the outputs' types, when
    // inferred): in a closure that is type-checked and never called, so they cost the
    // program no code.
    let typing = if typed {
        quote! {
            let _ = || {
                #(#checked_args)*
                #(#handles)*
            };
            #graph.typed_as::<__TypedagOutputs>()
        }
    } else {
        quote! {
            #graph.typed(|| {
                #(#checked_args)*
                #(#handles)*
                __TypedagOutputs { #(#shape),* }
            })
        }
    };
    let imports = imports();
    quote! {{
        #imports

        #[allow(non_camel_case_types, dead_code, unreachable_pub)]
        mod __typedag_nodes {
            #(#markers)*
        }

        #outputs

        #(#runtime_args)*
        #(#lists)*
        #(#task_refs)*
        let mut #graph = __typedag::Graph::new(#name);
        #graph.add_rows(
            const { &[#(#rows),*] },
            __typedag::sources([#(#given),*]),
            &[#(#conditions),*],
        );
        #(#settings)*
        #typing
    }}
}

/// The runtime's items the expansion names, each in one token: a name used once per node
/// costs the build a few tokens more per node when written as a path.
fn imports() -> TokenStream {
    quote! {
        #[allow(unused_imports)]
        use ::typedag::__private::{
            self as __typedag, Row as __TypedagRow, Task as __TypedagTask,
            handle_of as __typedag_handle_of, map_handle_of as __typedag_map_handle_of,
        };
    }
}

/// The outputs struct of a `dag!`, a field per node, with its partial twin and how both
/// are taken from a run's outputs: declared by `__typedag::outputs!`, one line per node.
fn outputs_structs(fields: &[&syn::Ident]) -> TokenStream {
    let lines = fields.iter().enumerate().map(|(i, field)| {
        let param = format_ident!("__TypedagOut{}", i);
        let index = proc_macro2::Literal::usize_unsuffixed(i);
        quote!(#field #param #index)
    });
    quote!(__typedag::outputs! { #(#lines)* })
}

/// The outputs struct of a `dag!` with each field of its node's written type: the task's
/// output (a signal's value), in a `Vec` for a map node, in an `Option` for a node that may
/// not run (its condition, or what its parameters make of a node it reads that may not: an
/// alias `__TypedagMaybe{index}` the compiler folds to `Yes` or `No`). Each task's output
/// type is named once, by an alias on the task's tokens.
fn typed_outputs(dag: &Checked, tasks: &Tasks, mays: &[May]) -> TokenStream {
    let mut aliases = Vec::new();
    let mut lines = Vec::new();
    for ((i, n), maybe) in dag.nodes.iter().enumerate().zip(mays) {
        let field = &n.name;
        let each = n.args.iter().any(|a| matches!(a, Arg::Each(..)));
        let index = proc_macro2::Literal::usize_unsuffixed(i);
        let owner = tasks.owner[i];
        if let Some(reason) = maybe.alias(owner) {
            let alias = maybe_alias(i);
            aliases.push(quote!(type #alias = #reason;));
        }
        let ty = if n.signal.is_some() {
            let value = n.signal.as_ref().map(|v| quote!(#v));
            maybe.field(i, quote!(#value))
        } else {
            let alias = output_alias(owner);
            if owner == i {
                let task = &n.task;
                let gated = gated_alias(i);
                aliases.push(quote_spanned! {task.span()=>
                    #[allow(non_camel_case_types)]
                    type #gated = __typedag::Gated<(#task,), { <#task as __TypedagTask>::IS_TASK }>;
                    #[allow(non_camel_case_types)]
                    type #alias = <#gated as __typedag::Gate>::Output;
                });
            }
            let mut ty = quote!(#alias);
            if each {
                ty = quote!(::std::vec::Vec<#ty>);
            }
            maybe.field(i, ty)
        };
        lines.push(quote!(#field: #ty = #index));
    }
    quote! {
        #(#aliases)*
        __typedag::outputs! { typed #(#lines)* }
    }
}

/// Whether a node may not run, as `dag!` writes its field: never, always (its condition),
/// or as its parameters make of the nodes it reads that may not run (an `Option` parameter
/// receives `None` and runs), computed by the compiler from the kinds of the task's
/// parameters (`Passing`).
enum May {
    No,
    Yes,
    /// The nodes it reads that may not run (each through its parameter's position, or
    /// directly for an `each` or a list), and how large its written type is once the
    /// compiler expands the nodes' aliases in it.
    Computed(Vec<Read>, usize),
}

/// A node read that may not run.
enum Read {
    /// Through parameter `k`, whose kind says what the reader makes of it.
    Param(usize, usize),
    /// Directly: the reader may not run when it does not.
    Direct(usize),
}

impl May {
    /// How large the written type is once expanded: 0 for a node that always runs.
    fn size(&self) -> usize {
        match self {
            May::No => 0,
            May::Yes => 1,
            May::Computed(_, size) => *size,
        }
    }

    /// The type the node's `__TypedagMaybe{index}` alias stands for, when another node may
    /// read it; `owner` is the first node of its task.
    fn alias(&self, owner: usize) -> Option<TokenStream> {
        let gated = gated_alias(owner);
        match self {
            May::No => None,
            May::Yes => Some(quote!(__typedag::Yes)),
            May::Computed(reads, _) => reads
                .iter()
                .map(|read| match *read {
                    Read::Param(k, j) => {
                        let read = maybe_alias(j);
                        let at = (0..k).fold(quote!(__typedag::Z), |n, _| quote!(__typedag::S<#n>));
                        quote! {
                            <<<<#gated as __typedag::Gate>::Wiring as __typedag::Passing>::Kinds
                                as __typedag::At<#at>>::Kind as __typedag::Kind>::Maybe<#read>
                        }
                    }
                    Read::Direct(j) => {
                        let read = maybe_alias(j);
                        quote!(#read)
                    }
                })
                .reduce(|a, b| quote!(<#a as __typedag::Maybe>::Or<#b>)),
        }
    }

    /// The field of node `index`, of output `ty`.
    fn field(&self, index: usize, ty: TokenStream) -> TokenStream {
        match self {
            May::No => ty,
            May::Yes => quote!(::core::option::Option<#ty>),
            May::Computed(..) => {
                let alias = maybe_alias(index);
                quote!(<#alias as __typedag::Maybe>::Field<#ty>)
            }
        }
    }
}

/// For each node, whether it may not run: from its condition and what its parameters make
/// of the nodes it reads, in order, each from those above it.
fn mays(dag: &Checked) -> Vec<May> {
    let mut mays: Vec<May> = Vec::with_capacity(dag.nodes.len());
    for n in &dag.nodes {
        let may = maybe_of(&mays, n);
        mays.push(may);
    }
    mays
}

/// Whether node `n` may not run, from its condition and what its parameters make of the
/// nodes it reads (`may`, the nodes above it). Each reason read through a parameter is
/// wrapped in the parameter's kind, and every two reasons in an `Or`: the size counts both.
fn maybe_of(may: &[May], n: &Node) -> May {
    if n.condition.is_some() {
        return May::Yes;
    }
    let mut reads = Vec::new();
    let mut sizes = Vec::new();
    for (k, arg) in n.args.iter().enumerate() {
        match arg {
            Arg::Node(j, _) if may[*j].size() > 0 => {
                reads.push(Read::Param(k, *j));
                sizes.push(may[*j].size() + 1);
            }
            Arg::Each(j, _) if may[*j].size() > 0 => {
                reads.push(Read::Direct(*j));
                sizes.push(may[*j].size());
            }
            Arg::List(items, _) => {
                for (j, _) in items.iter().filter(|(j, _)| may[*j].size() > 0) {
                    reads.push(Read::Direct(*j));
                    sizes.push(may[*j].size());
                }
            }
            _ => {}
        }
    }
    if reads.is_empty() {
        return May::No;
    }
    let ors = reads.len() - 1;
    let size = sizes.into_iter().fold(ors, usize::saturating_add);
    May::Computed(reads, size)
}

/// The largest a node's written `May::Computed` type may be. The compiler expands a node's
/// reasons into those of the nodes it reads, and so on, for every use of its field: past
/// this, a long chain of nodes that may not run costs more than the inferred struct.
const MAYBE_SIZE: usize = 64;

/// The alias of whether node `index` may not run: `Yes` or `No`.
fn maybe_alias(index: usize) -> syn::Ident {
    format_ident!("__TypedagMaybe{}", index)
}

/// The alias of the output type of the task of node `index`, the first node of its task.
fn output_alias(index: usize) -> syn::Ident {
    format_ident!("__TypedagOut{}", index)
}

/// The alias of the task of node `index`, the first node of its task, gated by its
/// constant (`Gated`): the types named through it are errors where it is not a task, which
/// its one error covers.
fn gated_alias(index: usize) -> syn::Ident {
    format_ident!("__TypedagGated{}", index)
}

/// A node's field in the outputs struct: its task's output (a signal's value), in a `Vec`
/// for a map node, in an `Option` for a node with a condition.
fn field_type(
    task: &syn::Path,
    signal: Option<&syn::Type>,
    each: bool,
    conditional: bool,
) -> TokenStream {
    let mut ty = match signal {
        Some(value) => quote!(#value),
        None => quote_spanned!(task.span()=> <#task as __TypedagTask>::Output),
    };
    if each {
        ty = quote!(::std::vec::Vec<#ty>);
    }
    if conditional {
        ty = quote!(::core::option::Option<#ty>);
    }
    ty
}

/// What `dag!` stands for when its statements have a mistake reported beside it: a graph of
/// the type the statements declare, with an outputs field per node name, so that the lines
/// using it (`Runner::run(graph)`, `out.node`) add no errors of their own. Never built: the
/// program does not compile.
pub fn placeholder(dag: &Dag) -> TokenStream {
    let mut seen = std::collections::HashSet::new();
    let nodes: Vec<_> = dag
        .nodes
        .iter()
        .filter(|n| seen.insert(n.name.to_string()))
        .collect();
    let fields: Vec<_> = nodes.iter().map(|n| &n.name).collect();
    let types = nodes.iter().map(|n| {
        let each = n.each.iter().any(Option::is_some);
        field_type(&n.task, n.signal.as_ref(), each, n.condition.is_some())
    });
    let outputs = outputs_structs(&fields);
    let imports = imports();
    quote! {
        #imports

        #outputs

        __typedag::Graph::new("").typed_as::<__TypedagOutputs<#(#types),*>>()
    }
}

// Locals carry a `__typedag_` prefix and call-site hygiene rather than mixed-site, placed at
// the argument they stand for. A check is a method call on the argument's own tokens (where
// rustc reports it even when its receiver is of another hygiene context); the two checks
// that are function calls, a condition and `max`, are made of tokens of one context, or
// rustc could not join their spans and would report them on the whole `dag!`.

/// The zero-sized type whose name is the node's name, so wiring errors can print it.
fn marker(n: &Node, span: Span) -> syn::Ident {
    syn::Ident::new(&n.name.to_string(), span)
}

/// `span`'s place, resolved where `dag!` is: its locals are declared there, and a token
/// that names one may come from elsewhere (a name a `macro_rules!` passed to `dag!`).
fn resolved_here(span: Span) -> Span {
    Span::call_site().located_at(span)
}

/// The local holding node `index`'s wiring, whose methods check and convert its arguments.
fn args_local(index: usize, span: Span) -> syn::Ident {
    format_ident!("__typedag_args{}", index, span = resolved_here(span))
}

/// The local holding the `each` argument `i` of node `index`.
fn each_local(index: usize, i: usize, span: Span) -> syn::Ident {
    format_ident!("__typedag_each{}_{}", index, i, span = resolved_here(span))
}

/// The local holding the list given to argument `i` of node `index`.
fn list_local(index: usize, i: usize, span: Span) -> syn::Ident {
    format_ident!("__typedag_list{}_{}", index, i, span = resolved_here(span))
}

/// `let __typedag_args{index} = <task as Task>::WIRING.arity::<K>();`: the wiring of the
/// nodes of its task with K arguments, checked for that number on the call of the first.
/// It also stands for each of these nodes in the wiring checks, and in the outputs struct
/// they build.
fn wiring(index: usize, n: &Node) -> TokenStream {
    let task = &n.task;
    let arity = n.args.len();
    let args = args_local(index, Span::call_site());
    let wiring = quote_spanned! {task.span()=>
        <#task as __TypedagTask>::WIRING
    };
    let arity_call = quote_spanned!(n.call_span=> .arity::<#arity>());
    quote!(let #args = #wiring #arity_call;)
}

/// For each node of a task, the node whose wiring it uses: its own for the first
/// `OWN_WIRINGS` nodes of the task with as many arguments, each checked for that count on
/// its own call (so that a wrong count is reported on each); the first node's for the rest,
/// which share its check. A program may repeat a task over many nodes, and a wiring per node
/// costs the build more than anything else per node.
struct Wirings {
    owner: Vec<usize>,
    /// Whether the wiring is needed at run time: a node of it has a constant argument,
    /// converted by the wiring.
    at_run_time: Vec<bool>,
}

impl Wirings {
    fn of(dag: &Checked, tasks: &Tasks) -> Self {
        let mut first = std::collections::HashMap::new();
        let mut owner = Vec::with_capacity(dag.nodes.len());
        let mut at_run_time = vec![false; dag.nodes.len()];
        for (index, n) in dag.nodes.iter().enumerate() {
            let o = match n.signal {
                Some(_) => index,
                None => {
                    let (first, seen) = first
                        .entry((tasks.owner[index], n.args.len()))
                        .or_insert((index, 0));
                    *seen += 1;
                    if *seen <= OWN_WIRINGS { index } else { *first }
                }
            };
            owner.push(o);
            if n.args.iter().any(|a| matches!(a, Arg::Value(_))) {
                at_run_time[o] = true;
            }
        }
        Wirings { owner, at_run_time }
    }
}

/// How many nodes of a task with as many arguments have a wiring of their own, each checked
/// for that number (on the 1,000-node chain of `benches/compile_time.py`, 999 nodes of one
/// task, a wiring per node added 16% to rustc's work of a rebuild).
const OWN_WIRINGS: usize = 8;

/// For each node of a task, the first node of the same task: the table names each task
/// once, by a constant.
struct Tasks {
    owner: Vec<usize>,
}

impl Tasks {
    fn of(dag: &Checked) -> Self {
        let mut first = std::collections::HashMap::new();
        let owner = dag
            .nodes
            .iter()
            .enumerate()
            .map(|(index, n)| {
                let task = &n.task;
                match n.signal {
                    Some(_) => index,
                    None => *first.entry(quote!(#task).to_string()).or_insert(index),
                }
            })
            .collect();
        Tasks { owner }
    }

    /// `const __typedag_task{index}: TaskRef = <task as Task>::ROW;` for each task, on the
    /// tokens of its first node, where a path that is not a task is reported.
    fn refs<'a>(&'a self, dag: &'a Checked) -> impl Iterator<Item = TokenStream> + 'a {
        dag.nodes.iter().enumerate().filter_map(|(index, n)| {
            if n.signal.is_some() || self.owner[index] != index {
                return None;
            }
            let task = &n.task;
            let name = task_local(index);
            let task_ref = quote_spanned!(task.span()=> <#task as __TypedagTask>::ROW);
            Some(quote! {
                #[allow(non_upper_case_globals)]
                const #name: __typedag::TaskRef = #task_ref;
            })
        })
    }
}

/// The constant naming the task of node `index`, the first node of its task.
fn task_local(index: usize) -> syn::Ident {
    format_ident!("__typedag_task{}", index)
}

/// The node's row of the table: its id, its task, and where each argument comes from. A
/// signal node's task is `Signal<T>`, named through `signal_row`, whose bound on `T` is
/// checked here, on `T`.
fn row(tasks: &Tasks, index: usize, n: &Node) -> TokenStream {
    let id = n.name.to_string();
    let task_ref = match &n.signal {
        Some(value) => quote_spanned! {value.span()=>
            ::typedag::__private::signal_row::<#value>()
        },
        None => {
            let name = task_local(tasks.owner[index]);
            quote!(#name)
        }
    };
    let slots = n.args.iter().map(|arg| match arg {
        Arg::Node(j, _) => quote!(#j),
        Arg::List(..) | Arg::Each(..) | Arg::Value(_) => quote!(__typedag::GIVEN),
    });
    quote!(__TypedagRow(#id, #task_ref, &[#(#slots),*]))
}

/// A constant argument, converted to the parameter's type by the method whose bounds check
/// it, on the constant's own tokens.
fn value(index: usize, i: usize, expr: &syn::Expr) -> TokenStream {
    let span = expr.span();
    let args = args_local(index, span);
    let check = format_ident!("value{}", i, span = span);
    // The expression is evaluated before this local exists, so it cannot capture it.
    let value = syn::Ident::new("__typedag_value", span);
    let source = quote_spanned!(span=> #args.#check(#value));
    quote! {
        {
            let #value = #expr;
            #source
        }
    }
}

/// The local holding node `index`'s handle in the wiring checks: its output type, and
/// whether it may not run.
fn handle_local(index: usize, span: Span) -> syn::Ident {
    format_ident!("__typedag_node{}", index, span = resolved_here(span))
}

/// `let __typedag_node{index} = handle_of(&args, maybe);`: every wiring check of the node's
/// arguments and condition, each on its own tokens, folded into whether it may not run.
fn node_handle(dag: &Checked, wirings: &Wirings, index: usize, n: &Node) -> TokenStream {
    let wiring = wirings.owner[index];
    let mut statements = Vec::new();
    let mut reasons = Vec::new();
    for (i, arg) in n.args.iter().enumerate() {
        match arg {
            Arg::Node(j, ident) => {
                let span = ident.span();
                let args = args_local(wiring, span);
                let check = format_ident!("node{}", i, span = span);
                let target = handle_local(*j, span);
                let marker = marker(&dag.nodes[*j], span);
                reasons.push(quote_spanned! {span=>
                    #args.#check(__typedag_nodes::#marker, #target)
                });
            }
            Arg::List(items, span) => {
                let span = *span;
                let args = args_local(wiring, span);
                let check = format_ident!("list{}", i, span = span);
                let local = list_local(index, i, span);
                let targets: Vec<_> = items
                    .iter()
                    .map(|(j, ident)| handle_local(*j, ident.span()))
                    .collect();
                statements.push(quote_spanned! {span=>
                    #args.#check(__typedag::type_of_list(&#local, &[#(__typedag::type_of(#targets)),*]));
                });
                reasons.extend(
                    targets
                        .iter()
                        .map(|t| quote_spanned!(span=> __typedag::maybe_of(#t))),
                );
            }
            Arg::Each(j, ident) => {
                let span = ident.span();
                let args = args_local(wiring, span);
                let check = format_ident!("each{}", i, span = span);
                let target = handle_local(*j, span);
                let local = each_local(index, i, span);
                let marker = marker(&dag.nodes[*j], span);
                reasons.push(quote_spanned! {span=>
                    #args.#check(__typedag_nodes::#marker, #target, &#local)
                });
            }
            Arg::Value(_) => {}
        }
    }
    if let Some(max) = &n.settings.max {
        // `max` bounds a loop: the task must be one.
        let span = resolved_here(max.span);
        let args = args_local(wiring, span);
        let marker = marker(n, span);
        statements.push(quote_spanned! {span=>
            __typedag::bounded(__typedag_nodes::#marker, &#args);
        });
    }
    if let Some((_, j, ident)) = &n.condition {
        let span = resolved_here(ident.span());
        let target = handle_local(*j, span);
        let marker = marker(&dag.nodes[*j], span);
        reasons.push(quote_spanned! {span=>
            __typedag::condition(__typedag_nodes::#marker, #target)
        });
    }
    let maybe = reasons
        .into_iter()
        .reduce(|a, b| quote!(__typedag::or(#a, #b)))
        .unwrap_or_else(|| quote!(__typedag::No));
    let handle = handle_local(index, Span::call_site());
    if let Some(value) = &n.signal {
        return quote! {
            #(#statements)*
            let #handle = __typedag::signal_handle::<#value, _>(#maybe);
        };
    }
    let args = args_local(wiring, Span::call_site());
    // A map node's output is the `Vec` of its task's.
    let handle_of = if n.args.iter().any(|a| matches!(a, Arg::Each(..))) {
        quote!(__typedag_map_handle_of)
    } else {
        quote!(__typedag_handle_of)
    };
    quote! {
        #(#statements)*
        let #handle = #handle_of(#args, #maybe);
    }
}
