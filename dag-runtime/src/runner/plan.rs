//! What a run works out about each node before it starts: its priority, its limit group,
//! the fixed parts of its fingerprint, and who reads its output.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::schedule::Limited;
use crate::cache::{
    Digest, FixedParts, InputDigest, PartHasher, Upstream, code_part, upstream_part,
};
use crate::graph::{NodeSpec, Source, TaskMeta};
use crate::policy::Effective;

/// What a run works out about each node before it starts.
pub(super) struct NodePlan {
    /// Higher runs first among ready nodes.
    pub(super) priority: i32,
    /// The node's task's slot in `State::limited`, if the task has a `limit`.
    pub(super) limit_group: Option<usize>,
    /// The fingerprint parts known up front; `None` without a store or caching.
    pub(super) parts: Option<FixedParts>,
}

/// Each node's plan, and one limit group per task that has a `limit` (by path: two tasks
/// of the same name in different modules have a limit each). Fingerprint parts are worked
/// out only when there is a store to compare them with.
pub(super) fn plan_nodes(specs: &[NodeSpec], with_store: bool) -> (Vec<NodePlan>, Vec<Limited>) {
    let mut limited: Vec<Limited> = Vec::new();
    let mut groups: HashMap<&'static str, usize> = HashMap::new();
    // The code and output-type parts are the same for every node of a task.
    let mut task_parts: HashMap<*const TaskMeta, Option<FixedParts>> = HashMap::new();
    let plans = specs
        .iter()
        .map(|spec| {
            let priority = Effective::priority(&spec.options, &spec.meta.task_options);
            let limit_group = spec.meta.task_options.limit.map(|limit| {
                *groups.entry(spec.meta.path).or_insert_with(|| {
                    limited.push(Limited::new(limit));
                    limited.len() - 1
                })
            });
            let parts = with_store
                .then(|| {
                    let task = *task_parts
                        .entry(std::ptr::from_ref(spec.meta))
                        .or_insert_with(|| fixed_parts(spec));
                    task.map(|p| FixedParts {
                        inputs: inputs_part(spec),
                        ..p
                    })
                })
                .flatten();
            NodePlan {
                priority,
                limit_group,
                parts,
            }
        })
        .collect();
    (plans, limited)
}

/// The fingerprint parts of `spec` fixed before the run; `None` for a task whose output has
/// no codec (`cache = false` without serde).
pub(super) fn fixed_parts(spec: &NodeSpec) -> Option<FixedParts> {
    let codec = spec.meta.codec.as_ref()?;
    Some(FixedParts {
        code: code_part(spec.meta.path, spec.meta.fingerprint),
        output_type: (codec.output_type)(),
        inputs: inputs_part(spec),
        always: !spec.meta.task_options.cache,
    })
}

/// The constant inputs' part: their digests, each with its parameter.
fn inputs_part(spec: &NodeSpec) -> Digest {
    static NONE: OnceLock<Digest> = OnceLock::new();
    if !spec.sources.iter().any(|s| matches!(s, Source::Const(_))) {
        return *NONE
            .get_or_init(|| PartHasher::new(&mut Vec::new(), b"typedag.inputs.v1\0").finish());
    }
    let mut buf = Vec::new();
    let mut h = PartHasher::new(&mut buf, b"typedag.inputs.v1\0");
    for (param, source) in spec.sources.iter().enumerate() {
        if let Source::Const(c) = source {
            h.add(param, c.digest.as_ref().unwrap_or(&[0; 32]));
        }
    }
    h.finish()
}

/// The upstream part of `spec`'s fingerprint, from what `digest` knows of each upstream
/// node's output.
pub(super) fn upstream_of<'a>(
    spec: &NodeSpec,
    digest: impl Fn(usize) -> InputDigest<'a>,
    buf: &mut Vec<u8>,
) -> Upstream {
    upstream_part(spec.upstream().map(|(param, j)| (param, digest(j))), buf)
}

/// Each node's dependents, once per edge that reads it, in one list.
pub(super) struct Dependents {
    /// Where each node's start in `list`; one more entry than nodes.
    start: Vec<usize>,
    list: Vec<usize>,
}

impl Dependents {
    /// `readers[j]` is how many edges read node `j`.
    pub(super) fn new(specs: &[NodeSpec], readers: &[u32]) -> Self {
        let mut start = Vec::with_capacity(readers.len() + 1);
        let mut total = 0;
        start.push(0);
        for &r in readers {
            total += r as usize;
            start.push(total);
        }
        let mut next = start.clone();
        let mut list = vec![0; total];
        for (i, spec) in specs.iter().enumerate() {
            for (_, j) in spec.upstream() {
                list[next[j]] = i;
                next[j] += 1;
            }
        }
        Self { start, list }
    }

    pub(super) fn of(&self, i: usize) -> &[usize] {
        &self.list[self.start[i]..self.start[i + 1]]
    }
}
