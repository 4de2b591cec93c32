//! Map nodes: a task called once per item of another node's `Vec<T>` output (`each` in
//! `dag!`, [`each`] in the builder), the node's output the `Vec` of the results in order.
//! Here: how a run reads the items with `T` erased, and the builder's `each` input.

use std::any::Any;
use std::marker::PhantomData;

use serde::Serialize;

use super::args::{Arg, Own, Ref, Wired};
use super::node::{Node, Source};

/// An item of a map node's list, with its type erased.
pub(crate) type AnyItem = dyn Any + Send + Sync;

/// Appends a list's items' bytes to a buffer and each one's end to a list; or says which
/// item could not be serialized, and why.
pub(crate) type EncodeAll =
    fn(&AnyItem, &mut Vec<u8>, &mut Vec<usize>) -> Result<(), (usize, String)>;

/// How a run reads the items of a `Vec<T>` output, with `T` erased.
#[derive(Clone, Copy)]
pub(crate) struct ItemFns {
    /// How many items the output has.
    pub len: fn(&AnyItem) -> usize,
    /// Item `i`.
    pub get: fn(&AnyItem, usize) -> Option<&AnyItem>,
    /// Appends every item's postcard bytes (what an item is keyed by) to `bytes`, and where
    /// each ends to `ends`; or says which item could not be serialized, and why.
    pub encode_all: EncodeAll,
    /// A short form of item `i` for messages: the item itself when it is a string, a path
    /// or a number, else its position and type.
    pub show: fn(&AnyItem, usize) -> String,
}

impl ItemFns {
    pub(crate) fn of<T: Serialize + Send + Sync + 'static>() -> Self {
        ItemFns {
            len: |list| list.downcast_ref::<Vec<T>>().map_or(0, Vec::len),
            get: |list, i| {
                let item: &T = list.downcast_ref::<Vec<T>>()?.get(i)?;
                Some(item)
            },
            show: |list, i| {
                let item = list.downcast_ref::<Vec<T>>().and_then(|l| l.get(i));
                item.map_or_else(|| format!("item {i}"), |item| short(item, i))
            },
            encode_all: |list, bytes, ends| {
                let list = list
                    .downcast_ref::<Vec<T>>()
                    .ok_or((0, "typedag: not a list of items".to_owned()))?;
                for (i, item) in list.iter().enumerate() {
                    *bytes = postcard::to_extend(item, std::mem::take(bytes))
                        .map_err(|e| (i, e.to_string()))?;
                    ends.push(bytes.len());
                }
                Ok(())
            },
        }
    }
}

/// How a message names an item: `item 3 ("notes.txt")` for a string, a path or a number;
/// `item 3 (a Page)` otherwise.
fn short<T: 'static>(item: &T, i: usize) -> String {
    let any: &dyn Any = item;
    let text = if let Some(s) = any.downcast_ref::<String>() {
        Some(format!("{s:?}"))
    } else if let Some(s) = any.downcast_ref::<&'static str>() {
        Some(format!("{s:?}"))
    } else if let Some(p) = any.downcast_ref::<std::path::PathBuf>() {
        Some(format!("{:?}", p.display().to_string()))
    } else if let Some(n) = any.downcast_ref::<u64>() {
        Some(n.to_string())
    } else if let Some(n) = any.downcast_ref::<i64>() {
        Some(n.to_string())
    } else if let Some(n) = any.downcast_ref::<u32>() {
        Some(n.to_string())
    } else if let Some(n) = any.downcast_ref::<i32>() {
        Some(n.to_string())
    } else {
        any.downcast_ref::<usize>().map(usize::to_string)
    };
    match text {
        Some(text) if text.chars().count() > 60 => {
            let cut: String = text.chars().take(57).collect();
            format!("item {i} ({cut}...)")
        }
        Some(text) => format!("item {i} ({text})"),
        None => {
            let name = std::any::type_name::<T>();
            let name = name.rsplit("::").next().unwrap_or(name);
            format!("item {i} (a {name})")
        }
    }
}

/// An input of [`Graph::map`](super::Graph::map): the task runs once per item of `node`'s
/// `Vec<T>` output, the parameter receiving one item.
pub struct Each<T> {
    node: Node<Vec<T>>,
}

/// Feeds a task one item at a time of `node`'s `Vec<T>` output, in
/// [`Graph::map`](super::Graph::map).
pub fn each<T>(node: impl Into<EachOfNode<T>>) -> Each<T> {
    Each {
        node: node.into().0,
    }
}

/// A node, or a reference to one, that [`each`] takes.
#[doc(hidden)]
pub struct EachOfNode<T>(Node<Vec<T>>);

impl<T> From<Node<Vec<T>>> for EachOfNode<T> {
    fn from(node: Node<Vec<T>>) -> Self {
        EachOfNode(node)
    }
}

impl<T> From<&Node<Vec<T>>> for EachOfNode<T> {
    fn from(node: &Node<Vec<T>>) -> Self {
        EachOfNode(*node)
    }
}

/// The items a map node is keyed by are hashed, so they must be `Serialize`.
#[diagnostic::on_unimplemented(
    message = "`each` over a `Vec<{Self}>`: an item must be `Serialize + Send + Sync + 'static`",
    label = "each item is cached by its bytes",
    note = "derive `serde::Serialize` for the item type (typedag re-exports serde as `typedag::serde`)"
)]
pub trait Item: Serialize + Send + Sync + 'static {}
#[diagnostic::do_not_recommend]
impl<T: Serialize + Send + Sync + 'static> Item for T {}

/// A parameter fed by [`each`] takes one item: `&T` or `T` (or a view such as `&str` of a
/// `String`) for a list of `T`. Implemented by the parameter kinds `Ref<T>` and `Own<T>`.
#[diagnostic::on_unimplemented(
    message = "`each` gives one `{T}` per item, but the task's parameter does not take a `{T}`",
    label = "the items of this list are `{T}`",
    note = "a task mapped over a `Node<Vec<T>>` with `each(node)` takes one item per call, as `&T` or `T` (`&str` for `String` items): change the parameter or the list's item type"
)]
pub trait TakesItem<T> {}
impl<T: Item> TakesItem<T> for Ref<T> {}
impl<T: Item + Clone> TakesItem<T> for Own<T> {}

// One impl for every parameter kind, so that an item of the wrong type is reported with
// `TakesItem`'s message rather than `Arg`'s, which cannot say what `each` gives.
impl<P: TakesItem<T>, T: Item> Arg<P> for Each<T> {
    fn source(self, graph: u64) -> Wired {
        each_source(self.node, graph)
    }
}

fn each_source<T: Item>(node: Node<Vec<T>>, graph: u64) -> Wired {
    Wired(
        Source::node(node.graph, node.index, graph)
            .map(|_| Source::Each(node.index, ItemFns::of::<T>())),
    )
}

/// The `each` argument of a `dag!` node, by the index of the node it maps over; its item
/// type is inferred from the wiring check that reads it, the `each{i}` method `#[task]`
/// generates for the parameter.
#[doc(hidden)]
pub struct EachOf<T> {
    node: usize,
    _item: PhantomData<fn() -> T>,
}

impl<T: Item> EachOf<T> {
    pub fn new(node: usize) -> Self {
        EachOf {
            node,
            _item: PhantomData,
        }
    }

    pub fn source(&self) -> Wired {
        Wired(Ok(Source::Each(self.node, ItemFns::of::<T>())))
    }
}
