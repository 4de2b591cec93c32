//! Signals: nodes whose value comes from outside the graph. A signal node ([`Signal`], written
//! `approve = signal::<Approval>();` in `dag!`) waits until a value is delivered under its
//! name: by the running program through [`Signals`], or into the store while no program runs
//! (`typedag signal GRAPH NAME VALUE`, as JSON). Here: the node's task, the handle, and how a
//! delivered value becomes the node's output or the error that names the type it expected.

use std::any::Any;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

use crate::failure::Failure;
use crate::graph::table::TaskRef;
use crate::policy::TaskOptions;
use crate::task::{BoxFuture, Codec, Inputs, Shared, Task};

/// The task name of every signal node, as events, reports and the store's saved shape show
/// it: a name no `#[task]` function can have, so that the store's shape tells signals apart.
pub(crate) const TASK: &str = "typedag::signal";

/// The value of a signal is stored like any output and may arrive as JSON.
#[diagnostic::on_unimplemented(
    message = "the value of a signal must be `Serialize + DeserializeOwned + Send + Sync + 'static`, and `{Self}` is not",
    label = "a signal's value is stored, and may arrive as JSON",
    note = "derive `serde::Serialize` and `serde::Deserialize` for the type (typedag re-exports serde as `typedag::serde`)"
)]
pub trait SignalValue: Serialize + DeserializeOwned + Send + Sync + 'static {}
#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> SignalValue for T {}

/// The task of a signal node whose value is a `T`, as a row of a `dag!` names it: where a
/// value type without serde is reported, with [`SignalValue`]'s message.
#[doc(hidden)]
pub const fn signal_row<T: SignalValue>() -> TaskRef {
    TaskRef::of::<Signal<T>>()
}

/// The task of a signal node whose value is a `T`: `dag!`'s `signal::<T>()`, and what
/// [`Graph::signal`](crate::Graph::signal) adds. It is never called: the runner waits for a
/// delivery instead.
pub struct Signal<T>(PhantomData<fn() -> T>);

// Not recommended: a type that is not a task is no `Signal<T>` either, and should not be
// told so.
#[diagnostic::do_not_recommend]
impl<T: SignalValue> Task for Signal<T> {
    type Output = T;
    const NAME: &'static str = TASK;
    const PATH: &'static str = TASK;
    const FINGERPRINT: &'static str = "typedag.signal.v1";
    type Params = ();
    type Wiring = ();
    const WIRING: () = ();

    fn options() -> TaskOptions {
        TaskOptions::new()
    }

    fn codec() -> Option<Codec<T>> {
        Some(crate::task::codec::<T>())
    }

    fn call(_: Inputs) -> BoxFuture<Result<T, Failure>> {
        Box::pin(async {
            Err(Failure::fatal(
                "typedag: a signal node waits for a delivery; it has no task to call".into(),
            ))
        })
    }

    fn signal() -> Option<SignalFns> {
        Some(SignalFns {
            decode: decode::<T>,
            json: json::<T>,
        })
    }
}

/// How a delivery becomes a signal node's output, with the value's type erased.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct SignalFns {
    /// The delivered value as the node's output, or why it is not one (naming the signal
    /// and the type it expected).
    pub(crate) decode: fn(&str, Payload) -> Result<Shared, String>,
    /// A value sent with [`Signals::send`] as JSON, to pass to another process; `None` if
    /// it is not of the signal's type.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) json: fn(&(dyn Any + Send + Sync)) -> Option<String>,
}

/// `value` as JSON, if it is a `T`.
fn json<T: SignalValue>(value: &(dyn Any + Send + Sync)) -> Option<String> {
    value
        .downcast_ref::<T>()
        .and_then(|value| serde_json::to_string(value).ok())
}

