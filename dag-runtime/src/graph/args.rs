//! The builder's argument types: how an input (a node, a list of nodes, a constant) is
//! wired to a task's parameter, and the checks that make a wrong wire a compile error.
//!
//! The builder checks a whole tuple of inputs against a task's parameters with [`Args`].
//! `dag!` checks each argument on its own token instead, through per-parameter traits that
//! `#[task]` generates (see [`wiring`](super::wiring)).

use std::marker::PhantomData;

use serde::Serialize;

use super::node::{Node, Source};

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
