//! Turns raw `key = value` pairs into [`Settings`], or into errors that say what was found,
//! what is allowed, and the closest valid key. Collects every error; emits no tokens.

use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Ident, Lit};

use super::{Backoff, Place, Raw, Setting, Settings, Shape};

/// Checks every pair, collecting all errors.
pub fn check(raw: &[Raw], place: Place, errors: &mut Vec<syn::Error>) -> Settings {
    let mut s = Settings::default();
    let mut seen: Vec<String> = Vec::new();
    for Raw { key, value } in raw {
        let name = key.to_string();
        if !place.keys().contains(&name.as_str()) {
            errors.push(unknown_key(key, place));
            continue;
        }
        if seen.contains(&name) {
            errors.push(syn::Error::new(
                key.span(),
                format!("`{name}` is set twice; keep one"),
            ));
            continue;
        }
        seen.push(name.clone());
        let span = value.span();
        let result = match name.as_str() {
            "retries" => int::<u32>(value, "a whole number of retries, like `retries = 3`")
                .map(|v| s.retries = Some(Setting { value: v, span })),
            "priority" => int::<i32>(
                value,
                "a whole number, higher runs first, like `priority = 10`",
            )
            .map(|v| s.priority = Some(Setting { value: v, span })),
            "limit" => int::<usize>(
                value,
                "how many nodes of this task may run at once, like `limit = 4`",
            )
            .and_then(|v| {
                if v == 0 {
                    Err(syn::Error::new(
                        value.span(),
                        "`limit = 0` would never run the task: use 1 or more",
                    ))
                } else {
                    s.limit = Some(Setting { value: v, span });
                    Ok(())
                }
            }),
            "max" => int::<u32>(
                value,
                "a positive whole number of iterations, like `max = 100`",
            )
            .and_then(|v| {
                if v == 0 {
                    Err(syn::Error::new(
                        value.span(),
                        "`max = 0` would stop the loop before its first iteration: use 1 or more",
                    ))
                } else {
                    s.max = Some(Setting { value: v, span });
                    Ok(())
                }
            }),
            "timeout" => duration(value).map(|v| s.timeout = Some(Setting { value: v, span })),
            "version" => string(value, "a string, like `version = \"2\"`")
                .map(|v| s.version = Some(Setting { value: v, span })),
            "cache" => boolean(value, "`cache = true` or `cache = false`")
                .map(|v| s.cache = Some(Setting { value: v, span })),
            "backoff" => backoff(value).map(|v| s.backoff = Some(Setting { value: v, span })),
            "retry_if" => match value {
                Expr::Path(p) => {
                    s.retry_if = Some(Setting {
                        value: p.clone(),
                        span,
                    });
                    Ok(())
                }
                other => Err(syn::Error::new(
                    other.span(),
                    "`retry_if` takes the path of a function `fn(&E) -> bool` that says whether an error is worth another attempt, like `retry_if = is_transient`",
                )),
            },
            _ => unreachable!("keys are checked above"),
        };
        if let Err(e) = result {
            errors.push(e);
        }
    }
    s
}

fn unknown_key(key: &Ident, place: Place) -> syn::Error {
    let name = key.to_string();
    let valid = place.keys();
    let list = valid
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let closest = valid
        .iter()
        .map(|k| (distance(&name, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min();
    let hint = match closest {
        Some((_, k)) => format!("did you mean `{k}`? "),
        None => String::new(),
    };
    let extra = if place == Place::Node && Place::Task.keys().contains(&name.as_str()) {
        format!(" (`{name}` is set on the task, in `#[task({name} = ...)]`)")
    } else {
        String::new()
    };
    syn::Error::new(
        key.span(),
        format!(
            "unknown {} `{name}`{extra}: {hint}valid ones are {list}",
            place.what()
        ),
    )
}

/// Levenshtein distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let old = row[j + 1];
            row[j + 1] = (row[j + 1] + 1)
                .min(row[j] + 1)
                .min(prev + usize::from(ca != *cb));
            prev = old;
        }
    }
    row[b.len()]
}

fn lit(value: &Expr) -> Option<&Lit> {
    match value {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        Expr::Group(g) => lit(&g.expr),
        _ => None,
    }
}

fn int<T: std::str::FromStr>(value: &Expr, expected: &str) -> syn::Result<T>
where
    T::Err: std::fmt::Display,
{
    let (negative, inner) = match value {
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => (true, &*u.expr),
        other => (false, other),
    };
    match lit(inner) {
        Some(Lit::Int(i)) => {
            let digits = if negative {
                format!("-{}", i.base10_digits())
            } else {
                i.base10_digits().to_owned()
            };
            digits
                .parse::<T>()
                .map_err(|e| syn::Error::new(value.span(), format!("{e}: expected {expected}")))
        }
        _ => Err(syn::Error::new(
            value.span(),
            format!(
                "expected {expected}, found `{}`",
                crate::pretty::tokens(value)
            ),
        )),
    }
}

