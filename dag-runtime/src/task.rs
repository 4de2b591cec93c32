//! The `Task` trait that `#[task]` implements, and what a task attempt gives back.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::policy::TaskOptions;

/// A boxed, sendable future: what a task attempt is once erased.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A unit of work in a graph. Implemented by `#[task]` on a companion struct that has the
/// name of the `async fn`; you never implement it by hand.
///
/// ```
/// use typedag::prelude::*;
///
/// #[task(retries = 2)]
/// async fn double(x: &u64) -> u64 {
///     x * 2
/// }
///
/// assert_eq!(<double as Task>::NAME, "double");
/// assert_eq!(<double as Task>::options().retries, Some(2));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a task",
    label = "not a `#[task]`",
    note = "a node calls an `async fn` marked with `#[task]`; add `#[task]` above the function"
)]
pub trait Task: Send + Sync + 'static {
    /// What the task produces: the `T` of its `T` or `Result<T, E>` return type.
    type Output: crate::wire::Output;

    /// The function's name.
    const NAME: &'static str;

    /// A hash of the function's tokens (signature and body), computed at compile time, or
    /// the `version` option when one is given. Whitespace and comments do not change it.
    const FINGERPRINT: &'static str;

    /// The options written in `#[task(...)]`.
    fn options() -> TaskOptions;

    /// How the output is stored and digested: `None` for a `cache = false` task whose
    /// output has no serde impls.
    fn codec() -> Option<Codec<Self::Output>>;

    /// The resources the task takes (`Res<T>` parameters), supplied by the runner.
    fn resources() -> Vec<crate::resource::Need> {
        Vec::new()
    }

    #[doc(hidden)]
    type Params;

    #[doc(hidden)]
    type Wiring;

    #[doc(hidden)]
    fn wiring() -> Self::Wiring;

    #[doc(hidden)]
    fn call(inputs: Inputs) -> BoxFuture<Result<Self::Output, Failure>>;
}

/// Encodes and decodes a task's output for the cache (postcard).
pub struct Codec<T> {
    /// Output to bytes.
    pub encode: fn(&T) -> Result<Vec<u8>, String>,
    /// Bytes to output.
    pub decode: fn(&[u8]) -> Result<T, String>,
    /// A digest of the output type's shape, part of every fingerprint.
    pub output_type: fn() -> [u8; 32],
}

impl<T> Clone for Codec<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Codec<T> {}

impl<T> fmt::Debug for Codec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Codec")
    }
}

/// Why one attempt of a task failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    message: String,
    kind: FailureKind,
    retryable: bool,
}

/// What ended an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// The task returned `Err`.
    Error,
    /// The task panicked.
    Panic,
    /// The attempt ran past its timeout.
    Timeout,
}

impl Failure {
    /// The task returned this error. `retryable` is what the task's `retry_if` said.
    pub fn error(error: &dyn fmt::Display, retryable: bool) -> Self {
        Self {
            message: error.to_string(),
            kind: FailureKind::Error,
            retryable,
        }
    }

    pub(crate) fn panic(payload: &(dyn Any + Send)) -> Self {
        let message = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "a panic with a non-string payload".to_owned()
        };
        Self {
            message: format!("panicked: {message}"),
            kind: FailureKind::Panic,
            retryable: true,
        }
    }

    /// A failure that another attempt cannot fix (a store or encoding problem).
    pub(crate) fn fatal(message: String) -> Self {
        Self {
            message,
            kind: FailureKind::Error,
            retryable: false,
        }
    }

    /// A failure as another process recorded it.
    pub(crate) fn recorded(message: String, kind: FailureKind, retryable: bool) -> Self {
        Self {
            message,
            kind,
            retryable,
        }
    }

    pub(crate) fn timeout(after: std::time::Duration) -> Self {
        Self {
            message: format!("timed out after {after:?}"),
            kind: FailureKind::Timeout,
            retryable: true,
        }
    }

    /// The error's text.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Error, panic or timeout.
    pub fn kind(&self) -> FailureKind {
        self.kind
    }

    /// `false` when the task's `retry_if` ruled out another attempt.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

pub(crate) type Shared = Arc<dyn Any + Send + Sync>;

/// The values a task attempt receives, one per parameter, in order. Built by the runner,
/// read by the code `#[task]` generates.
#[doc(hidden)]
pub struct Inputs {
    values: Vec<Value>,
    resources: Option<Arc<crate::resource::Resources>>,
}

pub(crate) enum Value {
    Shared(Shared),
    Owned(Option<Box<dyn Any + Send>>),
}

impl Inputs {
    pub(crate) fn new(
        values: Vec<Value>,
        resources: Option<Arc<crate::resource::Resources>>,
    ) -> Self {
        Self { values, resources }
    }

    /// The resource of type `T`. The runner checks before a run that it has every resource
    /// its tasks take.
    pub fn resource<T: ?Sized + crate::resource::Resource>(&self) -> crate::resource::Res<T> {
        self.resources
            .as_ref()
            .and_then(|r| r.get::<T>())
            .expect("typedag: resources are checked before the run starts")
    }

    /// Borrows parameter `i`.
    pub fn borrow<T: crate::wire::Borrowed>(&self, i: usize) -> &T {
        let found = match &self.values[i] {
            Value::Shared(v) => v.downcast_ref::<T>(),
            Value::Owned(v) => v.as_ref().and_then(|b| b.downcast_ref::<T>()),
        };
        found.expect("typedag: input type checked at compile time")
    }

    /// Takes parameter `i` by value: a fresh list is moved, a shared output is cloned.
    pub fn take<T: crate::wire::Owned>(&mut self, i: usize) -> T {
        match &mut self.values[i] {
            Value::Shared(v) => v.downcast_ref::<T>().cloned(),
            Value::Owned(v) => v.take().and_then(|b| b.downcast::<T>().ok()).map(|b| *b),
        }
        .expect("typedag: input type checked at compile time")
    }
}
