//! `key = value` settings: of a task in `#[task(...)]`, of a node after `with` in `dag!`.
//!
//! [`parse`] keeps the pairs as written ([`Raw`]); [`check`](mod@check) turns them into
//! [`Settings`], each value with the span of the user's tokens, or into errors that say what
//! was found, what is allowed, and the closest valid key; [`expand`] writes settings as the
//! runtime's `TaskOptions` and `NodeOptions` calls.

mod check;
pub mod expand;
mod parse;

use proc_macro2::Span;
use syn::{Expr, ExprPath, Ident};

pub use check::check;
pub use parse::{parse_list, parse_list_until_semi};

/// One `key = value` as written.
pub struct Raw {
    pub key: Ident,
    pub value: Expr,
}

/// Where a list of settings is written, which decides the keys it may use.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Task,
    Node,
}

impl Place {
    fn keys(self) -> &'static [&'static str] {
        match self {
            Place::Task => &[
                "retries", "backoff", "timeout", "priority", "limit", "version", "cache",
                "retry_if", "max",
            ],
            Place::Node => &["retries", "backoff", "timeout", "priority", "max"],
        }
    }

    fn what(self) -> &'static str {
        match self {
            Place::Task => "`#[task]` option",
            Place::Node => "node setting",
        }
    }
}

/// The valid settings of one list. A key that was missing or wrong is `None`, so the code
/// around an error still gets the runtime's defaults.
#[derive(Default)]
pub struct Settings {
    pub retries: Option<Setting<u32>>,
    pub backoff: Option<Setting<Backoff>>,
    pub timeout: Option<Setting<std::time::Duration>>,
    pub priority: Option<Setting<i32>>,
    pub limit: Option<Setting<usize>>,
    pub version: Option<Setting<String>>,
    pub cache: Option<Setting<bool>>,
    pub retry_if: Option<Setting<ExprPath>>,
    /// A loop task's iteration bound.
    pub max: Option<Setting<u32>>,
}

/// A checked value with the span of the tokens it was read from, so a later check (such as
/// `retry_if` on a task without a `Result`) points at what the user wrote.
pub struct Setting<T> {
    pub value: T,
    pub span: Span,
}

pub struct Backoff {
    pub shape: Shape,
    pub initial: std::time::Duration,
    pub cap: Option<std::time::Duration>,
    pub jitter: bool,
}

/// The constructors of the runtime's `Backoff`.
#[derive(Clone, Copy)]
pub enum Shape {
    Fixed,
    Linear,
    Exponential,
}

impl Shape {
    const ALL: [Shape; 3] = [Shape::Fixed, Shape::Linear, Shape::Exponential];

    /// As written in `backoff = ...`, and the name of the runtime's constructor.
    fn name(self) -> &'static str {
        match self {
            Shape::Fixed => "fixed",
            Shape::Linear => "linear",
            Shape::Exponential => "exponential",
        }
    }
}
