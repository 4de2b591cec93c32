//! The outputs a run hands back, read through the handles of kept nodes.

use std::fmt;

use super::node::{Kept, Node};
use crate::bounds::Output;
use crate::task::Shared;

/// The outputs a run hands back: those of the nodes marked with [`Graph::keep`](super::Graph::keep).
#[derive(Default)]
pub struct Outputs {
    pub(crate) graph: u64,
    pub(crate) values: Vec<Option<Shared>>,
}

impl Outputs {
    /// The output of a kept node, if it completed: after
    /// [`Runner::run_partial`](crate::Runner::run_partial) some nodes may not have.
    pub fn try_get<T: 'static>(&self, kept: &Kept<T>) -> Option<&T> {
        self.node_value(&kept.node)
    }

    /// The output of a kept node.
    ///
    /// # Panics
    /// If `kept` belongs to another graph, or its output was already taken.
    pub fn get<T: 'static>(&self, kept: &Kept<T>) -> &T {
        self.node_value(&kept.node)
            .expect("typedag: this output belongs to another graph or was taken")
    }

    /// Takes the output of a kept node out, or `None` if it was taken already.
    pub fn take<T: Output>(&mut self, kept: &Kept<T>) -> Option<T> {
        if kept.node.graph != self.graph {
            return None;
        }
        self.take_at(kept.node.index)
    }

    /// The output of node `index`, if it completed and is held by no one else. Not inlined:
    /// a `dag!`'s outputs struct calls it once per node, and each inlined copy would be
    /// compiled on its own.
    #[doc(hidden)]
    #[inline(never)]
    pub fn take_at<T: Output>(&mut self, index: usize) -> Option<T> {
        T::from_shared(self.values.get_mut(index)?.take()?)
    }

    /// The output of node `index`, which the runner checked is there and held by no one
    /// else. Not inlined, like [`take_at`](Outputs::take_at).
    #[doc(hidden)]
    #[inline(never)]
    pub fn take_kept_at<T: Output>(&mut self, index: usize) -> T {
        self.take_at(index)
            .expect("typedag: kept outputs are checked before they are handed back")
    }

    fn node_value<T: 'static>(&self, node: &Node<T>) -> Option<&T> {
        if node.graph != self.graph {
            return None;
        }
        self.values.get(node.index)?.as_ref()?.downcast_ref::<T>()
    }
}

impl fmt::Debug for Outputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kept = self.values.iter().filter(|v| v.is_some()).count();
        write!(f, "Outputs({kept} kept)")
    }
}

/// What a run hands back, made from the kept outputs: the [`Outputs`] themselves, or the
/// struct a `dag!` declares, with a field per node.
#[doc(hidden)]
pub trait FromOutputs: Sized {
    /// What [`run_partial`](crate::Runner::run_partial) hands back: the outputs of the nodes
    /// that completed.
    type Partial;

    /// All kept outputs, which the runner checked are there.
    fn take(outputs: &mut Outputs) -> Self;

    /// The kept outputs that are there.
    fn take_partial(outputs: &mut Outputs) -> Self::Partial;
}

impl FromOutputs for Outputs {
    type Partial = Outputs;

    fn take(outputs: &mut Outputs) -> Self {
        std::mem::take(outputs)
    }

    fn take_partial(outputs: &mut Outputs) -> Self::Partial {
        std::mem::take(outputs)
    }
}

