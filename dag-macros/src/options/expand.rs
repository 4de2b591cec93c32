//! Writes checked settings as runtime calls: the body of a task's `options()`, and the
//! `graph.configure(&node)` chain of a `dag!` node. Validates nothing.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::Ident;

use super::{Backoff, Settings};

/// The body of `Task::options()`: the runtime's defaults with the task's settings applied.
pub fn task_options(s: &Settings) -> TokenStream {
    let mut sets = Vec::new();
    if let Some(v) = &s.retries {
        let v = v.value;
        sets.push(quote!(o.retries = ::core::option::Option::Some(#v);));
    }
    if let Some(b) = &s.backoff {
        let b = &b.value;
        sets.push(quote!(o.backoff = ::core::option::Option::Some(#b);));
    }
    if let Some(t) = &s.timeout {
        let t = duration(t.value);
        sets.push(quote!(o.timeout = ::core::option::Option::Some(#t);));
    }
    if let Some(v) = &s.priority {
        let v = v.value;
        sets.push(quote!(o.priority = ::core::option::Option::Some(#v);));
    }
    if let Some(v) = &s.limit {
        let v = v.value;
        sets.push(quote!(o.limit = ::core::option::Option::Some(#v);));
    }
    if let Some(v) = &s.version {
        let v = &v.value;
        sets.push(quote!(o.version = ::core::option::Option::Some(#v);));
    }
    if let Some(v) = &s.cache {
        let v = v.value;
        sets.push(quote!(o.cache = #v;));
    }
    if let Some(v) = &s.max {
        let v = v.value;
        sets.push(quote!(o.max_iterations = ::core::option::Option::Some(#v);));
    }
    quote! {
        #[allow(unused_mut)]
        let mut o = ::typedag::__private::TaskOptions::new();
        #(#sets)*
        o
    }
}

/// `graph.configure_at(index).priority(..)...;` for a node's overrides, or nothing.
pub fn node_configuration(s: &Settings, graph: &Ident, index: usize) -> TokenStream {
    let mut calls = Vec::new();
    if let Some(v) = &s.priority {
        let v = v.value;
        calls.push(quote!(.priority(#v)));
    }
    if let Some(v) = &s.retries {
        let v = v.value;
        calls.push(quote!(.retries(#v)));
    }
    if let Some(v) = &s.timeout {
        let v = duration(v.value);
        calls.push(quote!(.timeout(#v)));
    }
    if let Some(v) = &s.backoff {
        let v = &v.value;
        calls.push(quote!(.backoff(#v)));
    }
    if let Some(v) = &s.max {
        let v = v.value;
        calls.push(quote!(.max_iterations(#v)));
    }
    if calls.is_empty() {
        return TokenStream::new();
    }
    quote!(#graph.configure_at(#index) #(#calls)*;)
}

/// A constant expression of the duration: `Duration::new` is `const`, and seconds plus
/// nanoseconds hold any duration the parser accepts without rounding.
fn duration(d: std::time::Duration) -> TokenStream {
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    quote!(::core::time::Duration::new(#secs, #nanos))
}

impl ToTokens for Backoff {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        let shape = Ident::new(self.shape.name(), Span::call_site());
        let initial = duration(self.initial);
        let mut expr = quote!(::typedag::__private::Backoff::#shape(#initial));
        if let Some(cap) = self.cap {
            let cap = duration(cap);
            expr = quote!(#expr.cap(#cap));
        }
        if self.jitter {
            expr = quote!(#expr.jitter());
        }
        tokens.extend(expr);
    }
}
