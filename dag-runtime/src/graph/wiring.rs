//! What `dag!` expansions call to wire one node: each argument becomes a [`Wired`] source,
//! checked on the user's own token. Reached through `typedag::__private`.

use std::marker::PhantomData;

use super::args::Wired;
use super::node::{Node, Source};
use crate::bounds::Constant;

/// The receiver of the per-parameter wiring traits `#[task]` generates.
pub struct Wire;

/// `T: Is<U>` holds exactly when `T` is `U`; lets a wiring impl stay generic so rustc
/// reports the wiring trait's own message instead of guessing a type.
pub trait Is<T> {}
impl<T> Is<T> for T {}

/// The output type of a node, for a wiring check that names it.
pub fn type_of_node<T>(_node: &Node<T>) -> PhantomData<T> {
    PhantomData
}

/// The type a list of nodes arrives as: `Vec` of their output.
pub fn type_of_list<T, const N: usize>(_nodes: &[Node<T>; N]) -> PhantomData<Vec<T>> {
    PhantomData
}

/// The sources of one `dag!` node's arguments, as the builder takes them. Not inlined: a
/// `dag!` of a thousand nodes calls it a thousand times, and each inlined copy would be
/// compiled on its own.
#[inline(never)]
pub fn sources<const K: usize>(list: [Wired; K]) -> Vec<Wired> {
    Vec::from(list)
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
        super::node::collect_list::<T>,
    )))
}
