//! Emits the user's function untouched, a companion struct of the same name, and inside an
//! anonymous `const` the `Task` impl and the per-parameter wiring checks `dag!` calls.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::check::{LoopState, ParamSource, Task};
use crate::pretty::escape;

pub fn expand(item: &syn::ItemFn, task: &Task) -> TokenStream {
    let vis = &item.vis;
    let signature = escape(&task.signature);
    let function = callable_function(item);
    let companion = companion_struct(task, vis);
    let task_impl = task_impl(task);
    let arity_check = arity_check(task, &signature, vis);
    let graph_entry = graph_entry(task, vis);
    let parameter_checks = parameter_checks(task, &signature, vis);
    quote! {
        #function
        #companion
        const _: () = {
            #task_impl
            #arity_check
            #graph_entry
            #parameter_checks
        };
    }
}

/// The user's function as written, still callable and awaitable directly.
fn callable_function(item: &syn::ItemFn) -> TokenStream {
    quote! {
        // A task is `async` by contract, even one that never awaits.
        #[allow(clippy::unused_async)]
        #item
    }
}

/// The struct of the same name, in the type namespace, that `dag!` and `Graph::add` name.
fn companion_struct(task: &Task, vis: &syn::Visibility) -> TokenStream {
    let name = &task.name;
    let doc = format!(
        "The task of [`{name}()`]({name}()): use it in `dag!`, or add it to a graph with `Graph::add::<{name}>`."
    );
    quote! {
        #[doc = #doc]
        #[allow(non_camel_case_types)]
        #vis struct #name {}
    }
}

