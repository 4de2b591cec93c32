//! Expands a checked `dag!` into typed builder calls, one block per node, with each
//! argument's wiring check emitted on the argument's own tokens.

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
        quote!(pub struct #marker {})
    });
    let handles: Vec<_> = dag.nodes.iter().map(handle).collect();
    let statements = dag
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| node(dag, i, n, &graph));
    let checks = dag.nodes.iter().enumerate().flat_map(|(index, n)| {
        n.args
            .iter()
            .enumerate()
            .filter_map(move |(i, arg)| check(dag, index, i, arg))
    });
    let fields: Vec<_> = dag.nodes.iter().map(|n| &n.name).collect();
    let params: Vec<_> = (0..dag.nodes.len())
        .map(|i| format_ident!("__TypedagOut{}", i))
        .collect();
    let out = format_ident!("__typedag_out");
    let outputs = format_ident!("__TypedagOutputs");
    let partial = format_ident!("__TypedagPartial");

    quote! {{
        #[allow(non_camel_case_types, dead_code, unreachable_pub)]
        mod __typedag_nodes {
            #(#markers)*
        }

        /// The outputs of a `dag!` run, one field per node.
        #[derive(Debug)]
        #[allow(non_snake_case)]
        struct #outputs<#(#params),*> {
            #(pub #fields: #params,)*
        }

        /// The outputs of the nodes that completed, one `Option` field per node.
        #[derive(Debug)]
        #[allow(non_snake_case)]
        struct #partial<#(#params),*> {
            #(pub #fields: ::core::option::Option<#params>,)*
        }

        let mut #graph = ::typedag::__private::Graph::new(#name);
        #(#statements)*
        // The wiring checks, each on its argument's own tokens: type-checked, never called,
        // so they cost the program no code.
        let _ = || { #(#checks)* };
        #graph.keep_all();
        #graph.with_outputs(
            move |#out: &mut ::typedag::__private::Outputs| #outputs {
                #(#fields: #out.take_kept(&#handles),)*
            },
            move |#out: &mut ::typedag::__private::Outputs| #partial {
                #(#fields: #out.take_node(&#handles),)*
            },
        )
    }}
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
    let types: Vec<_> = nodes
        .iter()
        .map(|n| {
            let task = &n.task;
            quote_spanned!(task.span()=> <#task as ::typedag::__private::Task>::Output)
        })
        .collect();
    let params: Vec<_> = (0..nodes.len())
        .map(|i| format_ident!("__TypedagOut{}", i))
        .collect();
    let outputs = format_ident!("__TypedagOutputs");
    let partial = format_ident!("__TypedagPartial");
    quote! {
        #[derive(Debug)]
        #[allow(non_snake_case, dead_code)]
        struct #outputs<#(#params),*> {
            #(pub #fields: #params,)*
        }

        #[derive(Debug)]
        #[allow(non_snake_case, dead_code)]
        struct #partial<#(#params),*> {
            #(pub #fields: ::core::option::Option<#params>,)*
        }

        ::typedag::__private::Graph::new("").with_outputs(
            |_: &mut ::typedag::__private::Outputs| -> #outputs<#(#types),*> {
                ::core::unreachable!()
            },
            |_: &mut ::typedag::__private::Outputs| #partial::<#(#types),*> {
                #(#fields: ::core::option::Option::None,)*
            },
        )
    }
}

// Locals carry a `__typedag_` prefix and plain call-site hygiene rather than mixed-site:
// a wiring check must be made of tokens of one hygiene context, or rustc cannot join their
// spans and reports the error on the whole `dag!` instead of on the argument.

/// The zero-sized type whose name is the node's name, so wiring errors can print it.
fn marker(n: &Node, span: Span) -> syn::Ident {
    syn::Ident::new(&n.name.to_string(), span)
}

fn handle(n: &Node) -> syn::Ident {
    handle_at(n, Span::call_site())
}

fn handle_at(n: &Node, span: Span) -> syn::Ident {
    format_ident!("__typedag_node_{}", n.name, span = span)
}

/// The local holding node `index`'s wiring, whose methods check and convert its arguments.
fn args_local(index: usize, span: Span) -> syn::Ident {
    format_ident!("__typedag_args{}", index, span = span)
}

fn node(dag: &Checked, index: usize, n: &Node, graph: &syn::Ident) -> TokenStream {
    let task = &n.task;
    let id = n.name.to_string();
    let handle = &handle(&dag.nodes[index]);
    let arity = n.args.len();
    let args = args_local(index, Span::call_site());
    let wiring = quote_spanned! {task.span()=>
        <#task as ::typedag::__private::Task>::wiring()
    };
    let arity_call = quote_spanned!(n.call_span=> .arity::<#arity>());
    let sources = n
        .args
        .iter()
        .enumerate()
        .map(|(i, arg)| source(index, i, arg, dag));
    let settings = crate::options::expand::node_configuration(&n.settings, graph, handle);
    quote! {
        let #args = #wiring #arity_call;
        let #handle = #args.add(
            &mut #graph,
            #id,
            ::typedag::__private::sources([#(#sources),*]),
        );
        #settings
    }
}

/// The wiring check of argument `i` of node `index`, when it is a node or a list (a
/// constant's check is its conversion, in [`source`]).
fn check(dag: &Checked, index: usize, i: usize, arg: &Arg) -> Option<TokenStream> {
    match arg {
        Arg::Node(j, ident) => {
            let span = ident.span();
            let args = args_local(index, span);
            let check = format_ident!("node{}", i, span = span);
            let target = &dag.nodes[*j];
            let handle = handle_at(target, span);
            let marker = marker(target, span);
            Some(quote_spanned! {span=>
                #args.#check::<__typedag_nodes::#marker, _>(::typedag::__private::type_of_node(&#handle));
            })
        }
        Arg::List(items, span) => {
            let span = *span;
            let args = args_local(index, span);
            let check = format_ident!("list{}", i, span = span);
            let list = items
                .iter()
                .map(|(j, ident)| handle_at(&dag.nodes[*j], ident.span()));
            Some(quote_spanned! {span=>
                #args.#check(::typedag::__private::type_of_list(&[#(#list),*]));
            })
        }
        Arg::Value(_) => None,
    }
}

fn source(index: usize, i: usize, arg: &Arg, dag: &Checked) -> TokenStream {
    match arg {
        Arg::Node(j, ident) => {
            let handle = handle_at(&dag.nodes[*j], ident.span());
            quote_spanned!(ident.span()=> ::typedag::__private::node_source(&#handle))
        }
        Arg::List(items, span) => {
            let list = items
                .iter()
                .map(|(j, ident)| handle_at(&dag.nodes[*j], ident.span()));
            quote_spanned!(*span=> ::typedag::__private::list_source([#(#list),*]))
        }
        Arg::Value(expr) => {
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
    }
}
