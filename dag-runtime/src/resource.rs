//! Resources: clients, pools and settings that tasks share without wiring or caching them.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// A task parameter the runner supplies from [`Runner::resource`](crate::Runner::resource),
/// by type: an HTTP client, a database pool, a rate limiter, settings. It is not written in
/// `dag!` or the builder, and it is not part of any fingerprint: changing a resource never
/// invalidates a cached output (give the task a `version` if its output depends on it).
///
/// ```
/// use typedag::prelude::*;
///
/// struct Greeter {
///     greeting: String,
/// }
///
/// #[task]
/// async fn greet(greeter: Res<Greeter>, name: String) -> String {
///     format!("{}, {name}", greeter.greeting)
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), typedag::Error> {
/// let graph = dag! { hello = greet("world"); };
/// let runner = Runner::in_memory().resource(Greeter { greeting: "hello".into() });
/// assert_eq!(runner.run(graph).await?.hello, "hello, world");
///
/// // Still an ordinary function: pass the resource by hand.
/// let greeter = Res::new(Greeter { greeting: "hi".into() });
/// assert_eq!(greet(greeter, "you".into()).await, "hi, you");
/// # Ok(())
/// # }
/// ```
pub struct Res<T: ?Sized>(Arc<T>);

impl<T> Res<T> {
    /// Wraps a value, to call a task directly.
    pub fn new(value: T) -> Self {
        Self(Arc::new(value))
    }
}

impl<T: ?Sized> Res<T> {
    /// Shares an existing `Arc`.
    pub fn from_arc(value: Arc<T>) -> Self {
        Self(value)
    }

    /// The shared value.
    pub fn arc(&self) -> &Arc<T> {
        &self.0
    }
}

impl<T: ?Sized> Clone for Res<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T: ?Sized> Deref for Res<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Res<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A resource type is shared by every task that asks for it, on any thread.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a resource: it must be `Send + Sync + 'static`",
    label = "shared by every task that takes it, across threads",
    note = "a resource is shared by reference between tasks running on other threads: use thread-safe types (`Arc<Mutex<_>>` rather than `Rc<RefCell<_>>`, say) and own the data"
)]
pub trait Resource: Send + Sync + 'static {}
#[diagnostic::do_not_recommend]
impl<T: ?Sized + Send + Sync + 'static> Resource for T {}

/// One resource a task takes: its type, for lookups and messages.
#[derive(Clone, Copy, Debug)]
pub struct Need {
    pub(crate) id: TypeId,
    pub(crate) name: &'static str,
}

impl Need {
    /// The need for a resource of type `T` (whose `Send + Sync` the task's call checks).
    pub fn of<T: ?Sized + 'static>() -> Self {
        Self {
            id: TypeId::of::<T>(),
            name: std::any::type_name::<T>(),
        }
    }
}

/// The resources a runner holds, by type.
#[derive(Clone, Default)]
pub(crate) struct Resources {
    /// Each value is the `Arc<T>` itself, read back by downcasting to `Arc<T>`.
    by_type: HashMap<TypeId, (Arc<dyn Any + Send + Sync>, &'static str)>,
}

impl Resources {
    /// Adds one; `Err` with the type's name if one of this type is there already.
    pub(crate) fn add<T: ?Sized + Resource>(&mut self, value: Arc<T>) -> Result<(), &'static str> {
        let name = std::any::type_name::<T>();
        if self.by_type.contains_key(&TypeId::of::<T>()) {
            return Err(name);
        }
        self.by_type
            .insert(TypeId::of::<T>(), (Arc::new(value), name));
        Ok(())
    }

    pub(crate) fn has(&self, need: &Need) -> bool {
        self.by_type.contains_key(&need.id)
    }

    pub(crate) fn get<T: ?Sized + 'static>(&self) -> Option<Res<T>> {
        let (value, _) = self.by_type.get(&TypeId::of::<T>())?;
        value.downcast_ref::<Arc<T>>().cloned().map(Res)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_type.is_empty()
    }

    pub(crate) fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.by_type.values().map(|(_, n)| *n).collect();
        names.sort_unstable();
        names
    }
}