/// Declares a `dag!`'s outputs struct, a field per node, and how it is taken from a run's
/// outputs by node index, whole or for a partial run (an `Option` per field). `dag!` writes
/// one line per node; the rest is written here, so the compiler expands it instead of the
/// procedural macro building every token.
#[doc(hidden)]
#[macro_export]
macro_rules! __dag_outputs {
    // Every field shown, its value if its type implements `Debug`.
    (@debug $outputs:ident $name:literal $($field:ident)*) => {
        impl $crate::__private::Debug for $outputs {
            fn fmt(&self, f: &mut $crate::__private::Formatter<'_>) -> $crate::__private::FmtResult {
                #[allow(unused_imports)]
                use $crate::__private::{ShowDebug as _, ShowOpaque as _};
                let mut s = f.debug_struct($name);
                $((&&$crate::__private::Show(&self.$field)).show(&mut s, stringify!($field));)*
                s.finish()
            }
        }
    };
    // Every field's type written (`field: Type = index`), when `dag!` knows them all (no
    // node reads a node with a condition): the structs and their impls are not generic. A
    // generic impl over a large graph's fields has a bound per field, and rustc checks each
    // field's bound against all of them: for 1,000 nodes, 11% of a rebuild.
    (typed $($field:ident : $ty:ty = $index:literal)*) => {
        /// The outputs of a `dag!` run, one field per node.
        #[allow(non_snake_case, dead_code)]
        struct __TypedagOutputs {
            $(pub $field: $ty,)*
        }

        /// The outputs of a partial `dag!` run, an `Option` per node.
        #[allow(non_snake_case, dead_code)]
        struct __TypedagPartial {
            $(pub $field: $crate::__private::Option<$ty>,)*
        }

        $crate::__dag_outputs! { @debug __TypedagOutputs "Outputs" $($field)* }
        $crate::__dag_outputs! { @debug __TypedagPartial "Partial" $($field)* }

        impl $crate::__private::FromOutputs for __TypedagOutputs {
            type Partial = __TypedagPartial;

            fn take(outputs: &mut $crate::__private::Outputs) -> Self {
                __TypedagOutputs { $($field: outputs.take_kept_at($index),)* }
            }

            fn take_partial(outputs: &mut $crate::__private::Outputs) -> Self::Partial {
                __TypedagPartial { $($field: outputs.take_at($index),)* }
            }
        }
    };
    // Each field of its own type parameter (`field Param index`), inferred by the wiring
    // checks; a partial run's outputs are the same struct with an `Option` in each.
    ($($field:ident $param:ident $index:literal)*) => {
        /// The outputs of a `dag!` run, one field per node; after a partial run, an `Option`
        /// per node.
        #[allow(non_snake_case, dead_code)]
        struct __TypedagOutputs<$($param),*> {
            $(pub $field: $param,)*
        }

        // Written out rather than derived: the derived `fmt` coerces every field to
        // `&dyn Debug` in one array, which costs a large graph's build more than this.
        impl<$($param: $crate::__private::Debug),*> $crate::__private::Debug
            for __TypedagOutputs<$($param),*>
        {
            fn fmt(&self, f: &mut $crate::__private::Formatter<'_>) -> $crate::__private::FmtResult {
                let mut s = f.debug_struct("Outputs");
                $(s.field(stringify!($field), &self.$field);)*
                s.finish()
            }
        }

        // The same struct with each node's wiring in its field, as the wiring checks build
        // it: its outputs are the struct with each wiring's output.
        impl<$($param: $crate::__private::Produces),*> $crate::__private::Shape
            for __TypedagOutputs<$($param),*>
        {
            type Outputs = __TypedagOutputs<$($param::Output),*>;
        }

        impl<$($param: $crate::__private::Output),*> $crate::__private::FromOutputs
            for __TypedagOutputs<$($param),*>
        {
            type Partial = __TypedagOutputs<$($crate::__private::Option<$param>),*>;

            fn take(outputs: &mut $crate::__private::Outputs) -> Self {
                __TypedagOutputs { $($field: outputs.take_kept_at($index),)* }
            }

            fn take_partial(outputs: &mut $crate::__private::Outputs) -> Self::Partial {
                __TypedagOutputs { $($field: outputs.take_at($index),)* }
            }
        }
    };
}

/// A field of a `dag!`'s outputs struct, shown by its `Debug` impl: through
/// [`ShowDebug`] if its type implements `Debug` (method lookup takes `&&Show` first), else
/// through [`ShowOpaque`], as `_`.
#[doc(hidden)]
pub struct Show<'a, T>(pub &'a T);

/// Shows a field whose type implements `Debug`.
#[doc(hidden)]
pub trait ShowDebug {
    /// Adds the field to `s`.
    fn show(&self, s: &mut fmt::DebugStruct<'_, '_>, name: &str);
}

impl<T: fmt::Debug> ShowDebug for &Show<'_, T> {
    fn show(&self, s: &mut fmt::DebugStruct<'_, '_>, name: &str) {
        s.field(name, self.0);
    }
}

/// Shows a field whose type does not implement `Debug`, as `_`.
#[doc(hidden)]
pub trait ShowOpaque {
    /// Adds the field to `s`.
    fn show(&self, s: &mut fmt::DebugStruct<'_, '_>, name: &str);
}

impl<T> ShowOpaque for Show<'_, T> {
    fn show(&self, s: &mut fmt::DebugStruct<'_, '_>, name: &str) {
        s.field(name, &format_args!("_"));
    }
}
