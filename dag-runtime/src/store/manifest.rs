//! A graph's shape as a store keeps it ([`Manifest`]), its digest, and its stored bytes.

use serde::{Deserialize, Serialize};

use super::envelope;
use crate::cache::Digest;

/// A graph's shape as the store keeps it: its nodes in order, with their tasks and inputs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Every node, in declaration order.
    pub nodes: Vec<ManifestNode>,
}

/// One node of a [`Manifest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestNode {
    /// The node id.
    pub id: String,
    /// Its task.
    pub task: String,
    /// The nodes it reads, by position in [`Manifest::nodes`].
    pub inputs: Vec<u32>,
}

impl ManifestNode {
    /// Whether the node is a signal (`signal::<T>()` in `dag!`): its value comes from outside
    /// the graph, delivered under its id.
    pub fn is_signal(&self) -> bool {
        self.task == crate::signal::TASK
    }
}

impl Manifest {
    /// A digest of the shape, to tell whether it changed since it was saved.
    pub fn digest(&self) -> Digest {
        shape_digest(self.nodes.iter().map(|n| {
            (
                n.id.as_str(),
                n.task.as_str(),
                n.inputs.iter().map(|&i| i as usize),
            )
        }))
    }
}

/// The digest of a graph's shape: each node's id, task and inputs. Computed by the runner
/// from the graph itself, so that an unchanged graph costs no [`Manifest`] at all.
pub(crate) fn shape_digest<'a, I: Iterator<Item = usize>>(
    nodes: impl Iterator<Item = (&'a str, &'a str, I)>,
) -> Digest {
    let mut buf = Vec::with_capacity(4096);
    for (id, task, inputs) in nodes {
        buf.extend_from_slice(id.as_bytes());
        buf.push(0);
        buf.extend_from_slice(task.as_bytes());
        buf.push(0);
        for i in inputs {
            buf.extend_from_slice(&u32::try_from(i).unwrap_or(u32::MAX).to_le_bytes());
        }
        buf.push(0xff);
    }
    *blake3::hash(&buf).as_bytes()
}

impl Manifest {
    /// The manifest's digest, and the value a store keeps for it: the digest then the
    /// manifest, postcard-encoded in an [`envelope`], the digest first so that a run reads
    /// it without the nodes.
    pub(crate) fn seal(&self) -> (Digest, Vec<u8>) {
        let shape = self.digest();
        let body = postcard::to_allocvec(&(shape, self))
            // Every field is a string, a number or a list of them, each of known length:
            // postcard encodes those into a growing buffer without fail.
            .expect("a manifest always encodes");
        (shape, envelope::seal(&body))
    }

    /// A manifest read back from its stored value.
    pub(crate) fn open(value: &[u8]) -> Result<Manifest, String> {
        postcard::from_bytes::<(Digest, Manifest)>(envelope::open(value)?)
            .map(|(_, manifest)| manifest)
            .map_err(|e| e.to_string())
    }

    /// Only the digest of a stored manifest, without decoding its nodes.
    pub(crate) fn open_shape(value: &[u8]) -> Option<Digest> {
        let body = envelope::open(value).ok()?;
        postcard::take_from_bytes::<Digest>(body)
            .ok()
            .map(|(shape, _)| shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_manifest_reads_back_with_its_digest() {
        let manifest = Manifest {
            nodes: vec![ManifestNode {
                id: "a".into(),
                task: "load".into(),
                inputs: vec![],
            }],
        };
        let (shape, value) = manifest.seal();
        assert_eq!(shape, manifest.digest());
        assert_eq!(Manifest::open_shape(&value), Some(shape));
        assert_eq!(Manifest::open(&value), Ok(manifest));
    }
}
