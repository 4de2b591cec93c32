//! What the runner knows of a task once its types are erased: one record per task type and
//! process, which every node of the task points to.

use std::any::TypeId;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::{Mutex, OnceLock};

use crate::bounds::Output;
use crate::failure::Failure;
use crate::ids::IdHasher;
use crate::policy::TaskOptions;
use crate::task::{BoxFuture, Inputs, Shared, Task};

/// Builds a map node's `Vec` from its last one and fresh outputs (see
/// [`Output::assemble_shared`](crate::bounds::Output::assemble_shared)).
pub(crate) type Assemble =
    fn(Option<Shared>, &[Option<usize>], Vec<Option<Shared>>) -> Option<Shared>;

/// What the runner needs about a task, with its types erased: one per task type and
/// process, shared by all its nodes.
pub(crate) struct TaskMeta {
    /// The bare name, for what people read: events, reports, records.
    pub task: &'static str,
    /// The full path, for what must tell tasks apart: fingerprints, `limit` groups.
    pub path: &'static str,
    pub fingerprint: &'static str,
    /// How the output is stored, or `None` for `cache = false`.
    pub codec: Option<ErasedCodec>,
    pub task_options: TaskOptions,
    pub call: fn(Inputs) -> BoxFuture<Result<Shared, Failure>>,
    /// The resources the task takes.
    pub resources: Vec<crate::resource::Need>,
    /// For each parameter, whether it takes an `Option`.
    pub optional: &'static [bool],
    /// The output as `Some(output)`, for the field of a node that may not run; `None` if
    /// someone else still holds it.
    pub some: fn(Shared) -> Option<Shared>,
    /// `None` of the output's type, for the field of a node that did not run.
    pub none: fn() -> Shared,
    /// [`some`](Self::some) and [`none`](Self::none) for a map node, whose output is a
    /// `Vec` of the task's.
    pub some_list: fn(Shared) -> Option<Shared>,
    pub none_list: fn() -> Shared,
    /// A map node's `Vec` from its last `Vec`'s outputs and fresh ones (see
    /// [`Output::assemble_shared`](crate::bounds::Output::assemble_shared)).
    pub assemble: Assemble,
    /// A map node's `Vec`, held by no one else, as its items' outputs.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub split: fn(Shared) -> Option<Vec<Shared>>,
    /// For a loop task: how its node runs, one iteration at a time.
    pub looping: Option<crate::looping::Looping>,
    /// For the task of a signal node: how a delivered value becomes its output.
    pub signal: Option<crate::signal::SignalFns>,
}

impl TaskMeta {
    /// `T`'s, made once per process.
    pub(crate) fn of<T: Task>() -> &'static TaskMeta {
        type Known = HashMap<TypeId, &'static TaskMeta, BuildHasherDefault<IdHasher>>;
        static KNOWN: OnceLock<Mutex<Known>> = OnceLock::new();
        let mut known = KNOWN
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        known.entry(TypeId::of::<T>()).or_insert_with(|| {
            // One per task type: bounded by the program's code.
            Box::leak(Box::new(TaskMeta {
                task: T::NAME,
                path: T::PATH,
                fingerprint: T::FINGERPRINT,
                codec: T::codec().map(|_| ErasedCodec {
                    encode: erased_encode::<T>,
                    decode: erased_decode::<T>,
                    decode_list: erased_decode_list::<T>,
                    encode_list: erased_encode_list::<T>,
                    output_type: erased_output_type::<T>,
                }),
                task_options: T::options(),
                call: erased_call::<T>,
                resources: T::resources(),
                optional: T::OPTIONAL,
                some: erased_some::<T>,
                none: erased_none::<T>,
                some_list: T::Output::some_list_shared,
                none_list: T::Output::none_list_shared,
                assemble: T::Output::assemble_shared,
                split: T::Output::split_shared,
                looping: T::looping(),
                signal: T::signal(),
            }))
        })
    }
}

/// A task's [`Codec`](crate::Codec) with its output type erased.
#[derive(Clone, Copy)]
pub(crate) struct ErasedCodec {
    pub encode: fn(&Shared) -> Result<Vec<u8>, String>,
    pub decode: fn(&[u8]) -> Result<Shared, String>,
    /// A map node's output: the `Vec` of the task's outputs.
    pub decode_list: fn(&[u8]) -> Result<Shared, String>,
    pub encode_list: fn(&Shared) -> Result<Vec<u8>, String>,
    pub output_type: fn() -> crate::cache::Digest,
}

fn erased_encode<T: Task>(value: &Shared) -> Result<Vec<u8>, String> {
    let codec = T::codec().ok_or("the task is not cached")?;
    let value = value
        .downcast_ref::<T::Output>()
        .ok_or("typedag: output of another type")?;
    (codec.encode)(value)
}

fn erased_decode<T: Task>(bytes: &[u8]) -> Result<Shared, String> {
    let codec = T::codec().ok_or("the task is not cached")?;
    (codec.decode)(bytes).map(Output::into_shared)
}

fn erased_output_type<T: Task>() -> crate::cache::Digest {
    T::codec().map_or([0; 32], |c| (c.output_type)())
}

fn erased_call<T: Task>(inputs: Inputs) -> BoxFuture<Result<Shared, Failure>> {
    let fut = T::call(inputs);
    Box::pin(async move { fut.await.map(Output::into_shared) })
}

fn erased_some<T: Task>(value: Shared) -> Option<Shared> {
    Some(T::Output::from_shared(value)?.some_shared())
}

fn erased_none<T: Task>() -> Shared {
    T::Output::none_shared()
}

fn erased_decode_list<T: Task>(bytes: &[u8]) -> Result<Shared, String> {
    let codec = T::codec().ok_or("the task is not cached")?;
    Ok(T::Output::list_shared((codec.decode_list)(bytes)?))
}

fn erased_encode_list<T: Task>(list: &Shared) -> Result<Vec<u8>, String> {
    let codec = T::codec().ok_or("the task is not cached")?;
    let list = list
        .downcast_ref::<Vec<T::Output>>()
        .ok_or("typedag: a list of outputs of another type")?;
    (codec.encode_list)(list)
}
