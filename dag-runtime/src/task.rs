//! The `Task` trait that `#[task]` implements, the values an attempt receives, and the
//! codec that stores its output.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use std::marker::PhantomData;

use crate::bounds::{Cacheable, TaskError};
use crate::failure::Failure;
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
/// assert!(<double as Task>::PATH.ends_with("::double"));
/// assert_eq!(<double as Task>::options().retries, Some(2));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a task",
    label = "not a `#[task]`",
    note = "a node calls an `async fn` marked with `#[task]`; add `#[task]` above the function"
)]
pub trait Task: Sized + Send + Sync + 'static {
    /// What the task produces: the `T` of its `T` or `Result<T, E>` return type.
    type Output: crate::bounds::Output;

    /// The function's name, as events, reports and `explain` show it.
    const NAME: &'static str;

    /// The function's full path: its module path and name, e.g. `my_crate::ingest::load`.
    /// The task's identity in every fingerprint and `limit` group, so that two tasks of the
    /// same name in different modules never share a cached output or a limit.
    const PATH: &'static str;

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

    /// For a loop task (one that returns [`Loop`](crate::Loop)): its state parameter, one
    /// iteration, and how its state is stored.
    #[doc(hidden)]
    fn looping() -> Option<crate::looping::Looping> {
        None
    }

    #[doc(hidden)]
    type Params;

    #[doc(hidden)]
    type Wiring;

    /// For each parameter, whether it is an `Option<&T>` or `Option<T>`: it receives `None`
    /// when the node feeding it did not run because its condition did not hold.
    #[doc(hidden)]
    const OPTIONAL: &'static [bool] = &[];

    #[doc(hidden)]
    const WIRING: Self::Wiring;

    /// `true` for every task: the constant `dag!` gates a task's types on ([`Gate`]).
    #[doc(hidden)]
    const IS_TASK: bool = true;

    /// The task as a row of a `dag!`'s table names it.
    #[doc(hidden)]
    const ROW: crate::graph::table::TaskRef = crate::graph::table::TaskRef::of::<Self>();

    #[doc(hidden)]
    fn call(inputs: Inputs) -> BoxFuture<Result<Self::Output, Failure>>;

    /// How a delivered value becomes the output, for the task of a signal node; `None` for
    /// every `#[task]`.
    #[doc(hidden)]
    fn signal() -> Option<crate::signal::SignalFns> {
        None
    }
}

/// A task's types as a `dag!`'s outputs struct names them, behind the task's own constant:
/// `<Gated<(T,), { <T as Task>::IS_TASK }> as Gate>::Output` (`T` in a tuple, where a
/// function is reported as not a type, as on the node, rather than as a misplaced
/// constant). Where `T` is not a task, the constant is the one error ("`T` is not a task",
/// on the node's task), and the types it gates are errors that every field using them
/// passes in silence, where `<T as Task>::Output` would report `T` again at each.
#[doc(hidden)]
pub struct Gated<T, const IS_TASK: bool>(PhantomData<T>);

/// The types of a task [`Gated`] by its constant.
#[doc(hidden)]
pub trait Gate {
    /// The task's output.
    type Output;
    /// The task's wiring.
    type Wiring;
}

impl<T: Task> Gate for Gated<(T,), true> {
    type Output = T::Output;
    type Wiring = T::Wiring;
}

/// Encodes and decodes a task's output for the cache (postcard).
pub struct Codec<T> {
    /// Output to bytes.
    pub encode: fn(&T) -> Result<Vec<u8>, String>,
    /// Bytes to output.
    pub decode: fn(&[u8]) -> Result<T, String>,
    /// Bytes of a `Vec` of outputs (a map node's) to the `Vec`.
    pub decode_list: fn(&[u8]) -> Result<Vec<T>, String>,
    /// Outputs to the bytes of their `Vec`.
    pub encode_list: fn(&[T]) -> Result<Vec<u8>, String>,
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

pub(crate) type Shared = Arc<dyn Any + Send + Sync>;

/// The values a task attempt receives, one per parameter, in order. Built by the runner,
/// read by the code `#[task]` generates.
#[doc(hidden)]
pub struct Inputs {
    values: Vec<Value>,
    resources: Option<Arc<crate::resource::Resources>>,
}

/// Item `index` of a map node's `list`, with how to read it.
#[derive(Clone)]
pub(crate) struct ItemOf {
    pub list: Shared,
    pub index: usize,
    pub get: fn(&crate::graph::map::AnyItem, usize) -> Option<&crate::graph::map::AnyItem>,
}

impl ItemOf {
    fn get(&self) -> Option<&crate::graph::map::AnyItem> {
        (self.get)(&*self.list, self.index)
    }
}

pub(crate) enum Value {
    Shared(Shared),
    Owned(Option<Box<dyn Any + Send>>),
    /// The node feeding an `Option` parameter did not run: its condition did not hold.
    Absent,
    /// Item `i` of a map node's list.
    /// Item `i` of a map node's list; boxed, so that other values stay small.
    Item(Box<ItemOf>),
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
    pub fn borrow<T: crate::bounds::Borrowed>(&self, i: usize) -> &T {
        self.borrow_opt(i)
            .expect("typedag: input type checked at compile time")
    }

