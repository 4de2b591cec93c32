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

/// What a node of a task produces, read off the wiring `#[task]` generates: `dag!`'s
/// checks take a node's wiring as the node, and its outputs struct is built from them.
pub trait Produces {
    /// The task's output.
    type Output;
}

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