/// `impl Task for <name>`: the types, name, path, fingerprint and options the runtime reads,
/// and the call that unpacks the inputs and runs the user's function.
fn task_impl(task: &Task) -> TokenStream {
    let name = &task.name;
    let name_str = name.to_string();
    let output = &task.output;
    // Spanned on the return type, so an output that cannot be shared is reported there.
    let out_ty = quote_spanned!(task.return_span=> #output);
    let params_ty = params_type(task);
    let optional = if task.params.iter().any(|p| p.takes_none()) {
        let flags = task.params.iter().map(|p| p.takes_none());
        quote!(const OPTIONAL: &'static [bool] = &[#(#flags),*];)
    } else {
        quote!()
    };
    let fingerprint = &task.fingerprint;
    let options = crate::options::expand::task_options(&task.settings);
    let codec = codec(task);
    let resources_fn = resources_fn(task);
    let inputs = inputs_local();
    let (call_body, looping) = match &task.looping {
        // A loop node runs one iteration at a time, through `looping()`.
        Some(state) => (
            quote!({
                let _ = #inputs;
                ::typedag::__private::by_iteration()
            }),
            looping_fn(task, state),
        ),
        None => {
            let body = call_body(task);
            (
                quote! {
                    ::typedag::__private::Box::pin(async move {
                        #body
                    })
                },
                quote!(),
            )
        }
    };
    quote! {
        #[automatically_derived]
        impl ::typedag::__private::Task for #name {
            type Output = #out_ty;
            type Params = #params_ty;
            type Wiring = __TypedagWiring;
            const WIRING: __TypedagWiring = __TypedagWiring;
            #optional
            const NAME: &'static str = #name_str;
            const PATH: &'static str = ::core::concat!(::core::module_path!(), "::", #name_str);
            const FINGERPRINT: &'static str = #fingerprint;

            fn options() -> ::typedag::__private::TaskOptions {
                #options
            }

            fn codec() -> ::core::option::Option<::typedag::__private::Codec<Self::Output>> {
                #codec
            }

            #resources_fn

            #looping

            fn call(
                #[allow(unused_mut)] mut #inputs: ::typedag::__private::Inputs,
            ) -> ::typedag::__private::BoxFuture<::core::result::Result<Self::Output, ::typedag::__private::Failure>> {
                #call_body
            }
        }
    }
}

/// `fn looping()` of a loop task: its state parameter, one iteration (the user's function
/// called on the inputs, its `Loop` handed over erased), and its state's codec, unless the
/// task stores nothing (`cache = false`). Nothing when no parameter takes the state, which
/// `check` reported.
fn looping_fn(task: &Task, state: &LoopState) -> TokenStream {
    let Some(param) = state.param else {
        return quote!();
    };
    let inputs = inputs_local();
    let body = call_body(task);
    let ty = &state.ty;
    let output = &task.output;
    let codec = if task.settings.cache.as_ref().is_some_and(|c| !c.value) {
        quote!(::core::option::Option::None)
    } else {
        let codec = quote_spanned!(ty.span()=> ::typedag::__private::StateCodec::of::<#ty>());
        quote!(::core::option::Option::Some(#codec))
    };
    quote! {
        fn looping() -> ::core::option::Option<::typedag::__private::Looping> {
            ::core::option::Option::Some(::typedag::__private::Looping::new(
                #param,
                |#[allow(unused_mut)] mut #inputs: ::typedag::__private::Inputs| {
                    ::typedag::__private::Box::pin(async move {
                        ::typedag::__private::turn::<#ty, #output>({ #body })
                    })
                },
                #codec,
            ))
        }
    }
}

/// `(Ref<A>, Own<B>, ...)`: each wired input, and whether the task borrows or owns it.
fn params_type(task: &Task) -> TokenStream {
    let params = task.params.iter().map(|p| {
        let input = &p.input;
        if p.by_ref {
            quote!(::typedag::__private::Ref<#input>)
        } else {
            quote!(::typedag::__private::Own<#input>)
        }
    });
    quote!((#(#params,)*))
}

/// How the output is stored: required to be serde for a cached task, optional for
/// `cache = false`.
fn codec(task: &Task) -> TokenStream {
    let output = &task.output;
    if task.settings.cache.as_ref().is_some_and(|c| !c.value) {
        // Runs every time, but a serde output still gets a digest, so that dependents are
        // cached while it keeps producing the same bytes.
        quote!({
            #[allow(unused_imports)]
            use ::typedag::__private::{CodecIfSerde as _, NoCodec as _};
            (&::typedag::__private::Probe::<#output>::new()).codec()
        })
    } else {
        let codec = quote_spanned!(task.return_span=> ::typedag::__private::codec::<#output>());
        quote!(::core::option::Option::Some(#codec))
    }
}

/// `fn resources()` listing the `Res<T>` types the runner must supply, if any.
fn resources_fn(task: &Task) -> TokenStream {
    if task.resources.is_empty() {
        return quote!();
    }
    let needs = task
        .resources
        .iter()
        .map(|ty| quote_spanned!(ty.span()=> ::typedag::__private::Need::of::<#ty>()));
    quote! {
        fn resources() -> ::typedag::__private::Vec<::typedag::__private::Need> {
            ::typedag::__private::Vec::from([#(#needs),*])
        }
    }
}

/// The `Inputs` parameter of `Task::call`, which the user's code cannot name.
fn inputs_local() -> syn::Ident {
    format_ident!("__typedag_inputs", span = Span::mixed_site())
}

/// The body of `Task::call`: unpack every input and resource, call the user's function in
/// its parameter order, and turn what it returns into the runtime's `Result`.
fn call_body(task: &Task) -> TokenStream {
    let inputs = inputs_local();
    let locals: Vec<_> = (0..task.params.len())
        .map(|i| format_ident!("__typedag_in{}", i, span = Span::mixed_site()))
        .collect();
    // Owned inputs are taken first, then borrowed ones: a borrow must not overlap a take.
    let mut takes = Vec::new();
    let mut borrows = Vec::new();
    for (i, (p, local)) in task.params.iter().zip(&locals).enumerate() {
        let ty = &p.input;
        let span = p.input.span();
        if p.optional {
            let view = p.view.map(|v| {
                let v = syn::Ident::new(v, span);
                quote_spanned!(span=> .map(|v| v.#v()))
            });
            borrows.push(quote_spanned!(span=> let #local = #inputs.borrow_opt::<#ty>(#i) #view;));
        } else if let Some(inner) = &p.option_of {
            takes.push(quote_spanned!(span=> let #local: #ty = #inputs.take_option::<#inner>(#i);));
        } else if let Some(view) = p.view {
            let view = syn::Ident::new(view, span);
            borrows.push(quote_spanned!(span=> let #local = #inputs.borrow::<#ty>(#i).#view();));
        } else if p.by_ref {
            borrows.push(quote_spanned!(span=> let #local: &#ty = #inputs.borrow::<#ty>(#i);));
        } else {
            takes.push(quote_spanned!(span=> let #local: #ty = #inputs.take::<#ty>(#i);));
        }
    }
    let resource_locals: Vec<_> = (0..task.resources.len())
        .map(|k| format_ident!("__typedag_res{}", k, span = Span::mixed_site()))
        .collect();
    let fetches = task
        .resources
        .iter()
        .zip(&resource_locals)
        .map(|(ty, local)| quote_spanned!(ty.span()=> let #local = #inputs.resource::<#ty>();));
    let args = task.order.iter().map(|slot| match slot {
        ParamSource::Input(i) => &locals[*i],
        ParamSource::Resource(k) => &resource_locals[*k],
    });
    let name = &task.name;
    let call = quote!(#name(#(#args),*).await);
    let finish = if task.returns_result {
        let retry_if = match &task.settings.retry_if {
            Some(path) => {
                let path = &path.value;
                quote_spanned!(path.span()=> ::core::option::Option::Some(#path))
            }
            None => quote!(::core::option::Option::None),
        };
        quote_spanned!(task.return_span=> ::typedag::__private::from_result(#call, #retry_if))
    } else {
        quote!(::core::result::Result::Ok(#call))
    };
    quote! {
        #(#takes)*
        #(#borrows)*
        #(#fetches)*
        #finish
    }
}

/// `<task as Task>::WIRING.arity::<N>()`, which `dag!` calls with the number of arguments written:
/// it compiles only for the task's own number of inputs, and otherwise says how many it takes.
fn arity_check(task: &Task, signature: &str, vis: &syn::Visibility) -> TokenStream {
    let name = &task.name;
    let arity = task.params.len();
    let plural = if arity == 1 { "" } else { "s" };
    let message = format!("task `{name}` takes {arity} input{plural}, but {{N}} were given");
    let label = format!("`{name}` takes {arity} input{plural}");
    let note = if task.resources.is_empty() {
        format!("the task is `{signature}`")
    } else {
        format!(
            "the task is `{signature}`; its `Res<_>` parameters are resources: the runner supplies them (`Runner::resource`), so they are not written in `dag!`"
        )
    };
    quote! {
        #[doc(hidden)]
        #vis struct __TypedagWiring;

        #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
        #[doc(hidden)]
        #vis trait __TypedagArity<const N: usize> {
            type Args;
            fn args() -> Self::Args;
        }

        impl __TypedagArity<#arity> for __TypedagWiring {
            type Args = __TypedagArgs;
            fn args() -> __TypedagArgs {
                __TypedagArgs
            }
        }

        impl __TypedagWiring {
            #vis fn arity<const N: usize>(self) -> <Self as __TypedagArity<N>>::Args
            where
                Self: __TypedagArity<N>,
            {
                <Self as __TypedagArity<N>>::args()
            }
        }
    }
}

/// `__TypedagArgs::node`, the typed handle of a node of this task in `dag!`'s wiring
/// checks (which only need its type: `dag!` adds the node from a table), and for a loop
/// task, that its nodes may set `max`.
fn graph_entry(task: &Task, vis: &syn::Visibility) -> TokenStream {
    let output = &task.output;
    // A loop task's nodes may set `max`.
    let loops = task.looping.as_ref().map(|_| {
        quote! {
            impl<N> ::typedag::__private::Loops<N> for __TypedagArgs {}
        }
    });
    quote! {
        #loops

        #[doc(hidden)]
        #[derive(Clone, Copy)]
        #vis struct __TypedagArgs;

        impl ::typedag::__private::Produces for __TypedagArgs {
            type Output = #output;
        }

        impl __TypedagArgs {
            #vis fn node(&self) -> ::typedag::__private::Node<#output> {
                ::typedag::__private::handle()
            }
        }
    }
}

/// For each parameter `i`, the `node{i}`, `value{i}` and `list{i}` methods `dag!` calls with
/// an argument, bounded by traits whose `on_unimplemented` message names the parameter.
fn parameter_checks(task: &Task, signature: &str, vis: &syn::Visibility) -> TokenStream {
    let name = task.name.to_string();
    let mut items = Vec::new();
    let mut methods = Vec::new();
    let mut kinds = Vec::new();
    for (i, p) in task.params.iter().enumerate() {
        let input = &p.input;
        let shown = escape(&p.shown);
        let param = &p.name;
        // Named after the task too, so rustc does not point at another task's "similarly
        // named trait".
        let node_trait = format_ident!("__typedag_{}_node{}", task.name, i);
        let value_trait = format_ident!("__typedag_{}_value{}", task.name, i);
        let list_trait = format_ident!("__typedag_{}_list{}", task.name, i);

        let node_fn = format_ident!("node{}", i);
        let value_fn = format_ident!("value{}", i);
        let list_fn = format_ident!("list{}", i);
        let written = escape(&p.written);
        let node_msg = format!(
            "output of node `{{N}}` is `{{T}}`, but parameter `{param}` of task `{name}` takes `{written}`"
        );
        let node_label = match &p.option_of {
            Some(inner) => format!(
                "this node's output is `{{T}}`, neither `{shown}` nor `{}`",
                escape(&crate::pretty::tokens(inner))
            ),
            None => format!("this node's output is `{{T}}`, not `{shown}`"),
        };
        let value_msg = format!(
            "parameter `{param}` of task `{name}` takes `{written}`, but this value is `{{T}}`"
        );
        let value_label = format!("expected `{shown}`, found `{{T}}`");
        let list_msg = format!(
            "parameter `{param}` of task `{name}` takes `{written}`, but this list of nodes gives `{{T}}`"
        );
        let list_label =
            format!("a list of nodes arrives as a `Vec` of their outputs; expected `{shown}`");
        let each_trait = format_ident!("__typedag_{}_each{}", task.name, i);
        let each_fn = format_ident!("each{}", i);
        let each_msg = format!(
            "`each {{N}}`: parameter `{param}` of task `{name}` takes one `{written}` per item, so `{{N}}` must give a `Vec<{shown}>`, and it gives `{{L}}`"
        );
        let each_label = format!("expected a node of output `Vec<{shown}>`");
        let note = format!("the task is `{signature}`");
        // What the node's output contributes to whether this node may not run: nothing for
        // an `Option<&T>`, which receives `None`; otherwise, whatever it may not. The same,
        // as the parameter's kind, for `dag!`'s outputs struct.
        let (maybe, kind) = if p.takes_none() {
            (
                quote!(::typedag::__private::No),
                quote!(::typedag::__private::Absorb),
            )
        } else {
            (quote!(M), quote!(::typedag::__private::Pass))
        };
        kinds.push(kind);
        // What a node's output must be: the input's type; for `Option<T>`, `T` too.
        let fits = match &p.option_of {
            Some(inner) => quote!(::typedag::__private::OptionOf<#inner>),
            None => quote!(::typedag::__private::Is<#input>),
        };
        items.push(quote! {
            #[diagnostic::on_unimplemented(message = #node_msg, label = #node_label, note = #note)]
            #[doc(hidden)]
            #[allow(non_camel_case_types)]
            #vis trait #node_trait<N, T> {}
            #[diagnostic::do_not_recommend]
            impl<N, T: #fits> #node_trait<N, T> for ::typedag::__private::Wire {}

            #[diagnostic::on_unimplemented(message = #value_msg, label = #value_label, note = #note)]
            #[doc(hidden)]
            #[allow(non_camel_case_types)]
            #vis trait #value_trait<T> {
                type Param;
                fn convert(value: T) -> Self::Param;
            }
            #[diagnostic::do_not_recommend]
            impl<T: ::typedag::__private::IntoInput<#input>> #value_trait<T> for ::typedag::__private::Wire {
                type Param = #input;
                fn convert(value: T) -> #input {
                    ::typedag::__private::IntoInput::into_input(value)
                }
            }

            #[diagnostic::on_unimplemented(message = #each_msg, label = #each_label, note = #note)]
            #[doc(hidden)]
            #[allow(non_camel_case_types)]
            #vis trait #each_trait<N, L> {}
            // Generic in the list, not `Vec<X>`: an impl with a `Vec` in it would let rustc
            // infer that the node's output is a `Vec` and report a node of another output as
            // a bare type mismatch instead of this message.
            #[diagnostic::do_not_recommend]
            impl<N, L: ::typedag::__private::Is<::std::vec::Vec<#input>>> #each_trait<N, L> for ::typedag::__private::Wire {}

            #[diagnostic::on_unimplemented(message = #list_msg, label = #list_label, note = #note)]
            #[doc(hidden)]
            #[allow(non_camel_case_types)]
            #vis trait #list_trait<T> {}
            #[diagnostic::do_not_recommend]
            impl<T: ::typedag::__private::Is<#input>> #list_trait<T> for ::typedag::__private::Wire {}
        });
        methods.push(quote! {
            #vis fn #node_fn<N, T, M: ::typedag::__private::Maybe>(
                self,
                _: N,
                _: ::typedag::__private::Handle<T, M>,
            ) -> #maybe
            where
                ::typedag::__private::Wire: #node_trait<N, T>,
            {
                ::typedag::__private::Maybe::new()
            }
            #vis fn #value_fn<T>(&self, value: T) -> ::typedag::__private::Wired
            where
                ::typedag::__private::Wire: #value_trait<T>,
                <::typedag::__private::Wire as #value_trait<T>>::Param: ::typedag::__private::Constant,
            {
                ::typedag::__private::value_source(<::typedag::__private::Wire as #value_trait<T>>::convert(value))
            }
            #vis fn #each_fn<N, L, M: ::typedag::__private::Maybe>(
                self,
                _: N,
                _: ::typedag::__private::Handle<L, M>,
                _: &::typedag::__private::EachOf<#input>,
            ) -> M
            where
                ::typedag::__private::Wire: #each_trait<N, L>,
            {
                ::typedag::__private::Maybe::new()
            }
            #vis fn #list_fn<T>(&self, _: ::core::marker::PhantomData<T>)
            where
                ::typedag::__private::Wire: #list_trait<T>,
            {
            }
        });
    }
    // The parameters' kinds as a list `(K0, (K1, ()))`.
    let kinds = kinds
        .into_iter()
        .rev()
        .fold(quote!(()), |rest, kind| quote!((#kind, #rest)));
    quote! {
        #(#items)*
        impl __TypedagArgs {
            #(#methods)*
        }
        impl ::typedag::__private::Passing for __TypedagWiring {
            type Kinds = #kinds;
        }
    }
}