/// A value on its way to a signal node: the program's own value, or JSON.
pub(crate) enum Payload {
    /// A value sent with [`Signals::send`], with its type's name for messages.
    Value(Box<dyn Any + Send + Sync>, &'static str),
    /// JSON text, from [`Signals::send_json`] or the store.
    Json(String),
}

/// `payload` as a `T`, or a message that names the signal and the type it expected.
fn decode<T: SignalValue>(signal: &str, payload: Payload) -> Result<Shared, String> {
    let expected = std::any::type_name::<T>();
    match payload {
        Payload::Value(value, sent) => match value.downcast::<T>() {
            Ok(value) => Ok(Arc::new(*value)),
            Err(_) => Err(format!(
                "signal `{signal}` takes a `{expected}`, and was sent a `{sent}`; the value is dropped: send a `{expected}`"
            )),
        },
        Payload::Json(json) => match serde_json::from_str::<T>(&json) {
            Ok(value) => Ok(Arc::new(value)),
            Err(e) => Err(format!(
                "signal `{signal}` takes a `{expected}`, and the JSON delivered is not one ({e}); the value is dropped: send one of the right shape"
            )),
        },
    }
}

/// Values for signal nodes, delivered by the program: the handle of a runner, from
/// [`Runner::signals`](crate::Runner::signals). A value sent under a name goes to the signal
/// node of that name in the runner's run that waits for it, or else to the next run that
/// reaches one; each value is received once, and a value not yet received is replaced by the
/// next one sent under its name.
///
/// ```
/// use typedag::prelude::*;
/// use typedag::serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// #[serde(crate = "typedag::serde")]
/// struct Approval { by: String }
///
/// #[task]
/// async fn ship(approval: &Approval) -> String { format!("shipped, approved by {}", approval.by) }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), typedag::Error> {
/// let graph = dag! {
///     approve = signal::<Approval>() with timeout = "1h";
///     shipped = ship(approve);
/// };
/// let runner = Runner::in_memory();
/// let signals = runner.signals();
/// tokio::spawn(async move { signals.send("approve", Approval { by: "ada".into() }) });
/// let out = runner.run(graph).await?;
/// assert_eq!(out.shipped, "shipped, approved by ada");
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Signals {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Values sent and not yet received, by signal name.
    waiting: Mutex<HashMap<String, Payload>>,
    /// Wakes the runs waiting for a value.
    sent: Notify,
}

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<String> = self.lock().keys().cloned().collect();
        names.sort();
        f.debug_struct("Signals").field("waiting", &names).finish()
    }
}

impl Signals {
    /// A handle with nothing sent yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `value` to signal `name`. A value of another type than the signal's fails the
    /// node, with an error naming both types, and is dropped.
    pub fn send<T: Send + Sync + 'static>(&self, name: impl Into<String>, value: T) {
        let payload = Payload::Value(Box::new(value), std::any::type_name::<T>());
        self.deliver(name.into(), payload);
    }

    /// Sends `json` to signal `name`, decoded when the node takes it. JSON that is not a value
    /// of the signal's type fails the node, with an error naming the type, and is dropped.
    pub fn send_json(&self, name: impl Into<String>, json: impl Into<String>) {
        self.deliver(name.into(), Payload::Json(json.into()));
    }

    fn deliver(&self, name: String, payload: Payload) {
        self.lock().insert(name, payload);
        self.inner.sent.notify_waiters();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Payload>> {
        self.inner.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a value for `name` waits to be received.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.lock().contains_key(name)
    }

    /// Receives the value sent to `name`, if one waits.
    pub(crate) fn take(&self, name: &str) -> Option<Payload> {
        self.lock().remove(name)
    }

    /// Puts back a value received from `name` and not used, unless another was sent since.
    #[cfg(feature = "postgres")]
    pub(crate) fn restore(&self, name: &str, payload: Payload) {
        self.lock().entry(name.to_owned()).or_insert(payload);
    }

    /// Completes when a value is sent after it was enabled: create it, enable it, then look
    /// with [`take`](Self::take), so that no value sent in between is missed.
    pub(crate) fn sent(&self) -> tokio::sync::futures::Notified<'_> {
        self.inner.sent.notified()
    }
}
