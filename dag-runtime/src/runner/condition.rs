//! What conditions decide once a node's inputs have all finished: whether it runs, and if
//! not, why, in the words every report uses; which of its inputs it reads; and the digests
//! that stand for a condition's value and for a node that did not run. Local and
//! distributed runs both decide through these, so a graph ends the same either way.

use crate::cache::Digest;
use crate::graph::{NodeSpec, Source};

/// Why node `i` of `nodes`, whose inputs have all finished, does not run, if it does not:
/// its condition does not hold (or did not run), or it reads a node that did not run
/// through a parameter that is not an `Option`. `not_run(j)` says whether upstream node `j`
/// did not run; `value(j)` is its `bool` output, if it is one.
pub(super) fn unmet(
    nodes: &[NodeSpec],
    i: usize,
    not_run: impl Fn(usize) -> bool,
    value: impl Fn(usize) -> Option<bool>,
) -> Option<String> {
    let spec = &nodes[i];
    if !spec.maybe {
        return None;
    }
    for (param, j) in spec.upstream() {
        let upstream = &nodes[j].id;
        let not_run = not_run(j);
        match spec.sources[param] {
            Source::Condition(_, holds) => {
                if not_run {
                    return Some(format!("its condition `{upstream}` did not run"));
                }
                match value(j) {
                    Some(value) if value == holds => {}
                    Some(value) => return Some(format!("`{upstream}` is {value}")),
                    None => {
                        return Some(format!(
                            "the output of its condition `{upstream}` is not a `bool`"
                        ));
                    }
                }
            }
            _ if not_run && !spec.meta.optional.get(param).copied().unwrap_or(false) => {
                return Some(format!("it reads `{upstream}`, which did not run"));
            }
            _ => {}
        }
    }
    None
}

/// Whether a job of `spec` reads the upstream node behind source `param`: not when it is
/// the condition (the task never sees it), nor when that node did not run (an `Option`
/// parameter gets `None`).
pub(super) fn needs(spec: &NodeSpec, param: usize, upstream_not_run: bool) -> bool {
    !matches!(spec.sources[param], Source::Condition(..)) && !upstream_not_run
}

/// The `bool` whose output has this digest, if it is the digest of one: a condition
/// node's value is told by its digest without loading its output.
pub(super) fn bool_of_digest(digest: &Digest) -> Option<bool> {
    [true, false]
        .into_iter()
        .find(|&b| digest == blake3::hash(&[u8::from(b)]).as_bytes())
}

/// The digest a node that did not run stands for in its dependents' fingerprints (those
/// that read it through an `Option` parameter, and get `None`), and in a distributed run's
/// row, where its dependents learn from it that it did not run.
pub(super) fn not_run_digest() -> Digest {
    *blake3::hash(b"typedag.not-run.v1").as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bool_output_is_told_by_its_digest() {
        for b in [true, false] {
            let bytes = postcard::to_allocvec(&b).unwrap();
            assert_eq!(bool_of_digest(blake3::hash(&bytes).as_bytes()), Some(b));
        }
        assert_eq!(bool_of_digest(&not_run_digest()), None);
    }
}
