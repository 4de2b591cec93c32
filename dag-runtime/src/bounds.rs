//! The bounds a task's types must meet, each a trait whose `on_unimplemented` message says
//! in the user's words what is missing and how to fix it. `#[task]` and `dag!` aim their
//! checks at these traits, so rustc reports our message on the user's token.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A constant input is hashed into its node's fingerprint and shared between threads.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a constant input: it must be `Serialize + Send + Sync + 'static`",
    label = "this value is hashed into the node's fingerprint",
    note = "a constant input's bytes are part of its node's cache key: derive `serde::Serialize` for the type (typedag re-exports serde as `typedag::serde`), and pass an owned value"
)]
pub trait Constant: Serialize + Send + Sync + 'static {}
#[diagnostic::do_not_recommend]
impl<T: Serialize + Send + Sync + 'static> Constant for T {}

/// The output of a cached task is stored with serde and postcard.
#[diagnostic::on_unimplemented(
    message = "the output of a cached task must be `Serialize + DeserializeOwned`, and `{Self}` is not",
    label = "this output is stored in the cache",
    note = "derive `serde::Serialize` and `serde::Deserialize` for the type (typedag re-exports serde as `typedag::serde`), or write `#[task(cache = false)]` to run the task every time and store nothing"
)]
pub trait Cacheable: Serialize + DeserializeOwned {}
#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned> Cacheable for T {}

