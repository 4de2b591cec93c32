//! What `dag!` expansions call to wire one node: each argument becomes a [`Wired`] source,
//! checked on the user's own token. Reached through `typedag::__private`.

use std::marker::PhantomData;

use super::args::Wired;
use super::node::{Node, Source};
use super::table::ListOf;
use crate::bounds::Constant;

/// The receiver of the per-parameter wiring traits `#[task]` generates.
pub struct Wire;

/// `T: Is<U>` holds exactly when `T` is `U`; lets a wiring impl stay generic so rustc
/// reports the wiring trait's own message instead of guessing a type.
pub trait Is<T> {}
impl<T> Is<T> for T {}

/// `T: OptionOf<U>` holds when `T` is `U` or `Option<U>`: what may feed a parameter
/// `Option<U>` taken by value.
pub trait OptionOf<T> {}
impl<T> OptionOf<T> for T {}
impl<T> OptionOf<T> for Option<T> {}

/// What a node of a task produces, read off the wiring `#[task]` generates: `dag!`'s
/// checks take a node's wiring as the node, and its outputs struct is built from them.
pub trait Produces {
    /// The task's output.
    type Output;
}

/// Whether a node may not run (its condition, or a node it reads through a parameter that
/// is not an `Option`, not holding), at the type level: [`Yes`] or [`No`]. Its field in
/// the outputs struct is then `Option<T>`.
pub trait Maybe {
    /// Whether a node may not run when one of two reasons may hold.
    type Or<B: Maybe>: Maybe;
    /// The field of a node whose output is `T`.
    type Field<T>;
    /// The value, for checks that return one.
    fn new() -> Self;
}

/// A node that may not run.
pub struct Yes;

/// A node that always runs when its inputs do.
pub struct No;

impl Maybe for Yes {
    type Or<B: Maybe> = Yes;
    type Field<T> = Option<T>;
    fn new() -> Self {
        Yes
    }
}

impl Maybe for No {
    type Or<B: Maybe> = B;
    type Field<T> = T;
    fn new() -> Self {
        No
    }
}

/// What a task's parameters make of a node they read that may not run, at the type level:
/// `#[task]` implements it on the task's wiring, with one [`Kind`] per parameter in a list
/// `(K0, (K1, ()))`, for the outputs struct of a `dag!`, which types its fields with it.
pub trait Passing {
    /// The parameters' kinds, first to last.
    type Kinds;
}

/// What a parameter makes of a node it reads that may not run.
pub trait Kind {
    /// The reader's reason, from the read node's `M`.
    type Maybe<M: Maybe>: Maybe;
}

/// A parameter whose node, not run, leaves its reader not run.
pub struct Pass;

/// An `Option` parameter: a node not run gives it `None`, and its reader runs.
pub struct Absorb;

impl Kind for Pass {
    type Maybe<M: Maybe> = M;
}

impl Kind for Absorb {
    type Maybe<M: Maybe> = No;
}

/// The first position in a list of kinds.
pub struct Z;

/// The position after `N`.
pub struct S<N>(PhantomData<N>);

/// The kind at position `N` of a list of kinds; [`Pass`] past its end, where `dag!` was
/// given more arguments than the task takes (an error reported on the call, not here).
pub trait At<N> {
    /// The kind.
    type Kind: Kind;
}

impl<H: Kind, T> At<Z> for (H, T) {
    type Kind = H;
}

impl<H, T: At<N>, N> At<S<N>> for (H, T) {
    type Kind = T::Kind;
}

impl<N> At<N> for () {
    type Kind = Pass;
}

/// Either reason.
pub fn or<A: Maybe, B: Maybe>(_: A, _: B) -> A::Or<B> {
    Maybe::new()
}

/// A node in the wiring checks of a `dag!`: its output type, and whether it may not run.
pub struct Handle<T, M>(PhantomData<fn() -> (T, M)>);

// By value in the checks, so they borrow nothing: a `dag!` of many nodes is then cheap to
// borrow-check.
impl<T, M> Clone for Handle<T, M> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T, M> Copy for Handle<T, M> {}

impl<T, M: Maybe> Produces for Handle<T, M> {
    type Output = M::Field<T>;
}

/// The handle of the node whose wiring is `args` (whose output it names), and which may not
/// run as `maybe` says.
pub fn handle_of<A: Produces, M: Maybe>(_args: A, _maybe: M) -> Handle<A::Output, M> {
    Handle(PhantomData)
}

/// The handle of a map node whose wiring is `args`: its output is the `Vec` of the task's.
pub fn map_handle_of<A: Produces, M: Maybe>(_args: A, _maybe: M) -> Handle<Vec<A::Output>, M> {
    Handle(PhantomData)
}

/// The handle of a signal node whose value is a `T`, which may not run as `maybe` says. Its
/// value's bounds are checked once, where its row names its task (`signal_row`).
pub fn signal_handle<T, M: Maybe>(_maybe: M) -> Handle<T, M> {
    Handle(PhantomData)
}

/// Whether a node of `handle` may not run, as the value its reader folds in.
pub fn maybe_of<T, M: Maybe>(_handle: Handle<T, M>) -> M {
    M::new()
}

/// The output type of a node, for a list of nodes.
pub fn type_of<T, M>(_handle: Handle<T, M>) -> Node<T> {
    Node::new(usize::MAX, 0)
}

/// A condition must be a node whose output is `bool`.
#[diagnostic::on_unimplemented(
    message = "the condition `{N}` is a node whose output is `{Self}`, not `bool`",
    label = "a condition is a node whose output is `bool`",
    note = "write `if node` with a node of output `bool` declared above; to test another output, add a task that returns the `bool`"
)]
pub trait Condition<N> {}
#[diagnostic::do_not_recommend]
impl<N> Condition<N> for bool {}

/// A node's condition, `if c` or `if !c`: the node `c` (named `N` in messages) must have
/// a `bool` output, and the node may then not run.
pub fn condition<N, T: Condition<N>, M>(_name: N, _condition: Handle<T, M>) -> Yes {
    Yes
}

/// The wiring of a loop task (one that returns `Loop<S, T>`), which alone takes `max`.
#[diagnostic::on_unimplemented(
    message = "node `{N}` sets `max`, but its task does not return `Loop<S, T>`",
    label = "`max` bounds the iterations of a loop task",
    note = "remove `max`, or make the task a loop: return `Loop::Again(next_state)` to run again and `Loop::Done(output)` to end"
)]
pub trait Loops<N> {}

/// A node (named `N` in messages) that sets `max`: its task, whose wiring `args` is, must
/// be a loop task.
pub fn bounded<N, A: Loops<N>>(_node: N, _args: &A) {}

/// The shape of a `dag!`'s outputs struct, built in its wiring checks from each node's
/// wiring: the same struct, with each field the output of its node.
pub trait Shape {
    /// The outputs struct.
    type Outputs;
}

/// The type a list of nodes arrives as: `Vec` of their output, which is also the element
/// type of the list's runtime source.
pub fn type_of_list<T, const N: usize>(
    _list: &ListOf<T>,
    _nodes: &[Node<T>; N],
) -> PhantomData<Vec<T>> {
    PhantomData
}

/// The handle of a node in the wiring checks of a `dag!`, which are type-checked and never
/// run: only its type matters.
pub fn handle<T>() -> Node<T> {
    Node::new(usize::MAX, 0)
}

/// The sources of the arguments of a `dag!` that need code (constants and lists), as the
/// table takes them. Not inlined: each inlined copy would be compiled on its own.
#[inline(never)]
pub fn sources<const K: usize>(list: [Wired; K]) -> Vec<Wired> {
    Vec::from(list)
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
