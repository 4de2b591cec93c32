//! How inputs are wired to parameters, and the checks that make a wrong wire a compile error.
//!
//! The builder checks a whole tuple of inputs against a task's parameters with [`Args`].
//! `dag!` checks each argument on its own token instead, through per-parameter traits that
//! `#[task]` generates; the helpers here are what those expansions call.

use std::fmt;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::graph::{Node, Source};
use crate::task::{Codec, Failure, Task};

/// A parameter `&T`: borrows an upstream output or a constant.
pub struct Ref<T: ?Sized>(PhantomData<fn() -> T>);

/// A parameter `T`: receives its own clone.
pub struct Own<T>(PhantomData<fn() -> T>);

/// Where one parameter's value comes from, resolved against the graph it is added to.
#[doc(hidden)]
pub struct Wired(pub(crate) Result<Source, usize>);

/// One input of a node in the builder: a [`Node`], a list of nodes, or a constant value.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an input for a parameter that takes {P}",
    label = "this input does not fit the task's parameter",
    note = "an input is a `Node<T>` whose output is the parameter's type, a list of `Node<T>` for a `Vec<T>` parameter, or a value of the parameter's type that implements `Serialize`"
)]
pub trait Arg<P> {
    #[doc(hidden)]
    fn source(self, graph: u64) -> Wired;
}

/// All inputs of a node in the builder, as a tuple with one input per parameter.
#[diagnostic::on_unimplemented(
    message = "these inputs do not match the task's parameters",
    label = "expected one input per parameter, in order",
    note = "pass a tuple: `()` for no parameters, `(a,)` for one (mind the comma), `(a, b)` for two; the task's parameters are {P}"
)]
pub trait Args<P> {
    #[doc(hidden)]
    fn sources(self, graph: u64) -> Vec<Wired>;
}

impl<T> Arg<Ref<T>> for Node<T> {
    fn source(self, graph: u64) -> Wired {
        Wired(Source::node(self.graph, self.index, graph))
    }
}
impl<T> Arg<Own<T>> for Node<T> {
    fn source(self, graph: u64) -> Wired {
        Wired(Source::node(self.graph, self.index, graph))
    }
}
impl<T> Arg<Ref<T>> for &Node<T> {
    fn source(self, graph: u64) -> Wired {
        Wired(Source::node(self.graph, self.index, graph))
    }
}
impl<T> Arg<Own<T>> for &Node<T> {
    fn source(self, graph: u64) -> Wired {
        Wired(Source::node(self.graph, self.index, graph))
    }
}
impl<T: Serialize + Send + Sync + 'static> Arg<Ref<T>> for T {
    fn source(self, _graph: u64) -> Wired {
        Wired(Ok(Source::constant(self)))
    }
}
impl<T: Serialize + Send + Sync + 'static> Arg<Own<T>> for T {
    fn source(self, _graph: u64) -> Wired {
        Wired(Ok(Source::constant(self)))
    }
}
impl Arg<Own<String>> for &str {
    fn source(self, _graph: u64) -> Wired {
        Wired(Ok(Source::constant(self.to_owned())))
    }
}
impl Arg<Ref<String>> for &str {
    fn source(self, _graph: u64) -> Wired {
        Wired(Ok(Source::constant(self.to_owned())))
    }
}

macro_rules! list_args {
    ($($list:ty),*) => {$(
        impl<T: Clone + Send + Sync + 'static, const N: usize> Arg<Own<Vec<T>>> for $list {
            fn source(self, graph: u64) -> Wired {
                Wired(Source::list(&self[..], graph))
            }
        }
        impl<T: Clone + Send + Sync + 'static, const N: usize> Arg<Ref<Vec<T>>> for $list {
            fn source(self, graph: u64) -> Wired {
                Wired(Source::list(&self[..], graph))
            }
        }
    )*};
}
list_args!([Node<T>; N], &[Node<T>; N]);

macro_rules! vec_args {
    ($($list:ty),*) => {$(
        impl<T: Clone + Send + Sync + 'static> Arg<Own<Vec<T>>> for $list {
            fn source(self, graph: u64) -> Wired {
                Wired(Source::list(&self[..], graph))
            }
        }
        impl<T: Clone + Send + Sync + 'static> Arg<Ref<Vec<T>>> for $list {
            fn source(self, graph: u64) -> Wired {
                Wired(Source::list(&self[..], graph))
            }
        }
    )*};
}
vec_args!(Vec<Node<T>>, &Vec<Node<T>>, &[Node<T>]);