fn string(value: &Expr, expected: &str) -> syn::Result<String> {
    match lit(value) {
        Some(Lit::Str(s)) => Ok(s.value()),
        _ => Err(syn::Error::new(
            value.span(),
            format!(
                "expected {expected}, found `{}`",
                crate::pretty::tokens(value)
            ),
        )),
    }
}

fn boolean(value: &Expr, expected: &str) -> syn::Result<bool> {
    match lit(value) {
        Some(Lit::Bool(b)) => Ok(b.value),
        _ => Err(syn::Error::new(
            value.span(),
            format!(
                "expected {expected}, found `{}`",
                crate::pretty::tokens(value)
            ),
        )),
    }
}

/// Reads a duration with the project's one duration parser, so `timeout = "2min"` means what
/// `TYPEDAG_TIMEOUT=2min` means.
fn duration(value: &Expr) -> syn::Result<std::time::Duration> {
    let expected = dag_duration::EXPECTED;
    let Some(Lit::Str(s)) = lit(value) else {
        return Err(syn::Error::new(
            value.span(),
            format!(
                "expected {expected}, written as a string like `\"30s\"`; found `{}`",
                crate::pretty::tokens(value)
            ),
        ));
    };
    dag_duration::parse(&s.value()).map_err(|e| syn::Error::new(s.span(), e))
}

const BACKOFF_HELP: &str = "expected `fixed(\"1s\")`, `linear(\"100ms\")` or `exponential(\"100ms\")`, optionally followed by `cap = \"10s\"` and `jitter` inside the parentheses, like `exponential(\"100ms\", cap = \"10s\", jitter)`";

fn backoff(value: &Expr) -> syn::Result<Backoff> {
    let Expr::Call(call) = value else {
        return Err(syn::Error::new(
            value.span(),
            format!("malformed `backoff`: {BACKOFF_HELP}"),
        ));
    };
    let named =
        |shape: &Shape| matches!(&*call.func, Expr::Path(p) if p.path.is_ident(shape.name()));
    let shape = match Shape::ALL.into_iter().find(named) {
        Some(shape) => shape,
        None => {
            let other = &call.func;
            return Err(syn::Error::new(
                other.span(),
                format!(
                    "unknown backoff `{}`: {BACKOFF_HELP}",
                    crate::pretty::tokens(other)
                ),
            ));
        }
    };
    let mut args = call.args.iter();
    let Some(first) = args.next() else {
        return Err(syn::Error::new(
            call.span(),
            format!("`{}` needs a first delay: {BACKOFF_HELP}", shape.name()),
        ));
    };
    let initial = duration(first)?;
    let mut b = Backoff {
        shape,
        initial,
        cap: None,
        jitter: false,
    };
    for arg in args {
        match arg {
            Expr::Assign(a) if matches!(&*a.left, Expr::Path(p) if p.path.is_ident("cap")) => {
                b.cap = Some(duration(&a.right)?);
            }
            Expr::Path(p) if p.path.is_ident("jitter") => b.jitter = true,
            other => {
                return Err(syn::Error::new(
                    other.span(),
                    format!(
                        "unexpected `{}` in `backoff`: {BACKOFF_HELP}",
                        crate::pretty::tokens(other)
                    ),
                ));
            }
        }
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::Span;

    #[test]
    fn durations_read_with_the_one_parser_and_name_its_syntax() {
        let seven_days: Expr = syn::parse_quote!("7d");
        assert_eq!(duration(&seven_days).unwrap().as_secs(), 7 * 86_400);
        let weeks: Expr = syn::parse_quote!("3 weeks");
        let e = duration(&weeks).unwrap_err().to_string();
        assert!(e.contains("\"3 weeks\""), "{e}");
        assert!(e.contains(dag_duration::EXPECTED), "{e}");
        let bare: Expr = syn::parse_quote!(30);
        let e = duration(&bare).unwrap_err().to_string();
        assert!(e.contains("found `30`"), "{e}");
    }

    #[test]
    fn suggestions() {
        assert_eq!(distance("retires", "retries"), 2);
        let e = unknown_key(&Ident::new("retires", Span::call_site()), Place::Task);
        assert!(e.to_string().contains("did you mean `retries`?"), "{e}");
        let e = unknown_key(&Ident::new("zzz", Span::call_site()), Place::Task);
        assert!(!e.to_string().contains("did you mean"), "{e}");
    }
}
