//! `#[task]`: parse the function and options, check them, expand to the companion struct.

mod check;
mod expand;
mod parse;

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let parsed = match parse::parse(args, item.clone()) {
        Ok(parsed) => parsed,
        // Not a function: give the item back as written, so the error is the only one.
        Err(e) => {
            let error = e.to_compile_error();
            return quote!(#item #error);
        }
    };
    let checked = check::check(&parsed);
    let expanded = match &checked.task {
        // Beside option errors too: the function and its companion keep every use of the
        // task compiling, so one mistake gives one error, not a cascade in each `dag!`.
        Some(task) => expand::expand(&parsed.item, task),
        // No companion can be typed from an unusable signature. The function alone keeps
        // direct calls resolving, and rustc says nothing more about the companion's uses
        // once this macro has reported an error.
        None => parsed.item.to_token_stream(),
    };
    let errors = checked.errors.iter().map(syn::Error::to_compile_error);
    quote!(#expanded #(#errors)*)
}

#[cfg(test)]
mod tests {
    use quote::quote;

    #[test]
    fn wrong_options_still_emit_the_function_and_its_companion() {
        let out = super::expand(
            quote!(retries = "three"),
            quote!(
                async fn fetch(url: String) -> String {
                    url
                }
            ),
        )
        .to_string();
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.contains("async fn fetch"), "{out}");
        assert!(out.contains("struct fetch"), "{out}");
    }

    #[test]
    fn a_loop_task_takes_its_state_by_type_and_outputs_what_it_is_done_with() {
        let out = super::expand(
            quote!(),
            quote!(
                async fn pages(site: &String, page: u32) -> Loop<u32, Vec<u32>> {
                    Loop::Done(vec![page])
                }
            ),
        )
        .to_string();
        assert!(!out.contains("compile_error"), "{out}");
        assert!(out.contains("type Output = Vec < u32 >"), "{out}");
        assert!(out.contains("Looping :: new (1usize"), "{out}");

        let out = super::expand(
            quote!(),
            quote!(
                async fn pages(site: &String, page: u32) -> Loop<u64, Vec<u32>> {
                    Loop::Done(vec![page])
                }
            ),
        )
        .to_string();
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.contains("struct pages"), "{out}");
        assert!(!out.contains("Looping :: new"), "{out}");
    }

    #[test]
    fn an_unusable_signature_emits_the_function_alone() {
        let out = super::expand(
            quote!(),
            quote!(
                fn fetch(url: String) -> String {
                    url
                }
            ),
        )
        .to_string();
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.contains("fn fetch"), "{out}");
        assert!(!out.contains("struct fetch"), "{out}");
    }
}