macro_rules! tuple_args {
    ($(($($p:ident $a:ident $v:ident),*))*) => {$(
        impl<$($p, $a: Arg<$p>),*> Args<($($p,)*)> for ($($a,)*) {
            #[allow(unused_variables)]
            fn sources(self, graph: u64) -> Vec<Wired> {
                let ($($v,)*) = self;
                vec![$($v.source(graph)),*]
            }
        }
    )*};
}
tuple_args! {
    ()
    (P0 A0 a0)
    (P0 A0 a0, P1 A1 a1)
    (P0 A0 a0, P1 A1 a1, P2 A2 a2)
    (P0 A0 a0, P1 A1 a1, P2 A2 a2, P3 A3 a3)
    (P0 A0 a0, P1 A1 a1, P2 A2 a2, P3 A3 a3, P4 A4 a4)
    (P0 A0 a0, P1 A1 a1, P2 A2 a2, P3 A3 a3, P4 A4 a4, P5 A5 a5)
    (P0 A0 a0, P1 A1 a1, P2 A2 a2, P3 A3 a3, P4 A4 a4, P5 A5 a5, P6 A6 a6)
    (P0 A0 a0, P1 A1 a1, P2 A2 a2, P3 A3 a3, P4 A4 a4, P5 A5 a5, P6 A6 a6, P7 A7 a7)
    (P0 A0 a0, P1 A1 a1, P2 A2 a2, P3 A3 a3, P4 A4 a4, P5 A5 a5, P6 A6 a6, P7 A7 a7, P8 A8 a8)
    (P0 A0 a0, P1 A1 a1, P2 A2 a2, P3 A3 a3, P4 A4 a4, P5 A5 a5, P6 A6 a6, P7 A7 a7, P8 A8 a8, P9 A9 a9)
    (P0 A0 a0, P1 A1 a1, P2 A2 a2, P3 A3 a3, P4 A4 a4, P5 A5 a5, P6 A6 a6, P7 A7 a7, P8 A8 a8, P9 A9 a9, P10 A10 a10)
    (P0 A0 a0, P1 A1 a1, P2 A2 a2, P3 A3 a3, P4 A4 a4, P5 A5 a5, P6 A6 a6, P7 A7 a7, P8 A8 a8, P9 A9 a9, P10 A10 a10, P11 A11 a11)
}

// ---- What `#[task]` and `dag!` expansions call. Reached through `typedag::__private`. ----

/// The receiver of the per-parameter wiring traits `#[task]` generates.
pub struct Wire;

/// `T: Is<U>` holds exactly when `T` is `U`; lets a wiring impl stay generic so rustc
/// reports the wiring trait's own message instead of guessing a type.
pub trait Is<T> {}
impl<T> Is<T> for T {}

/// Entry point of `dag!` for one node: fails with "`X` is not a task" on the task's token.
pub fn wiring<T: Task>(_task: PhantomData<T>) -> T::Wiring {
    T::wiring()
}

/// The task type named by a `dag!` call, as a value that carries it.
pub fn task<T>() -> PhantomData<T> {
    PhantomData
}

/// The output type of a node, for a wiring check that names it.
pub fn type_of_node<T>(_node: &Node<T>) -> PhantomData<T> {
    PhantomData
}

/// The type a list of nodes arrives as: `Vec` of their output.
pub fn type_of_list<T, const N: usize>(_nodes: &[Node<T>; N]) -> PhantomData<Vec<T>> {
    PhantomData
}

/// A node input of a `dag!` node.
pub fn node_source<T>(node: &Node<T>) -> Wired {
    Wired(Ok(Source::Node(node.index)))
}

/// How a constant written in `dag!` becomes the parameter's type: as is, or `&str` into the
/// owned `String` or `PathBuf` a task takes.
pub trait IntoInput<P> {
    /// The value as the parameter's type.
    fn into_input(self) -> P;
}
impl<T> IntoInput<T> for T {
    fn into_input(self) -> T {
        self
    }
}
impl IntoInput<String> for &str {
    fn into_input(self) -> String {
        self.to_owned()
    }
}
impl IntoInput<std::path::PathBuf> for &str {
    fn into_input(self) -> std::path::PathBuf {
        self.into()
    }
}
impl IntoInput<std::path::PathBuf> for &std::path::Path {
    fn into_input(self) -> std::path::PathBuf {
        self.to_owned()
    }
}

/// A constant input of a `dag!` node.
pub fn value_source<T: Constant>(value: T) -> Wired {
    Wired(Ok(Source::constant(value)))
}

/// A list input of a `dag!` node.
pub fn list_source<T: Clone + Send + Sync + 'static, const N: usize>(nodes: [Node<T>; N]) -> Wired {
    Wired(Ok(Source::List(
        nodes.iter().map(|n| n.index).collect(),
        crate::graph::collect_list::<T>,
    )))
}

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
    note = "outputs are shared by reference between the tasks that read them, which may run on other threads"
)]
pub trait Output: Send + Sync + 'static {}
#[diagnostic::do_not_recommend]
impl<T: Send + Sync + 'static> Output for T {}

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

/// The codec of a cached task's output.
pub fn codec<T: Cacheable + 'static>() -> Codec<T> {
    Codec {
        encode: |v| postcard::to_allocvec(v).map_err(|e| e.to_string()),
        decode: |b| postcard::from_bytes(b).map_err(|e| e.to_string()),
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
