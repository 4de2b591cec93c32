//! Loop tasks: what one returns ([`Loop`]), and what the runner needs of one with its types
//! erased: which parameter takes the state, one iteration, and how a state is stored.

use std::any::Any;
use std::sync::Arc;

use crate::bounds::Output;
use crate::failure::Failure;
use crate::task::{BoxFuture, Inputs, Shared};

/// What one iteration of a loop task returns: run again on a next state, or be done with the
/// node's output.
///
/// A task that returns `Loop<S, T>` (or `Result<Loop<S, T>, E>`) is a loop task. Its first
/// parameter of type `S` (or `&S`) is its state: `dag!` feeds it the initial state like any
/// argument, and each `Loop::Again(next)` runs the task again on `next`, the other inputs
/// unchanged, until it returns `Loop::Done(output)`. The node's output is `T`. Each
/// iteration's state is stored as it completes, so a run stopped mid-loop resumes after the
/// last stored iteration; a node runs at most `max` iterations (`with max = 100` in `dag!`,
/// [`DEFAULT_MAX_ITERATIONS`](crate::DEFAULT_MAX_ITERATIONS) by default).
///
/// ```
/// use typedag::prelude::*;
///
/// /// Sums the pages of a listing, one page per iteration.
/// #[task]
/// async fn total(page: u32, pages: &u32) -> Loop<u32, u32> {
///     if page + 1 < *pages { Loop::Again(page + 1) } else { Loop::Done(page + 1) }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), typedag::Error> {
/// let graph = dag! {
///     n = total(0u32, 5u32) with max = 10;
/// };
/// let out = Runner::in_memory().run(graph).await?;
/// assert_eq!(out.n, 5);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Loop<S, T> {
    /// Run the task again, with this as its state.
    Again(S),
    /// The loop is over: this is the node's output.
    Done(T),
}

/// One iteration's end, its types erased: what a loop task's step returns, shared.
pub(crate) enum Turn {
    Again(Shared),
    Done(Shared),
}

/// One iteration of a loop task on its inputs: a shared [`Turn`].
pub(crate) type Step = fn(Inputs) -> BoxFuture<Result<Shared, Failure>>;

/// What the runner needs of a loop task: which parameter takes the state, one iteration, and
/// how its state is stored. Made by `#[task]`.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct Looping {
    /// The state parameter's position among the wired inputs.
    pub(crate) state: usize,
    pub(crate) step: Step,
    /// `None` for a `cache = false` task, whose iterations are not stored.
    pub(crate) codec: Option<StateCodec>,
}

impl Looping {
    /// A loop task whose input `state` is its state, iterated by `step`.
    pub fn new(state: usize, step: Step, codec: Option<StateCodec>) -> Self {
        Self { state, step, codec }
    }
}

/// How a loop task's state goes to the store and back, its type erased.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct StateCodec {
    pub(crate) encode: fn(&Shared) -> Result<Vec<u8>, String>,
    pub(crate) decode: fn(&[u8]) -> Result<Shared, String>,
    /// A digest of the state type's shape: a state stored with another shape is not read
    /// back (the task's code fingerprint does not see the type's definition).
    pub(crate) shape: fn() -> crate::cache::Digest,
}

impl StateCodec {
    /// The codec of state type `S`.
    pub fn of<S: LoopState>() -> Self {
        Self {
            encode: |state| {
                let state = state
                    .downcast_ref::<S>()
                    .ok_or("typedag: a loop state of another type")?;
                postcard::to_allocvec(state).map_err(|e| e.to_string())
            },
            decode: |bytes| {
                postcard::from_bytes::<S>(bytes)
                    .map(|s| Arc::new(s) as Shared)
                    .map_err(|e| e.to_string())
            },
            shape: crate::cache::type_digest::<S>,
        }
    }
}

/// A loop task's state is stored after every iteration.
#[diagnostic::on_unimplemented(
    message = "the state of a loop task must be `Serialize + DeserializeOwned + Send + Sync + 'static`, and `{Self}` is not",
    label = "this state is stored after every iteration",
    note = "a stopped loop resumes from its last stored state: derive `serde::Serialize` and `serde::Deserialize` for the type (typedag re-exports serde as `typedag::serde`), or write `#[task(cache = false)]` to store nothing"
)]
pub trait LoopState:
    serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static
{
}
#[diagnostic::do_not_recommend]
impl<T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static> LoopState for T {}

/// One iteration's result, as a loop task's step hands it to the runner.
#[doc(hidden)]
pub fn turn<S: Send + Sync + 'static, T: Output>(
    result: Result<Loop<S, T>, Failure>,
) -> Result<Shared, Failure> {
    let turn = match result? {
        Loop::Again(state) => Turn::Again(Arc::new(state)),
        Loop::Done(output) => Turn::Done(output.into_shared()),
    };
    Ok(Arc::new(turn) as Arc<dyn Any + Send + Sync>)
}

/// `Task::call` of a loop task, which the runner never calls: it runs a loop node one
/// iteration at a time, through [`Looping`].
#[doc(hidden)]
pub fn by_iteration<T: 'static>() -> BoxFuture<Result<T, Failure>> {
    Box::pin(async {
        Err(Failure::fatal(
            "typedag: a loop task runs one iteration at a time".into(),
        ))
    })
}