    /// Borrows `Option` parameter `i`: `None` if the node feeding it did not run.
    pub fn borrow_opt<T: crate::bounds::Borrowed>(&self, i: usize) -> Option<&T> {
        match &self.values[i] {
            Value::Shared(v) => v.downcast_ref::<T>(),
            Value::Owned(v) => v.as_ref().and_then(|b| b.downcast_ref::<T>()),
            Value::Absent => None,
            Value::Item(item) => item.get().and_then(|v| v.downcast_ref::<T>()),
        }
    }

    /// Takes parameter `i` by value: a fresh list is moved, a shared output is cloned.
    pub fn take<T: crate::bounds::Owned>(&mut self, i: usize) -> T {
        self.take_opt(i)
            .expect("typedag: input type checked at compile time")
    }

    /// Takes parameter `i`, an `Option<T>` by value, fed by a node of output `Option<T>`
    /// (its output) or `T` (`Some` of it; `None` if that node did not run).
    pub fn take_option<T: crate::bounds::Owned>(&mut self, i: usize) -> Option<T> {
        fn either<T: Clone + 'static>(v: &(dyn Any + Send + Sync)) -> Option<T> {
            match v.downcast_ref::<Option<T>>() {
                Some(option) => option.clone(),
                None => v.downcast_ref::<T>().cloned(),
            }
        }
        match &mut self.values[i] {
            Value::Shared(v) => either(&**v),
            Value::Owned(v) => v.take().and_then(|b| match b.downcast::<Option<T>>() {
                Ok(option) => *option,
                Err(b) => b.downcast::<T>().ok().map(|b| *b),
            }),
            Value::Absent => None,
            Value::Item(item) => item.get().and_then(either),
        }
    }

    /// Takes `Option` parameter `i` by value: `None` if the node feeding it did not run.
    pub fn take_opt<T: crate::bounds::Owned>(&mut self, i: usize) -> Option<T> {
        match &mut self.values[i] {
            Value::Shared(v) => v.downcast_ref::<T>().cloned(),
            Value::Owned(v) => v.take().and_then(|b| b.downcast::<T>().ok()).map(|b| *b),
            Value::Absent => None,
            Value::Item(item) => item.get().and_then(|v| v.downcast_ref::<T>()).cloned(),
        }
    }
}

/// The codec of a cached task's output.
pub fn codec<T: Cacheable + 'static>() -> Codec<T> {
    Codec {
        encode: |v| postcard::to_allocvec(v).map_err(|e| e.to_string()),
        decode: |b| postcard::from_bytes(b).map_err(|e| e.to_string()),
        decode_list: |b| postcard::from_bytes(b).map_err(|e| e.to_string()),
        encode_list: |v| postcard::to_allocvec(v).map_err(|e| e.to_string()),
        output_type: crate::cache::type_digest::<T>,
    }
}

/// Finds a codec for a `cache = false` task's output if it has serde impls (autoref
/// specialization: the first trait applies when its bound holds, the second otherwise).
pub struct Probe<T>(PhantomData<fn() -> T>);

impl<T> Probe<T> {
    /// A probe for `T`.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

/// Picked when the output has serde impls.
pub trait CodecIfSerde<T> {
    /// The codec.
    fn codec(&self) -> Option<Codec<T>>;
}
impl<T: Cacheable + 'static> CodecIfSerde<T> for Probe<T> {
    fn codec(&self) -> Option<Codec<T>> {
        Some(codec::<T>())
    }
}

/// Picked otherwise.
pub trait NoCodec<T> {
    /// No codec.
    fn codec(&self) -> Option<Codec<T>>;
}
impl<T> NoCodec<T> for &Probe<T> {
    fn codec(&self) -> Option<Codec<T>> {
        None
    }
}

/// Turns a task's `Result` into what the runner records, asking `retry_if` on errors.
pub fn from_result<T, E: TaskError>(
    result: Result<T, E>,
    retry_if: Option<fn(&E) -> bool>,
) -> Result<T, Failure> {
    result.map_err(|e| {
        let retryable = retry_if.is_none_or(|f| f(&e));
        Failure::error(&e, retryable)
    })
}
