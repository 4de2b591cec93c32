//! Emits the user's function untouched, a companion struct of the same name, and inside an
//! anonymous `const` the `Task` impl and the per-parameter wiring checks `dag!` calls.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::check::{Slot, Task};
use crate::pretty::escape;

pub fn expand(item: &syn::ItemFn, task: &Task) -> TokenStream {
    let vis = &item.vis;
    let name = &task.name;
    let name_str = name.to_string();
    let output = &task.output;
    // Spanned on the return type, so an output that cannot be shared is reported there.
    let out_ty = quote_spanned!(task.return_span=> #output);
    let fingerprint = &task.fingerprint;
    let signature = escape(&task.signature);
    let doc = format!(
        "The task of [`{name_str}()`]({name_str}()): use it in `dag!`, or add it to a graph with `Graph::add::<{name_str}>`."
    );
    let codec = if task.settings.cache.as_ref().is_some_and(|c| !c.value) {
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
    };

    let params_ty = task.params.iter().map(|p| {
        let input = &p.input;
        if p.by_ref {
            quote!(::typedag::__private::Ref<#input>)
        } else {
            quote!(::typedag::__private::Own<#input>)
        }
    });

    // Owned inputs are taken first, then borrowed ones: a borrow must not overlap a take.
    let locals: Vec<_> = (0..task.params.len())
        .map(|i| format_ident!("__typedag_in{}", i, span = Span::mixed_site()))
        .collect();
    let inputs = format_ident!("__typedag_inputs", span = Span::mixed_site());
    let mut takes = Vec::new();
    let mut borrows = Vec::new();
    for (i, p) in task.params.iter().enumerate() {
        let local = &locals[i];
        let ty = &p.input;
        let span = p.input.span();
        if let Some(view) = p.view {
            let view = syn::Ident::new(view, span);
            borrows.push(quote_spanned!(span=> let #local = #inputs.borrow::<#ty>(#i).#view();));
        } else if p.by_ref {
            borrows.push(quote_spanned!(span=> let #local: &#ty = #inputs.borrow::<#ty>(#i);));
        } else {
            takes.push(quote_spanned!(span=> let #local: #ty = #inputs.take::<#ty>(#i);));
        }
    }
    let mut fetches = Vec::new();
    let resource_locals: Vec<_> = task
        .resources
        .iter()
        .enumerate()
        .map(|(k, ty)| {
            let local = format_ident!("__typedag_res{}", k, span = Span::mixed_site());
            fetches.push(quote_spanned!(ty.span()=> let #local = #inputs.resource::<#ty>();));
            local
        })
        .collect();
    let args = task.order.iter().map(|slot| match slot {
        Slot::Input(i) => &locals[*i],
        Slot::Resource(k) => &resource_locals[*k],
    });
    let call = quote!(#name(#(#args),*).await);
    let needs = task
        .resources
        .iter()
        .map(|ty| quote_spanned!(ty.span()=> ::typedag::__private::Need::of::<#ty>()));
    let resources_fn = if task.resources.is_empty() {
        quote!()
    } else {
        quote! {
            fn resources() -> ::typedag::__private::Vec<::typedag::__private::Need> {
                ::typedag::__private::Vec::from([#(#needs),*])
            }
        }
    };
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

    let options = crate::options::expand::task_options(&task.settings);
    let wiring = wiring(task, &signature, vis);
    let arity = task.params.len();
    let plural = if arity == 1 { "" } else { "s" };
    let arity_msg = format!("task `{name_str}` takes {arity} input{plural}, but {{N}} were given");
    let arity_label = format!("`{name_str}` takes {arity} input{plural}");
    let arity_note = if task.resources.is_empty() {
        format!("the task is `{signature}`")
    } else {
        format!(
            "the task is `{signature}`; its `Res<_>` parameters are resources: the runner supplies them (`Runner::resource`), so they are not written in `dag!`"
        )
    };

    quote! {
        // A task is `async` by contract, even one that never awaits.
        #[allow(clippy::unused_async)]
        #item

        #[doc = #doc]
        #[allow(non_camel_case_types)]
        #vis struct #name {}

        const _: () = {
            #[automatically_derived]
            impl ::typedag::__private::Task for #name {
                type Output = #out_ty;
                type Params = (#(#params_ty,)*);
                type Wiring = __TypedagWiring;
                const NAME: &'static str = #name_str;
                const FINGERPRINT: &'static str = #fingerprint;

                fn options() -> ::typedag::__private::TaskOptions {
                    #options
                }

                fn codec() -> ::core::option::Option<::typedag::__private::Codec<Self::Output>> {
                    #codec
                }

                #resources_fn

                fn wiring() -> __TypedagWiring {
                    __TypedagWiring
                }

                fn call(
                    #[allow(unused_mut)] mut #inputs: ::typedag::__private::Inputs,
                ) -> ::typedag::__private::BoxFuture<::core::result::Result<Self::Output, ::typedag::__private::Failure>> {
                    ::typedag::__private::Box::pin(async move {
                        #(#takes)*
                        #(#borrows)*
                        #(#fetches)*
                        #finish
                    })
                }
            }

            #[doc(hidden)]
            #vis struct __TypedagWiring;

            #[diagnostic::on_unimplemented(message = #arity_msg, label = #arity_label, note = #arity_note)]
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

            #[doc(hidden)]
            #vis struct __TypedagArgs;

            impl __TypedagArgs {
                #vis fn add<O>(
                    self,
                    graph: &mut ::typedag::__private::Graph<O>,
                    id: &str,
                    sources: ::typedag::__private::Vec<::typedag::__private::Wired>,
                ) -> ::typedag::__private::Node<#output> {
                    graph.push_node::<#name>(id, sources)
                }
            }

            #wiring
        };
    }
}

fn wiring(task: &Task, signature: &str, vis: &syn::Visibility) -> TokenStream {
    let name = task.name.to_string();
    let mut items = Vec::new();
    let mut methods = Vec::new();
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
        let node_label = format!("this node's output is `{{T}}`, not `{shown}`");
        let value_msg = format!(
            "parameter `{param}` of task `{name}` takes `{written}`, but this value is `{{T}}`"
        );
        let value_label = format!("expected `{shown}`, found `{{T}}`");
        let list_msg = format!(
            "parameter `{param}` of task `{name}` takes `{written}`, but this list of nodes gives `{{T}}`"
        );
        let list_label =
            format!("a list of nodes arrives as a `Vec` of their outputs; expected `{shown}`");
        let note = format!("the task is `{signature}`");
        items.push(quote! {
            #[diagnostic::on_unimplemented(message = #node_msg, label = #node_label, note = #note)]
            #[doc(hidden)]
            #[allow(non_camel_case_types)]
            #vis trait #node_trait<N, T> {}
            #[diagnostic::do_not_recommend]
            impl<N, T: ::typedag::__private::Is<#input>> #node_trait<N, T> for ::typedag::__private::Wire {}

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

            #[diagnostic::on_unimplemented(message = #list_msg, label = #list_label, note = #note)]
            #[doc(hidden)]
            #[allow(non_camel_case_types)]
            #vis trait #list_trait<T> {}
            #[diagnostic::do_not_recommend]
            impl<T: ::typedag::__private::Is<#input>> #list_trait<T> for ::typedag::__private::Wire {}
        });
        methods.push(quote! {
            #vis fn #node_fn<N, T>(&self, _: ::core::marker::PhantomData<T>)
            where
                ::typedag::__private::Wire: #node_trait<N, T>,
            {
            }
            #vis fn #value_fn<T>(&self, value: T) -> ::typedag::__private::Wired
            where
                ::typedag::__private::Wire: #value_trait<T>,
                <::typedag::__private::Wire as #value_trait<T>>::Param: ::typedag::__private::Constant,
            {
                ::typedag::__private::value_source(<::typedag::__private::Wire as #value_trait<T>>::convert(value))
            }
            #vis fn #list_fn<T>(&self, _: ::core::marker::PhantomData<T>)
            where
                ::typedag::__private::Wire: #list_trait<T>,
            {
            }
        });
    }
    quote! {
        #(#items)*
        impl __TypedagArgs {
            #(#methods)*
        }
    }
}
