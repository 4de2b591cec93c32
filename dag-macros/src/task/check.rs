//! Validates a task function: async, free, not generic, parameters `name: Type`, known
//! options. Produces the model `expand` needs, even beside option errors; never emits tokens.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, Ident, Pat, PathArguments, ReturnType, Type};

use super::parse::Parsed;
use crate::options::{self, Place, Settings};

pub struct Task {
    pub name: Ident,
    /// The parameters wired in `dag!`, in order.
    pub params: Vec<Param>,
    /// The `Res<T>` parameters: the `T` of each, in order.
    pub resources: Vec<Type>,
    /// Every parameter in the function's order: an input or a resource, by position.
    pub order: Vec<ParamSource>,
    /// The output: `T` of `T`, `Result<T, E>`, and of a loop task's `Loop<S, T>`.
    pub output: Type,
    /// For a loop task (one that returns `Loop<S, T>`): its state.
    pub looping: Option<LoopState>,
    pub returns_result: bool,
    pub return_span: Span,
    pub settings: Settings,
    pub fingerprint: String,
    pub signature: String,
}

/// A loop task's state: its type, and the parameter that takes it (`None` when none does,
/// which is reported: the task is still expanded, so that one mistake gives one error).
pub struct LoopState {
    pub ty: Type,
    pub param: Option<usize>,
}

/// Where one function parameter comes from.
pub enum ParamSource {
    Input(usize),
    Resource(usize),
}

pub struct Param {
    pub name: Ident,
    /// The type the input must have: `T` for both `&T` and `T`.
    pub input: Type,
    pub by_ref: bool,
    /// `Option<&T>`: `None` when the node feeding it did not run (its condition did not
    /// hold); `input` and `by_ref` describe the `&T` inside.
    pub optional: bool,
    /// `Option<T>` taken by value: the `T`. Fed by a node of output `T` it gets `Some` of a
    /// clone, or `None` when that node did not run; fed by a node of output `Option<T>`, its
    /// output. `input` is the `Option<T>`.
    pub option_of: Option<Type>,
    /// For `&str`, `&[T]`...: the method that borrows the view from the owned input.
    pub view: Option<&'static str>,
    /// As written, for messages.
    pub written: String,
    /// The input type as a person writes it, for messages.
    pub shown: String,
}

/// Every mistake found, and the task to expand beside them when its signature is usable.
pub struct Checked {
    /// `None` when the signature cannot be a task (not `async`, generic, `self`...). Wrong
    /// options alone leave it `Some`, with those options at their defaults, so that a `dag!`
    /// using the task still sees a real task and reports nothing but the option mistake.
    pub task: Option<Task>,
    pub errors: Vec<syn::Error>,
}