/// A task's output is shared between the nodes that read it, across threads.
#[diagnostic::on_unimplemented(
    message = "the output of a task must be `Send + Sync + 'static`, and `{Self}` is not",
    label = "this output is shared between threads",
    note = "outputs are shared by reference between the tasks that read them, which may run on other threads: use `Arc` instead of `Rc`, `Mutex` or `RwLock` instead of `RefCell`, or return plain data and build the rest where it is used"
)]
// `Send + Sync` are not supertraits, on purpose: rustc reports a missing supertrait as its
// own "cannot be sent between threads" errors, one per auto trait, instead of this message.
// What the runtime needs of them goes through `into_shared`.
pub trait Output: 'static {
    /// The output, shared between the tasks that read it.
    #[doc(hidden)]
    fn into_shared(self) -> Arc<dyn Any + Send + Sync>
    where
        Self: Sized;

    /// The output back from its shared form, if it is of this type and no one else holds it.
    #[doc(hidden)]
    fn from_shared(shared: Arc<dyn Any + Send + Sync>) -> Option<Self>
    where
        Self: Sized;

    /// `Some(output)`, shared: the field of a node that may not run.
    #[doc(hidden)]
    fn some_shared(self) -> Arc<dyn Any + Send + Sync>
    where
        Self: Sized;

    /// `None` of this type, shared: the field of a node that did not run.
    #[doc(hidden)]
    fn none_shared() -> Arc<dyn Any + Send + Sync>
    where
        Self: Sized;

    /// A `Vec` of outputs, shared.
    #[doc(hidden)]
    fn list_shared(list: Vec<Self>) -> Arc<dyn Any + Send + Sync>
    where
        Self: Sized;

    /// `Some` of a shared `Vec` of outputs held by no one else, shared: the field of a map
    /// node that may not run; `None` if it is of another type or held elsewhere.
    #[doc(hidden)]
    fn some_list_shared(list: Arc<dyn Any + Send + Sync>) -> Option<Arc<dyn Any + Send + Sync>>
    where
        Self: Sized;

    /// `None` of a `Vec` of this type, shared: the field of a map node that did not run.
    #[doc(hidden)]
    fn none_list_shared() -> Arc<dyn Any + Send + Sync>
    where
        Self: Sized;

    /// A shared `Vec` of outputs held by no one else, as each output shared; `None` if it is
    /// of another type or held elsewhere.
    #[doc(hidden)]
    fn split_shared(list: Arc<dyn Any + Send + Sync>) -> Option<Vec<Arc<dyn Any + Send + Sync>>>
    where
        Self: Sized;

    /// The `Vec` of a map node's outputs, in order, shared: item `i` is `old[p]` where
    /// `from_old[i]` is `Some(p)` (`old`, a `Vec` of outputs held by no one else), else
    /// `fresh[i]`. `None` if one is missing, of another type, or held by someone else.
    #[doc(hidden)]
    fn assemble_shared(
        old: Option<Arc<dyn Any + Send + Sync>>,
        from_old: &[Option<usize>],
        fresh: Vec<Option<Arc<dyn Any + Send + Sync>>>,
    ) -> Option<Arc<dyn Any + Send + Sync>>
    where
        Self: Sized;
}
#[diagnostic::do_not_recommend]
impl<T: Send + Sync + 'static> Output for T {
    fn into_shared(self) -> Arc<dyn Any + Send + Sync> {
        Arc::new(self)
    }

    fn from_shared(shared: Arc<dyn Any + Send + Sync>) -> Option<Self> {
        Arc::try_unwrap(shared.downcast::<T>().ok()?).ok()
    }

    fn some_shared(self) -> Arc<dyn Any + Send + Sync> {
        Arc::new(Some(self))
    }

    fn none_shared() -> Arc<dyn Any + Send + Sync> {
        Arc::new(None::<T>)
    }

    fn list_shared(list: Vec<Self>) -> Arc<dyn Any + Send + Sync> {
        Arc::new(list)
    }

    fn some_list_shared(list: Arc<dyn Any + Send + Sync>) -> Option<Arc<dyn Any + Send + Sync>> {
        let list = Arc::try_unwrap(list.downcast::<Vec<T>>().ok()?).ok()?;
        Some(Arc::new(Some(list)))
    }

    fn none_list_shared() -> Arc<dyn Any + Send + Sync> {
        Arc::new(None::<Vec<T>>)
    }

    fn split_shared(list: Arc<dyn Any + Send + Sync>) -> Option<Vec<Arc<dyn Any + Send + Sync>>> {
        let list = Arc::try_unwrap(list.downcast::<Vec<T>>().ok()?).ok()?;
        Some(list.into_iter().map(Self::into_shared).collect())
    }

    fn assemble_shared(
        old: Option<Arc<dyn Any + Send + Sync>>,
        from_old: &[Option<usize>],
        fresh: Vec<Option<Arc<dyn Any + Send + Sync>>>,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        let mut old: Vec<Option<T>> = match old {
            Some(old) => Arc::try_unwrap(old.downcast::<Vec<T>>().ok()?)
                .ok()?
                .into_iter()
                .map(Some)
                .collect(),
            None => Vec::new(),
        };
        let list = from_old
            .iter()
            .zip(fresh)
            .map(|(at, fresh)| match at {
                Some(p) => old.get_mut(*p)?.take(),
                None => Self::from_shared(fresh?),
            })
            .collect::<Option<Vec<T>>>()?;
        Some(Arc::new(list))
    }
}

/// A parameter taken by value receives its own clone of the input.
#[diagnostic::on_unimplemented(
    message = "a parameter of type `{Self}` takes its input by value, so `{Self}` must be `Clone`",
    label = "each node gets its own clone of this input",
    note = "take `&{Self}` instead to borrow the upstream output without copying it"
)]
pub trait Owned: Clone + Send + Sync + 'static {}
#[diagnostic::do_not_recommend]
impl<T: Clone + Send + Sync + 'static> Owned for T {}

/// A borrowed parameter's type is shared between threads.
#[diagnostic::on_unimplemented(
    message = "a parameter `&{Self}` borrows an upstream output, so `{Self}` must be `Send + Sync + 'static`",
    label = "borrowed from a value shared between threads"
)]
pub trait Borrowed: Send + Sync + 'static {}
#[diagnostic::do_not_recommend]
impl<T: Send + Sync + 'static> Borrowed for T {}

/// A task's error is reported with its `Display` text.
#[diagnostic::on_unimplemented(
    message = "the error type `{Self}` of a task must implement `Display`",
    label = "the run reports this error by its `Display` text",
    note = "implement `std::fmt::Display` for it (`thiserror` does), or return `anyhow::Result`"
)]
pub trait TaskError: fmt::Display {}
#[diagnostic::do_not_recommend]
impl<T: fmt::Display> TaskError for T {}