pub fn check(parsed: &Parsed) -> Checked {
    let mut errors = Vec::new();
    let item = &parsed.item;
    let sig = &item.sig;

    if sig.asyncness.is_none() {
        errors.push(syn::Error::new(
            sig.fn_token.span,
            format!(
                "`#[task]` needs an `async fn`: write `async fn {}(...)`",
                sig.ident
            ),
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.push(syn::Error::new(
            unsafety.span,
            "a task cannot be `unsafe`: the runner calls it like any safe function",
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new(
            abi.span(),
            "a task cannot have an `extern` ABI",
        ));
    }
    if let Some(constness) = &sig.constness {
        errors.push(syn::Error::new(
            constness.span,
            "a task cannot be a `const fn`",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new(
            sig.generics.span(),
            "a task cannot be generic: a graph checks its edges with concrete input and output types; write the task for one type (a generic helper can do the work)",
        ));
    }
    if let Some(v) = &sig.variadic {
        errors.push(syn::Error::new(v.span(), "a task cannot be variadic"));
    }

    let mut params = Vec::new();
    let mut resources = Vec::new();
    let mut order = Vec::new();
    for (i, arg) in sig.inputs.iter().enumerate() {
        match arg {
            FnArg::Receiver(r) => errors.push(syn::Error::new(
                r.span(),
                "a task cannot take `self`: a task is a free `async fn`; move it out of the `impl` block and pass what it needs as parameters",
            )),
            FnArg::Typed(pt) => {
                if let Some(ty) = resource_type(&pt.ty) {
                    order.push(ParamSource::Resource(resources.len()));
                    resources.push(ty);
                    continue;
                }
                match param(i, pt) {
                    Ok(p) => {
                        order.push(ParamSource::Input(params.len()));
                        params.push(p);
                    }
                    Err(e) => errors.push(e),
                }
            }
        }
    }

    let (output, returns_result, return_span) = match &sig.output {
        ReturnType::Default => (syn::parse_quote!(()), false, sig.ident.span()),
        ReturnType::Type(_, ty) => {
            if let Type::ImplTrait(_) = &**ty {
                errors.push(syn::Error::new(
                    ty.span(),
                    "a task must name its output type: `impl Trait` cannot be stored or passed to other tasks",
                ));
            }
            match result_ok_type(ty) {
                Some(ok) => (ok, true, ty.span()),
                None => ((**ty).clone(), false, ty.span()),
            }
        }
    };

    let signature_is_usable = errors.is_empty();
    // A loop task without a state parameter is still expanded, with an error.
    let (output, looping) = match loop_types(&output) {
        Some((state, done)) => {
            let param = state_param(&params, &state);
            if param.is_none() {
                errors.push(no_state_param(&sig.ident, &params, &state));
            }
            (done, Some(LoopState { ty: state, param }))
        }
        None => (output, None),
    };

    let raw_options = match &parsed.options {
        Ok(raw) => raw.as_slice(),
        Err(e) => {
            errors.push(e.clone());
            &[]
        }
    };
    let mut settings = options::check(raw_options, Place::Task, &mut errors);
    if !returns_result && let Some(retry_if) = settings.retry_if.take() {
        errors.push(syn::Error::new(
            retry_if.span,
            "`retry_if` looks at a task's errors, but this task does not return a `Result`",
        ));
    }

    if looping.is_none()
        && let Some(max) = settings.max.take()
    {
        errors.push(syn::Error::new(
            max.span,
            format!(
                "`max` bounds the iterations of a loop task, but `{}` does not return `Loop<S, T>`: remove it, or return `Loop::Again(next_state)` / `Loop::Done(output)`",
                sig.ident
            ),
        ));
    }

    if !signature_is_usable {
        return Checked { task: None, errors };
    }

    let fingerprint = match &settings.version {
        Some(v) => format!("version:{}", v.value),
        None => {
            let mut tokens = proc_macro2::TokenStream::new();
            quote::ToTokens::to_tokens(sig, &mut tokens);
            quote::ToTokens::to_tokens(&item.block, &mut tokens);
            crate::fingerprint::of(tokens)
        }
    };
    let mut shown = sig.clone();
    shown.inputs.iter_mut().for_each(|arg| {
        if let FnArg::Typed(pt) = arg {
            pt.attrs.clear();
        }
    });
    let task = Task {
        name: sig.ident.clone(),
        params,
        resources,
        order,
        output,
        looping,
        returns_result,
        return_span,
        settings,
        fingerprint,
        signature: crate::pretty::tokens(&shown),
    };
    Checked {
        task: Some(task),
        errors,
    }
}

fn param(index: usize, pt: &syn::PatType) -> syn::Result<Param> {
    let name = match &*pt.pat {
        Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
        Pat::Wild(w) => Ident::new(&format!("_input{index}"), w.span()),
        other => {
            return Err(syn::Error::new(
                other.span(),
                "write each task parameter as `name: Type`: the runner passes inputs by position and names them in messages",
            ));
        }
    };
    let written = crate::pretty::tokens(&pt.ty);
    if let Some(inner) = option_of_ref(&pt.ty) {
        let mut p = param_of(name, inner, written)?;
        p.optional = true;
        return Ok(p);
    }
    param_of(name, &pt.ty, written)
}

impl Param {
    /// Whether the parameter takes `None` from a node that did not run, rather than not
    /// running with it: `Option<&T>` and `Option<T>`.
    pub fn takes_none(&self) -> bool {
        self.optional || self.option_of.is_some()
    }
}

/// `T` of a parameter written `Option<T>`, `T` not a reference.
fn option_inner(ty: &Type) -> Option<&Type> {
    match option_arg(ty)? {
        Type::Reference(_) => None,
        inner => Some(inner),
    }
}

/// `&T` of a parameter written `Option<&T>`.
fn option_of_ref(ty: &Type) -> Option<&Type> {
    match option_arg(ty)? {
        inner @ Type::Reference(_) => Some(inner),
        _ => None,
    }
}

/// The type argument of `Option<..>`.
fn option_arg(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    if p.qself.is_some() {
        return None;
    }
    let last = p.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first() {
        Some(syn::GenericArgument::Type(inner)) if args.args.len() == 1 => Some(inner),
        _ => None,
    }
}

fn param_of(name: Ident, ty: &Type, written: String) -> syn::Result<Param> {
    let pt_ty = ty;
    let (input, by_ref) = match pt_ty {
        // `&'static str` and the like are plain values, not borrows of an upstream output.
        Type::Reference(r) if r.lifetime.as_ref().is_some_and(|l| l.ident == "static") => {
            (pt_ty.clone(), false)
        }
        Type::Reference(r) => {
            if r.mutability.is_some() {
                return Err(syn::Error::new(
                    pt_ty.span(),
                    format!(
                        "parameter `{name}` cannot be `&mut`: an upstream output is shared by every task that reads it; take `{}` to get your own copy",
                        crate::pretty::tokens(&r.elem)
                    ),
                ));
            }
            if let Some((owned, view, shown)) = borrowed_view(&r.elem) {
                return Ok(Param {
                    name,
                    input: owned,
                    by_ref: true,
                    optional: false,
                    option_of: None,
                    view: Some(view),
                    written,
                    shown,
                });
            }
            if let Type::TraitObject(_) = &*r.elem {
                return Err(syn::Error::new(
                    pt_ty.span(),
                    format!(
                        "parameter `{name}` cannot borrow a trait object: a task's input is another task's output, which has a concrete type"
                    ),
                ));
            }
            ((*r.elem).clone(), true)
        }
        Type::ImplTrait(_) => {
            return Err(syn::Error::new(
                pt_ty.span(),
                format!(
                    "parameter `{name}` cannot be `impl Trait`: a task is not generic; name the concrete type"
                ),
            ));
        }
        other => (other.clone(), false),
    };
    let shown = crate::pretty::tokens(&input);
    let option_of = (!by_ref).then(|| option_inner(&input)).flatten().cloned();
    Ok(Param {
        name,
        input,
        by_ref,
        optional: false,
        option_of,
        view: None,
        written,
        shown,
    })
}

/// `&str` borrows a `String` output, `&[T]` a `Vec<T>`, `&Path` a `PathBuf`, `&OsStr` an
/// `OsString`: the owned type a task outputs, and the method that borrows the view.
fn borrowed_view(ty: &Type) -> Option<(Type, &'static str, String)> {
    match ty {
        Type::Slice(s) => {
            let elem = &s.elem;
            let shown = format!("Vec<{}>", crate::pretty::tokens(elem));
            Some((syn::parse_quote!(::std::vec::Vec<#elem>), "as_slice", shown))
        }
        Type::Path(p) if p.qself.is_none() => {
            let last = p.path.segments.last()?;
            if !last.arguments.is_none() {
                return None;
            }
            match last.ident.to_string().as_str() {
                "str" if p.path.segments.len() == 1 => Some((
                    syn::parse_quote!(::std::string::String),
                    "as_str",
                    "String".into(),
                )),
                "Path" => Some((
                    syn::parse_quote!(::std::path::PathBuf),
                    "as_path",
                    "PathBuf".into(),
                )),
                "OsStr" => Some((
                    syn::parse_quote!(::std::ffi::OsString),
                    "as_os_str",
                    "OsString".into(),
                )),
                _ => None,
            }
        }
        Type::Paren(p) => borrowed_view(&p.elem),
        Type::Group(g) => borrowed_view(&g.elem),
        _ => None,
    }
}

/// `T` of a parameter written `Res<T>` (or `typedag::Res<T>`): a resource.
fn resource_type(ty: &Type) -> Option<Type> {
    let Type::Path(p) = ty else { return None };
    if p.qself.is_some() {
        return None;
    }
    let last = p.path.segments.last()?;
    if last.ident != "Res" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.iter().collect::<Vec<_>>().as_slice() {
        [GenericArgument::Type(t)] => Some(t.clone()),
        _ => None,
    }
}

/// `(S, T)` of an output written `Loop<S, T>` (or `typedag::Loop<S, T>`): a loop task.
fn loop_types(ty: &Type) -> Option<(Type, Type)> {
    let Type::Path(p) = ty else { return None };
    if p.qself.is_some() {
        return None;
    }
    let last = p.path.segments.last()?;
    if last.ident != "Loop" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.iter().collect::<Vec<_>>().as_slice() {
        [GenericArgument::Type(s), GenericArgument::Type(t)] => Some((s.clone(), t.clone())),
        _ => None,
    }
}

/// The position of a loop task's state parameter: the first that takes a `state` (`S` or
/// `&S`, or a view such as `&str` of a `String` state), not through an `Option`.
fn state_param(params: &[Param], state: &Type) -> Option<usize> {
    let state = crate::pretty::tokens(state);
    params.iter().position(|p| !p.optional && p.shown == state)
}

/// The error of a loop task none of whose parameters takes its state, at the state type.
fn no_state_param(task: &Ident, params: &[Param], state: &Type) -> syn::Error {
    let shown = crate::pretty::tokens(state);
    let found = if params.is_empty() {
        "it has no parameter".to_owned()
    } else {
        let list: Vec<String> = params
            .iter()
            .map(|p| format!("`{}: {}`", p.name, p.written))
            .collect();
        format!("its parameters are {}", list.join(", "))
    };
    syn::Error::new(
        state.span(),
        format!(
            "task `{task}` returns `Loop<{shown}, _>`, so one of its parameters must take the loop's state, as `{shown}` or `&{shown}`; {found}: add one, or make the `Loop`'s state type that of the parameter that carries it"
        ),
    )
}

/// `T` of a return type written `Result<T, E>`, `io::Result<T>`, `anyhow::Result<T>`...
fn result_ok_type(ty: &Type) -> Option<Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    })
}
